#!/usr/bin/env bash
# Set everything up and run the main job: examples/01_quick_start.py at full size.
# Its run folder (checkpoints, history.png, the report, metrics.csv) goes under logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash dev/setup.sh
export TF_CPP_MIN_LOG_LEVEL=2
export TRAINKIT_EXAMPLES_OUT="${TRAINKIT_EXAMPLES_OUT:-$PWD/logs}"
mkdir -p "$TRAINKIT_EXAMPLES_OUT"
.venv/bin/python examples/01_quick_start.py
