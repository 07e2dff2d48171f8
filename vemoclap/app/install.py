"""PLACEHOLDER written by the app helper; the colab helper owns the real installer.

The notebook's step 1 inlines this file's source (vemoclap is not importable before it is
installed), so it must use the standard library only and keep this signature.
"""
import importlib.util
import subprocess
import sys


def install(source=None, extra="notebook") -> str:
    """Install vemoclap (``source``: a wheel, folder or git URL; default the published package with
    ``extra``) unless it is already importable; returns a report of what was added."""
    if source is None and importlib.util.find_spec("vemoclap") is not None:
        return "vemoclap is already installed; nothing was added"
    target = source or f"vemoclap[{extra}]"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", target], check=True)
    return f"installed {target}"
