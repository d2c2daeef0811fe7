#!/usr/bin/env bash
# Set everything up and run the whole test suite: lint, format check, type check, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash dev/setup.sh
export TF_CPP_MIN_LOG_LEVEL=2
echo "== ruff check" && .venv/bin/ruff check .
echo "== ruff format --check" && .venv/bin/ruff format --check .
echo "== mypy" && .venv/bin/mypy
echo "== pytest"
# Two processes (CI has 2 cores): a test file, or the notebooks and the docs site that
# shows them, stays on one process (conftest.py), so shared fixtures are built once.
# A process that dies (a crash, SIGKILL) stops the run, naming the test it ran:
# pytest-xdist 3.8 replaces a dead process under --dist loadgroup, then may wait forever.
.venv/bin/python -m pytest -n 2 --dist loadgroup --max-worker-restart=0 --durations=15 \
    --timeout=600 "$@"
