"""Step 1 of the notebook: install vemoclap into the running kernel without touching what is already there.

The notebook carries vemoclap's own wheel (base64, in the cell before step 1; vemoclap/app/notebook.py builds
and embeds it, tests/test_notebook.py checks it matches the source tree): step 1 writes it out and installs it
with its extra's dependencies from the package index, so the notebook file alone is enough.
Standard library only: the notebook inlines this file's source, because vemoclap cannot be imported
before it is installed. Every distribution the kernel already has is held at its version (constraints
taken from the kernel's own installed set, as `pip freeze` lists it), except the few in ALLOW_UPGRADE.
pip first resolves (`--dry-run --report`), then exactly the resolved set is installed with `--no-deps`,
leaving out any OpenCV distribution when the kernel already has one: every OpenCV wheel writes the same
`cv2` folder, so adding `opencv-python-headless` beside Colab's `opencv-python` would replace Colab's
OpenCV although no listed version changed. `cv2`'s version and build are compared before and after.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE_ENV = "VEMOCLAP_INSTALL_SOURCE"

# Released often and broken by YouTube changes within weeks: a stale copy in the kernel must not be kept.
# yt-dlp pins its yt-dlp-ejs exactly, and deno is the JavaScript runtime it runs those scripts in.
# certifi is deliberately not here: Colab has it imported already, and plain yt-dlp does not ask for a newer one.
ALLOW_UPGRADE = ("yt-dlp", "yt-dlp-ejs", "deno")

OPENCV_DISTRIBUTIONS = (
    "opencv-python",
    "opencv-python-headless",
    "opencv-contrib-python",
    "opencv-contrib-python-headless",
)

_SNAPSHOT = r"""
import hashlib, json, importlib.metadata as md
dists = {}
for d in md.distributions():
    name = d.metadata["Name"]
    if name:
        dists.setdefault(name.lower().replace("_", "-").replace(".", "-"), d.version)
cv2 = None
try:
    import cv2 as _cv2
    owners = sorted(n for n in %r if n in dists and any(str(f).replace("\\", "/") == "cv2/__init__.py"
                    for f in (md.distribution(n).files or [])))
    cv2 = {"version": _cv2.__version__, "file": _cv2.__file__, "owners": owners,
           "build": hashlib.sha256(_cv2.getBuildInformation().encode()).hexdigest()[:16]}
except Exception as exc:
    cv2 = {"error": type(exc).__name__ + ": " + str(exc)}
print(json.dumps({"dists": dists, "cv2": cv2}))
""" % (OPENCV_DISTRIBUTIONS,)


class InstallError(ValueError):
    """The install cannot go on; the message is one line saying what to set."""


def _canon(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def snapshot(python: str = sys.executable) -> dict:
    """Installed distributions {name: version} and the importable cv2 (version, build hash, owners)."""
    out = subprocess.run([python, "-c", _SNAPSHOT], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _pip(python: str, args: list[str]) -> subprocess.CompletedProcess:
    cmd = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", *args]
    return subprocess.run(cmd, capture_output=True, text=True)


def _fail(source: str, proc: subprocess.CompletedProcess) -> InstallError:
    lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR")] or lines or ["pip failed"]
    return InstallError(
        f"vemoclap could not be installed from {source!r} ({errors[-1][:300]}); set {SOURCE_ENV}, "
        "or install(source=...), to a vemoclap wheel, folder or git URL"
    )


def _spec(source: str, extra: str) -> str:
    """A pip requirement for vemoclap[extra] from a PyPI-style name, a wheel, a folder or a URL."""
    if source.startswith(("git+", "http://", "https://", "file:")):
        return f"vemoclap[{extra}] @ {source}" if extra else f"vemoclap @ {source}"
    path = Path(source).expanduser()
    if path.exists():
        uri = path.resolve().as_uri()
        return f"vemoclap[{extra}] @ {uri}" if extra else f"vemoclap @ {uri}"
    if "/" in source or source.endswith((".whl", ".tar.gz", ".zip")):
        raise InstallError(
            f"vemoclap install source {source!r} does not exist; set {SOURCE_ENV}, "
            "or install(source=...), to a vemoclap wheel, folder or git URL"
        )
    return source if "[" in source or not extra else f"{source}[{extra}]"


def write_wheel(name: str, payload: str, folder: str | None = None) -> str:
    """Write the notebook's embedded wheel (``payload``: base64, whitespace ignored) as ``folder/name``."""
    import base64
    import binascii

    if not name.endswith(".whl") or "/" in name or "\\" in name:
        raise InstallError(f"{name!r} is not a wheel's file name; regenerate the notebook")
    try:
        data = base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InstallError(f"the wheel embedded in this notebook is damaged ({exc}); get the notebook again") from None
    path = Path(folder or tempfile.mkdtemp(prefix="vemoclap-wheel-"), name)
    path.write_bytes(data)
    return str(path)


