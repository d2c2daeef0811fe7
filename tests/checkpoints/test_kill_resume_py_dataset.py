"""A keras.utils.PyDataset source, killed with SIGKILL mid-epoch and resumed: bitwise equal.

One chain of processes trains `py_dataset_case.py` with prefetch running ahead (prefetch=2),
killed after iter 5 (epoch 0) and after iter 13 (epoch 1, 8 batches per epoch), each
resumed with `resume=True` by the next; the uninterrupted reference serves
synchronously (prefetch=0) in a parallel thread.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

SCRIPT = os.path.join(os.path.dirname(__file__), "py_dataset_case.py")
KILLS = ["iter:5", "iter:13", None]


def _run(logs_dir: str, out: str, kill: str | None, prefetch: int) -> int:
    command = [sys.executable, SCRIPT, "py-dataset", logs_dir, out] + ([kill] if kill else [])
    env = {**os.environ, "TRAINKIT_CASE_PREFETCH": str(prefetch)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    if done.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"{kill}: exit {done.returncode}\n{done.stderr[-3000:]}")
    return done.returncode


def _load(root: str, name: str):
    weights = np.load(os.path.join(root, f"{name}.npz"))
    with open(os.path.join(root, f"{name}.npz.json")) as file:
        return weights, json.load(file)


def test_a_py_dataset_run_killed_mid_epoch_with_prefetch_resumes_bitwise(tmp_path):
    root = str(tmp_path)
    with ThreadPoolExecutor(max_workers=2) as pool:
        reference = pool.submit(
            _run, os.path.join(root, "ref"), os.path.join(root, "ref.npz"), None, 0
        )
        codes = [
            _run(os.path.join(root, "run"), os.path.join(root, "run.npz"), kill, 2)
            for kill in KILLS
        ]
        reference.result()
    assert codes == [-signal.SIGKILL, -signal.SIGKILL, 0]  # each kill happened
    ref_weights, ref_logs = _load(root, "ref")
    weights, logs = _load(root, "run")
    assert ref_weights.files == weights.files
    for key in ref_weights.files:
        assert np.array_equal(ref_weights[key], weights[key]), key
    assert logs["history"] == ref_logs["history"]
    assert logs["val_history"] == ref_logs["val_history"]
