"""Stand-in for ``google.colab.files`` (see the package docstring)."""

import os
from pathlib import Path

downloaded = []


def _free_name(name):
    path = Path(name)
    n = 0
    while path.exists():
        n += 1
        path = Path(f"{Path(name).stem} ({n}){Path(name).suffix}")
    return path


def upload():
    chosen = os.environ.get("VEMOCLAP_STANDIN_UPLOAD")
    if not chosen:
        return {}
    source = Path(chosen)
    data = source.read_bytes()
    _free_name(source.name).write_bytes(data)
    return {source.name: data}


def download(filename):
    downloaded.append(str(filename))
