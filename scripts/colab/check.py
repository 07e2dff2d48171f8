"""The Colab-like check (issue 12), driven from scripts/colab_check.sh. Standard library only.

1. A Python 3.13 venv (pyenv's 3.13.0) holding Colab's preinstalled packages at Colab's versions:
   every line of scripts/colab/pip-freeze.gpu.txt (Colab's published `pip freeze`, the constraints file)
   except SKIP, with opencv-python installed last so that `cv2` is its OpenCV 5 as on Colab (several
   OpenCV distributions write the same cv2 folder). Every installed version is checked against the freeze.
   Cached in $VEMOCLAP_CI_CACHE (default ~/.cache/vemoclap-ci): the wheels (the torch stack from PyPI
   alone is ~2.6 GB) and the pristine venv, which each run copies as hard links (pip replaces files, it
   never writes into one; the pristine venv's file list, sizes and times are checked before each copy).
2. `pip install --dry-run ".[notebook,app]"` resolves on Python 3.13 and 3.12 with Colab's versions as
   constraints (the notebook extra, vemoclap[models,fast-asr], is installed for real in 4); the plan must hold
   faster-whisper and CTranslate2 (the faster Whisper backend the notebook brings).
3. Tiny models, made by the Python running this script (the project's venv; vemoclap.tiny).
4. scripts/colab/notebook_runs.py in the copy: the notebook's own step 1, from a copy of the notebook file
   alone (no checkout path, no install source), installs the wheel the notebook carries; nothing preinstalled changes,
   cv2 stays the same build and faster-whisper (CTranslate2) imports and is the backend chosen, then the notebook runs through
   every source (sample, a 50 MB upload through the stand-in google.colab, a path, a link on 127.0.0.1).
Each phase's wall time is printed at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FREEZE = ROOT / "scripts" / "colab" / "pip-freeze.gpu.txt"
# Preinstalled on Colab but not installed here: nothing in vemoclap imports them, and TensorFlow alone
# is ~1 GB more to fetch and unpack. Their shared dependencies (numpy, protobuf, ...) are installed.
SKIP = {"tensorflow", "jax", "jaxlib"}
LAST = "opencv-python"  # its cv2 must win over opencv-contrib-python's, as on Colab (cv2 5.x there)
PYTHONS = {"3.13": "3.13.0", "3.12": "3.12.1"}
EXTRAS = "notebook,app"  # what the notebook installs (notebook = models + fast-asr), and the app's extra
REQUIRED = ("faster-whisper", "ctranslate2")  # the notebook's faster Whisper backend must be in the plan
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "YOLO_OFFLINE": "1", "TQDM_DISABLE": "1"}


def canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_freeze(path: Path = FREEZE) -> dict[str, str]:
    """name → version from a `pip freeze` file: comments and "name @ URL" lines skipped (pip takes no URL
    constraints), local labels dropped (PyPI's torch 2.11.0 has no "+cu128": it is a CUDA build as is)."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or " @ " in line:
            continue
        name, _, version = line.partition("==")
        if not version:
            raise SystemExit(f"{path}: {line!r} is not a 'name==version' line")
        pins[canon(name)] = version.split("+", 1)[0]
    return pins


PINS = read_freeze()


def pyenv_python(version: str) -> str | None:
    """The interpreter of pyenv's `version` (what `PYENV_VERSION=version python` runs), or None.

    Asked of `pyenv prefix`: under a pyenv shim, PATH starts with the running version's own bin folder,
    so a plain `python` would not go through the shim again."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    prefixes = []
    pyenv = shutil.which("pyenv") or str(root / "bin" / "pyenv")
    if Path(pyenv).exists():
        proc = subprocess.run([pyenv, "prefix", version], capture_output=True, text=True)
        if proc.returncode == 0:
            prefixes.append(Path(proc.stdout.strip()))
    prefixes.append(root / "versions" / version)
    for prefix in prefixes:
        exe = prefix / "bin" / "python"
        if exe.is_file():
            got = subprocess.run(
                [str(exe), "-c", "import platform; print(platform.python_version())"], capture_output=True, text=True
            ).stdout.strip()
            if got == version:
                return str(exe)
    return None


def need_python(version: str) -> str:
    python = pyenv_python(version)
    if python is None:
        raise SystemExit(f"Python {version} not found: `PYENV_VERSION={version} python` must run it (pyenv)")
    return python


def run(cmd: list, **kw) -> None:
    shown = [str(c) for c in cmd]
    if len(shown) > 14:  # the package lists are long: their count is enough
        shown = shown[:12] + [f"... ({len(shown) - 12} more)"]
    print("+", " ".join(shown), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)


class Phases:
    def __init__(self):
        self.rows: list[tuple[str, float]] = []

    def time(self, name: str):
        phases = self

        class _Timer:
            def __enter__(self):
                self.start = time.monotonic()
                print(f"== {name}", flush=True)

            def __exit__(self, *exc):
                phases.rows.append((name, time.monotonic() - self.start))

        return _Timer()

    def table(self) -> str:
        lines = ["| phase | seconds |", "| --- | ---: |"]
        lines += [f"| {name} | {seconds:.0f} |" for name, seconds in self.rows]
        lines.append(f"| total | {sum(s for _, s in self.rows):.0f} |")
        return "\n".join(lines)


MANIFEST = ".vemoclap-manifest"


def _manifest(folder: Path) -> str:
    """A digest of every file's path, size and modification time below ``folder`` (the manifest left out)."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if dirpath == str(folder) and name == MANIFEST:
                continue
            st = os.lstat(path)
            digest.update(f"{os.path.relpath(path, folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def installed_versions(python: Path) -> dict[str, str]:
    code = (
        "import json, importlib.metadata as md, re\n"
        "print(json.dumps({re.sub(r'[-_.]+', '-', d.metadata['Name']).lower(): d.version "
        "for d in md.distributions() if d.metadata['Name']}))"
    )
    out = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def cv2_info(python: Path) -> dict:
    code = "import cv2, json; print(json.dumps({'version': cv2.__version__, 'file': cv2.__file__}))"
    out = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def build_base(base: Path, constraints: Path, wheels: Path) -> None:
    """The pristine Colab-like venv at ``base`` (built once per freeze; wheels cached)."""
    shutil.rmtree(base, ignore_errors=True)
    run([need_python(PYTHONS["3.13"]), "-m", "venv", base])
    pip = [base / "bin" / "python", "-m", "pip"]
    wanted = [f"{n}=={v}" for n, v in sorted(PINS.items()) if n not in SKIP]
    stamp = wheels / f".complete-{hashlib.sha256(chr(10).join(wanted).encode()).hexdigest()[:16]}"
    wheels.mkdir(parents=True, exist_ok=True)
    if not stamp.exists():
        # `pip wheel` keeps wheels and builds the few sdists once; --no-cache-dir: no second copy in pip's cache
        before = sum(f.stat().st_size for f in wheels.glob("*.whl"))
        start = time.monotonic()
        run([*pip, "wheel", "-q", "--no-cache-dir", "--find-links", wheels, "-w", wheels, "-c", constraints, *wanted])
        got = sum(f.stat().st_size for f in wheels.glob("*.whl")) - before
        print(
            f"wheel cache: fetched {got / 2**30:.2f} GB in {time.monotonic() - start:.0f} s into {wheels}", flush=True
        )
        stamp.touch()
    offline = ["--no-index", "--find-links", wheels, "-c", constraints]
    run([*pip, "install", "-q", *offline, *wanted])
    run([*pip, "install", "-q", *offline, "--no-deps", "--force-reinstall", f"{LAST}=={PINS[LAST]}"])
    installed = installed_versions(base / "bin" / "python")
    wrong = {n: (v, installed.get(n)) for n, v in PINS.items() if n not in SKIP and installed.get(n) != v}
    if wrong:
        raise SystemExit(f"the Colab-like venv differs from Colab's freeze (name: (Colab, here)): {wrong}")
    cv2 = cv2_info(base / "bin" / "python")
    if not PINS[LAST].startswith(cv2["version"]):
        raise SystemExit(f"cv2 is {cv2['version']}, not {LAST} {PINS[LAST]} as on Colab")
    print(
        f"{len(PINS) - len(SKIP & set(PINS))} of Colab's packages at Colab's versions ({len(installed)} "
        f"distributions); not installed: {', '.join(sorted(SKIP))}; cv2 {cv2['version']}",
        flush=True,
    )
    (base / MANIFEST).write_text(_manifest(base))


def fresh_venv(cache: Path, constraints: Path, venv: Path) -> None:
    """``venv``: a hard-linked copy of the pristine Colab-like venv (built first when missing or touched)."""
    key = hashlib.sha256((PYTHONS["3.13"] + FREEZE.read_text() + ",".join(sorted(SKIP)) + LAST).encode())
    base = cache / f"colab-venv-{key.hexdigest()[:12]}"
    manifest = base / MANIFEST
    if not manifest.is_file() or manifest.read_text() != _manifest(base):
        print(f"building the pristine Colab-like venv in {base}", flush=True)
        build_base(base, constraints, cache / "wheels")
    run(["cp", "-al", base, venv])
    # Scripts in bin/ name the pristine venv's python: point them at the copy (a new file, not a write
    # through the hard link).
    for script in (venv / "bin").iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        head = script.read_bytes()[:200]
        if head.startswith(b"#!" + str(base).encode()):
            text = script.read_bytes().replace(str(base).encode(), str(venv).encode(), 1)
            tmp = script.with_name(script.name + ".tmp")
            tmp.write_bytes(text)
            shutil.copymode(script, tmp)
            tmp.replace(script)


def resolve(python: str, constraints: Path, extras: str, work: Path) -> subprocess.Popen:
    """pip --dry-run of ROOT[extras] with Colab's versions as constraints, started (see finish_resolve)."""
    report = work / f"resolve-{Path(python).resolve().parent.parent.name}.json"
    log = open(work / f"resolve-{Path(python).resolve().parent.parent.name}.log", "w")
    cmd = [
        python,
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--quiet",
        "--ignore-installed",
        "--disable-pip-version-check",
        "--report",
        str(report),
        "-c",
        str(constraints),
        f"{ROOT}[{extras}]",
    ]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
    proc.report, proc.log_path, proc.extras = report, Path(log.name), extras
    log.close()
    return proc


def finish_resolve(proc: subprocess.Popen, short: str) -> None:
    if proc.wait() != 0:
        raise SystemExit(
            f"Python {short}: .[{proc.extras}] does not resolve with Colab's versions as constraints:\n"
            f"{proc.log_path.read_text()[-3000:]}"
        )
    planned = json.loads(proc.report.read_text())["install"]
    versions = {canon(i["metadata"]["name"]): i["metadata"]["version"] for i in planned}
    missing = [name for name in REQUIRED if name not in versions]
    if missing:
        raise SystemExit(f"Python {short}: .[{proc.extras}] resolved without {', '.join(missing)}")
    for name in ("torch", "numpy", "transformers", "ipywidgets", "opencv-python", "ipykernel", "protobuf"):
        if name in versions and versions[name] != PINS[name]:
            raise SystemExit(
                f"Python {short}: .[{proc.extras}] resolved {name} {versions[name]}, not Colab's {PINS[name]}"
            )
    print(
        f"Python {short}: .[{proc.extras}] resolves with Colab's versions as constraints ({len(planned)} "
        f"packages; torch {versions.get('torch')}, numpy {versions.get('numpy')}, ipywidgets "
        f"{versions.get('ipywidgets')}, faster-whisper {versions['faster-whisper']}, ctranslate2 "
        f"{versions['ctranslate2']})",
        flush=True,
    )


def make_models(folder: Path) -> None:
    """Tiny models of the real classes, by this Python (it must have vemoclap's [models] dependencies)."""
    code = "import sys; from vemoclap.tiny import make_tiny_models; make_tiny_models(sys.argv[1])"
    env = {
        **os.environ,
        **OFFLINE,
        "PYTHONPATH": str(ROOT),
        "MPLBACKEND": "Agg",
        "YOLO_CONFIG_DIR": str(folder.parent / "ultralytics-tiny"),
    }
    proc = subprocess.run([sys.executable, "-c", code, str(folder)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(
            f"{sys.executable} could not make the tiny models (run this check with the project's "
            f"venv Python, e.g. .venv/bin/python):\n{proc.stderr[-3000:]}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description="The Colab-like check: see scripts/colab/check.py")
    parser.add_argument("--work", type=Path, help="keep the venv copy and the executed notebooks here")
    parser.add_argument("--resolve-only", action="store_true", help="only the dry-run resolves (no venv)")
    args = parser.parse_args()
    cache = Path(os.environ.get("VEMOCLAP_CI_CACHE") or Path.home() / ".cache" / "vemoclap-ci").resolve()
    work = (args.work or Path(tempfile.mkdtemp(prefix="vemoclap-colab-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    constraints = work / "colab-constraints.txt"
    constraints.write_text("".join(f"{n}=={v}\n" for n, v in sorted(PINS.items())))
    phases = Phases()
    venv = work / "venv"
    try:
        if not args.resolve_only:
            with phases.time("Python 3.13 venv with Colab's packages"):
                fresh_venv(cache, constraints, venv)
        with phases.time(f"resolve .[{EXTRAS}] on Python 3.13 and 3.12 (together)"):
            pythons = {"3.13": str(venv / "bin" / "python") if not args.resolve_only else need_python("3.13.0")}
            if pyenv_python(PYTHONS["3.12"]):
                pythons["3.12"] = pyenv_python(PYTHONS["3.12"])
            else:  # the 3.12 resolve is a secondary check: say so loudly, but the 3.13 check still counts
                print(f"SKIPPED: the resolve on Python 3.12 (pyenv has no {PYTHONS['3.12']})", flush=True)
            started = {short: resolve(python, constraints, EXTRAS, work) for short, python in pythons.items()}
            for short, proc in started.items():
                finish_resolve(proc, short)
        if not args.resolve_only:
            with phases.time("tiny models"):
                make_models(work / "models")
            with phases.time("notebook: step-1 install, then every source"):
                # the notebook file alone, as a user has it: copied out of the checkout, installed from itself
                notebook = work / "notebook" / "vemoclap.ipynb"
                notebook.parent.mkdir(exist_ok=True)
                shutil.copyfile(ROOT / "notebooks" / "vemoclap.ipynb", notebook)
                shutil.copytree(ROOT / "tests" / "standins", work / "standins", dirs_exist_ok=True)
                runs = ROOT / "scripts" / "colab" / "notebook_runs.py"
                run([venv / "bin" / "python", runs, notebook, work, "--standins", work / "standins"], cwd=work)
    finally:
        print(phases.table(), flush=True)
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print("colab-like check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
