#!/usr/bin/env bash
# Ray Train's recipe (docs/distributed.md): install `ray[train]` into .venv and run its test,
# tests/distributed/test_ray.py (two Ray workers against one device, and a worker lost and
# resumed). Not part of the default suite: Ray is not a trainkit dependency, and the test
# file takes about 2 minutes on a 2-core machine. Once Ray is installed, dev/test.sh runs
# this file too (it is skipped only where Ray is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
bash dev/setup.sh
.venv/bin/python -m pip install --quiet "ray[train]"
export TF_CPP_MIN_LOG_LEVEL=2
.venv/bin/python -m pytest tests/distributed/test_ray.py --durations=5 --timeout=900 "$@"
