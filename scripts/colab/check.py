"""The Colab-like check (issue 12), driven from scripts/colab_check.sh. Standard library only.

1. A Python 3.13 venv (pyenv's 3.13.0) holding Colab's preinstalled packages at Colab's versions:
   every line of scripts/colab/pip-freeze.gpu.txt (Colab's published `pip freeze`, the constraints file)
   except SKIP. Wheels are kept in $VEMOCLAP_CI_CACHE/wheels (default ~/.cache/vemoclap-ci), so only the
   first run downloads them (the torch stack from PyPI is ~2.6 GB).
2. Every installed version is checked against the freeze.
3. ".[models,app]" and ".[notebook]" resolve (pip --dry-run) on Python 3.13 and 3.12 with Colab's versions
   as constraints.
4. scripts/colab/notebook_runs.py, in that venv: the notebook's step-1 install from this checkout, nothing
   preinstalled changed and cv2 is the same build, then the notebook through every source.
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
PYTHONS = {"3.13": "3.13.0", "3.12": "3.12.1"}


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


def pyenv_python(version: str) -> str | None:
    """The interpreter of pyenv's `version` (what `PYENV_VERSION=version python` runs), or None.

    Asked of `pyenv prefix`: under a pyenv shim, PATH starts with the running version's own bin folder,
    so a plain `python` would not go through the shim again."""
    prefixes = []
    pyenv = shutil.which("pyenv") or str(Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "bin" / "pyenv")
    proc = subprocess.run([pyenv, "prefix", version], capture_output=True, text=True) if Path(pyenv).exists() else None
    if proc is not None and proc.returncode == 0:
        prefixes.append(Path(proc.stdout.strip()))
    prefixes.append(Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions" / version)
    for prefix in prefixes:
        exe = prefix / "bin" / "python"
        if exe.is_file():
            got = subprocess.run([str(exe), "-c", "import platform; print(platform.python_version())"],
                                 capture_output=True, text=True).stdout.strip()
            if got == version:
                return str(exe)
    return None


def run(cmd: list[str], **kw) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


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


def build_venv(venv: Path, constraints: Path, pins: dict[str, str], wheels: Path) -> None:
    python = pyenv_python(PYTHONS["3.13"])
    if python is None:
        raise SystemExit(f"Python {PYTHONS['3.13']} not found: `PYENV_VERSION={PYTHONS['3.13']} python` must run it")
    run([python, "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    wanted = [f"{n}=={v}" for n, v in sorted(pins.items()) if n not in SKIP]
    key = hashlib.sha256("\n".join([PYTHONS["3.13"], *wanted]).encode()).hexdigest()[:16]
    stamp = wheels / f".complete-{key}"
    wheels.mkdir(parents=True, exist_ok=True)
    if not stamp.exists():
        # `pip wheel` keeps wheels and builds the few sdists once; --no-cache-dir: not a second copy in pip's cache
        before = sum(f.stat().st_size for f in wheels.glob("*.whl"))
        start = time.monotonic()
        run([*pip, "wheel", "-q", "--no-cache-dir", "--find-links", str(wheels), "-w", str(wheels),
             "-c", str(constraints), *wanted])
        got = sum(f.stat().st_size for f in wheels.glob("*.whl")) - before
        print(f"wheel cache: fetched {got / 2**30:.2f} GB in {time.monotonic() - start:.0f} s into {wheels}")
        stamp.touch()
    run([*pip, "install", "-q", "--no-index", "--find-links", str(wheels), "-c", str(constraints), *wanted])


def check_versions(venv: Path, pins: dict[str, str]) -> dict[str, str]:
    code = ("import json, importlib.metadata as md, re\n"
            "print(json.dumps({re.sub(r'[-_.]+', '-', d.metadata['Name']).lower(): d.version "
            "for d in md.distributions() if d.metadata['Name']}))")
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], check=True, capture_output=True, text=True)
    installed = json.loads(out.stdout)
    wrong = {n: (v, installed.get(n)) for n, v in pins.items() if n not in SKIP and installed.get(n) != v}
    if wrong:
        raise SystemExit(f"the Colab-like venv differs from Colab's freeze (name: (Colab, here)): {wrong}")
    print(f"{len(pins) - len(SKIP & set(pins))} of Colab's packages installed at Colab's versions "
          f"({len(installed)} distributions in the venv); not installed: {', '.join(sorted(SKIP))}")
    return installed


def resolve(python: str, constraints: Path, extras: str, work: Path) -> int:
    """pip --dry-run of ROOT[extras] with Colab's versions as constraints; the number of packages planned."""
    report = work / f"resolve-{Path(python).parent.parent.name}-{extras.replace(',', '-')}.json"
    proc = subprocess.run([python, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
                           "--disable-pip-version-check", "--report", str(report), "-c", str(constraints),
                           f"{ROOT}[{extras}]"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{python}: .[{extras}] does not resolve with Colab's versions as constraints:\n"
                         f"{proc.stderr[-3000:]}")
    planned = json.loads(report.read_text())["install"]
    versions = {canon(i["metadata"]["name"]): i["metadata"]["version"] for i in planned}
    for name in ("torch", "numpy", "transformers", "ipywidgets", "opencv-python"):
        if name in versions and name in PINS and versions[name] != PINS[name]:
            raise SystemExit(f"{python}: .[{extras}] resolved {name} {versions[name]}, not Colab's {PINS[name]}")
    return len(planned)


PINS = read_freeze()


def main() -> int:
    parser = argparse.ArgumentParser(description="The Colab-like check: " + __doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="keep the venv and the executed notebooks here")
    parser.add_argument("--resolve-only", action="store_true", help="only the dry-run resolves (no venv)")
    args = parser.parse_args()
    cache = Path(os.environ.get("VEMOCLAP_CI_CACHE") or Path.home() / ".cache" / "vemoclap-ci")
    work = args.work or Path(tempfile.mkdtemp(prefix="vemoclap-colab-"))
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    constraints = work / "colab-constraints.txt"
    constraints.write_text("".join(f"{n}=={v}\n" for n, v in sorted(PINS.items())))
    phases = Phases()
    venv = work / "venv"
    try:
        if not args.resolve_only:
            with phases.time("Python 3.13 venv with Colab's packages"):
                build_venv(venv, constraints, PINS, cache / "wheels")
                check_versions(venv, PINS)
        for short, version in PYTHONS.items():
            python = str(venv / "bin" / "python") if short == "3.13" and not args.resolve_only else pyenv_python(version)
            if python is None:
                raise SystemExit(f"Python {version} not found: `PYENV_VERSION={version} python` must run it")
            with phases.time(f"resolve on Python {short}"):
                for extras in ("models,app", "notebook"):
                    n = resolve(python, constraints, extras, work)
                    print(f"Python {short}: .[{extras}] resolves with Colab's versions as constraints ({n} packages)")
        if not args.resolve_only:
            with phases.time("notebook: step-1 install, then every source"):
                run([str(venv / "bin" / "python"), str(ROOT / "scripts" / "colab" / "notebook_runs.py"),
                     str(ROOT), str(work)], cwd=work)
    finally:
        print(phases.table(), flush=True)
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print("colab-like check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
