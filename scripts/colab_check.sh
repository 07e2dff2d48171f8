#!/usr/bin/env bash
# The Colab-like check (issue 12): a Python 3.13 venv holding Colab's preinstalled packages at Colab's
# versions (scripts/colab/pip-freeze.gpu.txt), the notebook's step-1 install from the notebook file alone, then:
# nothing preinstalled changed and cv2 is still Colab's OpenCV build; the notebook run headless with tiny
# models through every source (sample, a 50 MB upload through the stand-in google.colab, a path, a link
# on 127.0.0.1); ".[notebook,app]" (faster-whisper included) resolves on Python 3.13 and 3.12 with Colab's
# versions as constraints.
# Cached in ~/.cache/vemoclap-ci (VEMOCLAP_CI_CACHE moves it): the first run fetches ~3 GB of wheels and
# builds the venv once. The tiny models are made by the project's venv (.venv, or $VEMOCLAP_PYTHON).
# Run alone: bash scripts/colab_check.sh [--work DIR] [--resolve-only]     (details: scripts/colab/check.py)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${VEMOCLAP_PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
exec "$PY" scripts/colab/check.py "$@"
