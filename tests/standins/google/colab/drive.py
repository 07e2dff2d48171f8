"""Stand-in for ``google.colab.drive`` (see the package docstring): records the call and makes
``<mountpoint>/MyDrive`` (point vemoclap at a temp folder with $VEMOCLAP_DRIVE)."""

from pathlib import Path

mounted = []


def mount(mountpoint, force_remount=False):
    mounted.append(str(mountpoint))
    (Path(mountpoint) / "MyDrive").mkdir(parents=True, exist_ok=True)
