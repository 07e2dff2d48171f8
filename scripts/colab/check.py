"""Driver of scripts/colab_check.sh, run by the Colab-like venv's Python: step-1 install, then checks."""
import importlib.util
import subprocess
import sys
from pathlib import Path

root, constraints = Path(sys.argv[1]), sys.argv[2]
spec = importlib.util.spec_from_file_location("install", root / "vemoclap" / "app" / "install.py")
install = importlib.util.module_from_spec(spec)
spec.loader.exec_module(install)

before = install.snapshot()
report = install.install(str(root))  # exactly what the notebook's step 1 runs, this folder as the source
print(report)
after = install.snapshot()
changed = {n: (v, after["dists"].get(n)) for n, v in before["dists"].items() if after["dists"].get(n) != v}
assert not changed, f"preinstalled packages changed: {changed}"
assert before["cv2"] == after["cv2"], f"cv2 changed: {before['cv2']} -> {after['cv2']}"
print("(a) no preinstalled package changed; cv2 is still", after["cv2"])
for py in ("3.13.0", "3.12.1"):
    proc = subprocess.run(["bash", "-c", f"PYENV_VERSION={py} python -m pip install -q --dry-run "
                           f"--ignore-installed -c {constraints} '{root}[models,app]'"], capture_output=True, text=True)
    assert proc.returncode == 0, f"Python {py}: .[models,app] does not resolve: {proc.stderr[-2000:]}"
    print(f"(b) .[models,app] resolves on Python {py} with Colab's versions as constraints")
