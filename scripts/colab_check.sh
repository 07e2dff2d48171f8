#!/usr/bin/env bash
# The Colab-like check (issue 12): a Python 3.13 venv holding Colab's preinstalled packages at Colab's
# versions (scripts/colab/pip-freeze.gpu.txt), the notebook's step-1 install from this checkout, then:
# nothing preinstalled changed and cv2 is still Colab's OpenCV build; the notebook run headless with tiny
# models through every source (sample, a 50 MB upload through the stand-in google.colab, a path, a link
# on 127.0.0.1); ".[models,app]" and ".[notebook]" resolve on Python 3.13 and 3.12 with Colab's versions.
# Wheels are cached in ~/.cache/vemoclap-ci (VEMOCLAP_CI_CACHE moves it; the first run fetches ~2.6 GB).
# Run alone: bash scripts/colab_check.sh [--work DIR] [--resolve-only]
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 scripts/colab/check.py "$@"
