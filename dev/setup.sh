#!/usr/bin/env bash
# Create ./.venv (if needed) and install trainkit into it, editable, with its test tools.
# TensorFlow comes as an extra: if the venv already has `tensorflow` (e.g. a GPU build),
# it is kept; otherwise the CPU wheel is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
extras="test"
if ! .venv/bin/python -c "import tensorflow" >/dev/null 2>&1; then
  extras="cpu,test"
fi
.venv/bin/python -m pip install --quiet -e ".[$extras]"