def _changes(before: dict, after: dict) -> tuple[list[str], list[str]]:
    added = [f"{n} {v}" for n, v in sorted(after.items()) if n not in before]
    changed = [f"{n} {before[n]} -> {v}" for n, v in sorted(after.items()) if n in before and before[n] != v]
    return added, changed


def _cv2_line(before: dict | None, after: dict | None) -> tuple[str, bool]:
    def show(info):
        if not info or "error" in info:
            return "not importable"
        return f"{info['version']} (build {info['build']}, from {', '.join(info['owners']) or '?'})"

    same = before == after
    return ("OpenCV unchanged: " if same else "OpenCV CHANGED: ") + (
        show(after) if same else f"{show(before)} -> {show(after)}"
    ), same


def install(
    source: str | None = None,
    extra: str = "notebook",
    *,
    python: str = sys.executable,
    allow_upgrade: tuple[str, ...] = ALLOW_UPGRADE,
    embedded: tuple[str, str] | None = None,
) -> str:
    """Install vemoclap[extra] from `source` into `python`'s environment, keeping what it has.

    source: a wheel, a folder, a git/https URL or a package name; default $VEMOCLAP_INSTALL_SOURCE, else
    ``embedded``, the (file name, base64) of the wheel the notebook carries. Returns a report: what was
    added, what changed (only allow-listed names can), and whether cv2 is still the same OpenCV build.
    """
    if not (source or os.environ.get(SOURCE_ENV)) and python == sys.executable:
        import importlib.util

        if importlib.util.find_spec("vemoclap") is not None:  # a rerun, or a kernel that has it already
            import importlib.metadata

            try:
                version = importlib.metadata.version("vemoclap")
            except importlib.metadata.PackageNotFoundError:  # a source checkout on the path
                version = "from source"
            return f"vemoclap {version} is already installed: nothing added (set {SOURCE_ENV} to reinstall)"
    source = source or os.environ.get(SOURCE_ENV)
    if not source:
        if embedded is None:
            raise InstallError(
                "no vemoclap to install: run the notebook's cell that carries it (just before step 1) first, "
                f"or set {SOURCE_ENV}, or install(source=...), to a vemoclap wheel or folder"
            )
        with tempfile.TemporaryDirectory(prefix="vemoclap-wheel-") as folder:
            report = _install(write_wheel(*embedded, folder), extra, python, allow_upgrade)
        return report.replace(f"installed from {folder}/", "installed from the wheel this notebook carries: ", 1)
    return _install(source, extra, python, allow_upgrade)


def _install(source: str, extra: str, python: str, allow_upgrade: tuple[str, ...]) -> str:
    spec = _spec(source, extra)
    before = snapshot(python)
    allowed = {_canon(n) for n in allow_upgrade} | {"vemoclap"}
    with tempfile.TemporaryDirectory(prefix="vemoclap-install-") as tmp:
        constraints = Path(tmp, "constraints.txt")
        constraints.write_text("".join(f"{n}=={v}\n" for n, v in sorted(before["dists"].items()) if n not in allowed))
        report_path = Path(tmp, "report.json")
        # only a copy the kernel already has is upgraded; otherwise vemoclap's own requirements bring them
        upgrade = [n for n in allow_upgrade if _canon(n) in before["dists"]]
        upgrade_args = [*upgrade, "--upgrade", "--upgrade-strategy", "only-if-needed"] if upgrade else []
        proc = _pip(
            python, ["--dry-run", "--quiet", "--report", str(report_path), "-c", str(constraints), spec, *upgrade_args]
        )
        if proc.returncode != 0:
            raise _fail(source, proc)
        planned = json.loads(report_path.read_text()).get("install", [])
        have_cv2 = any(n in before["dists"] for n in OPENCV_DISTRIBUTIONS)
        skipped, pins = [], []
        for item in planned:
            name, version = _canon(item["metadata"]["name"]), item["metadata"]["version"]
            if name == "vemoclap":
                continue
            if have_cv2 and name in OPENCV_DISTRIBUTIONS:
                skipped.append(f"{name} {version}")
                continue
            pins.append(f"{name}=={version}")
        proc = _pip(python, ["--quiet", "--no-deps", "-c", str(constraints), spec, *pins])
        if proc.returncode != 0:
            raise _fail(source, proc)
    after = snapshot(python)
    added, changed = _changes(before["dists"], after["dists"])
    cv2_line, _ = _cv2_line(before["cv2"], after["cv2"])
    lines = [
        f"vemoclap {after['dists'].get('vemoclap', '?')} installed from {source}",
        f"added {len(added)}: {', '.join(added) or 'nothing'}",
        f"changed {len(changed)}: {', '.join(changed) or 'nothing'}",
        cv2_line,
    ]
    if skipped:
        lines.append(f"not installed (the kernel's OpenCV already provides cv2): {', '.join(skipped)}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(install(*sys.argv[1:2]))
