#!/usr/bin/env bash
# The Colab-like check (issue 12): a Python 3.13 venv holding Colab's preinstalled packages at Colab's
# versions (scripts/colab/pip-freeze.gpu.txt), then the notebook's step-1 install (vemoclap/app/install.py,
# this folder as the source), then (a) nothing preinstalled changed and cv2 is still Colab's OpenCV,
# (b) ".[models,app]" resolves on 3.13 (and on 3.12 if pyenv has it) with Colab's versions as constraints.
# Wheels are cached in ~/.cache/vemoclap-ci/wheels (torch is GBs). Run alone: bash scripts/colab_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WHEELS=${VEMOCLAP_CI_WHEELS:-$HOME/.cache/vemoclap-ci/wheels}
VENV=${VEMOCLAP_COLAB_VENV:-$(mktemp -d)/colab313}
CONSTRAINTS=$(mktemp)
# pip takes no "name @ URL" constraints, and PyPI's torch carries no "+cu128" label
grep -v -e '^#' -e ' @ ' scripts/colab/pip-freeze.gpu.txt | sed 's/+cu[0-9]*$//' > "$CONSTRAINTS"
PRE="torch torchvision numpy scipy pillow pandas matplotlib opencv-python transformers huggingface_hub tokenizers
     safetensors ipywidgets ipykernel ipython notebook nbclient nbformat certifi protobuf requests"
pins=$(for p in $PRE; do grep -i "^${p}==" "$CONSTRAINTS"; done)
mkdir -p "$WHEELS"
start=$(date +%s)
pip download -q --python-version 3.13 --only-binary=:all: -d "$WHEELS" -c "$CONSTRAINTS" $pins
PYENV_VERSION=3.13.0 python -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check --find-links "$WHEELS" -c "$CONSTRAINTS" $pins
echo "colab-like venv ready in $(( $(date +%s) - start )) s"
"$VENV/bin/python" scripts/colab/check.py "$ROOT" "$CONSTRAINTS"
echo "colab-like check done in $(( $(date +%s) - start )) s"
