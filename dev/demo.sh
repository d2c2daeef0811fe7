#!/usr/bin/env bash
# Set everything up and run the main job (the quick start example).
set -euo pipefail
cd "$(dirname "$0")/.."
bash dev/setup.sh
export TF_CPP_MIN_LOG_LEVEL=2
.venv/bin/python examples/train_digits.py "$@"
