"""Killed with SIGKILL anywhere, resumed: bitwise the uninterrupted run.

Each case runs in subprocesses: an uninterrupted reference, and a chain of processes
each killed at one point (between slices of a batch, inside a train step, during
validation, in the middle of writing a checkpoint or of appending to the histories log)
and resumed with `resume=True` by the next. The references serve synchronously
(prefetch=0), the killed chains with a prefetch thread running ahead (prefetch=2: the
adaptive default would serve these tiny models synchronously). The chains and references
run in parallel threads to keep the suite fast.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "resume_cases.py")
CHAINS = {
    # mlp: RandomCrop, shuffled sets, Dropout, Adam; 6 batches of 1 slice per epoch.
    "mlp": ["iter:6", "step:9", "val:1:1", "ckpt:1", "hist:1", None],
    # lstm: stateful LSTM on windows, 3 slices per batch; iter 7 is mid-batch.
    "lstm": ["iter:7", "ckpt:2", "val:1:0", None],
    # mlp with steps_per_execution=8: killed while a fused group's slices are accounted
    # (iter 6 of the group 5-8), in validation and in a checkpoint; compared with the
    # uninterrupted mlp run that fits one slice per call.
    "mlp-fused": ["iter:6", "val:1:1", "ckpt:1", None],
    # mlp with a NaN sample whose slice on_nonfinite='skip' leaves out in every epoch.
    "mlp-skip": ["iter:6", "ckpt:1", None],
    # mlp with async_checkpoints: killed in the middle of a background write (the 2nd of
    # the process: the 1st is complete, as a write waits for the one before it), then
    # after iter 9, while the write of iter 8 may still run; compared with the sync mlp.
    # Then in the middle of a background append to the histories log.
    "mlp-async": ["ckpt:2", "iter:9", "hist:1", None],
    # mlp on arrays cropped beforehand, served as they are, 8 slices per call: each fused
    # group's batches are served at once; compared with the same data one slice per call.
    "mlp-whole": ["iter:6", "val:1:1", "ckpt:1", None],
    # the same, 4 slices per call: the group of iters 13-16 runs written out (the third
    # full group of its shape) and is checkpointed; killed at iter 17 and resumed there.
    "mlp-written": ["iter:17", None],
}
# Cases whose uninterrupted reference is another case's.
REFERENCE = {
    "mlp-fused": "mlp", "mlp-async": "mlp", "mlp-whole": "mlp-plain", "mlp-written": "mlp-plain"
}  # fmt: skip


def _run(case: str, logs_dir: str, out: str, kill: str | None, prefetch: int | None = None) -> int:
    command = [sys.executable, SCRIPT, case, logs_dir, out] + ([kill] if kill else [])
    env = dict(os.environ)
    if prefetch is not None:
        env["TRAINKIT_CASE_PREFETCH"] = str(prefetch)
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    if done.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"{case} {kill}: exit {done.returncode}\n{done.stderr[-3000:]}")
    return done.returncode


def _chain(case: str, root: str) -> list[int]:
    logs_dir, out = os.path.join(root, f"{case}-run"), os.path.join(root, f"{case}-run.npz")
    return [_run(case, logs_dir, out, kill, prefetch=2) for kill in CHAINS[case]]


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("kill_resume"))
    with ThreadPoolExecutor(max_workers=4) as pool:
        references = {
            case: pool.submit(
                _run,
                case,
                os.path.join(root, f"{case}-ref"),
                os.path.join(root, f"{case}-ref.npz"),
                None,
                0,  # synchronous; the killed chain prefetches
            )
            for case in {REFERENCE.get(case, case) for case in CHAINS}
        }
        chains = {case: pool.submit(_chain, case, root) for case in CHAINS}
        codes = {case: chains[case].result() for case in CHAINS}
        for future in references.values():
            future.result()
    return root, codes


def _load(root: str, name: str):
    weights = np.load(os.path.join(root, f"{name}.npz"))
    with open(os.path.join(root, f"{name}.npz.json")) as file:
        logs = json.load(file)
    with open(glob.glob(os.path.join(root, name, "*", "metrics.csv"))[0]) as file:
        csv_text = file.read()
    return weights, logs, csv_text


@pytest.mark.parametrize("case", sorted(CHAINS))
def test_a_run_killed_at_several_points_ends_bitwise_equal_to_the_uninterrupted_run(runs, case):
    root, codes = runs
    assert codes[case] == [-signal.SIGKILL] * (len(CHAINS[case]) - 1) + [0]  # each kill happened
    ref_weights, ref_logs, ref_csv = _load(root, f"{REFERENCE.get(case, case)}-ref")
    weights, logs, csv_text = _load(root, f"{case}-run")
    assert ref_weights.files == weights.files
    for key in ref_weights.files:
        assert np.array_equal(ref_weights[key], weights[key]), key
    for name in ("history", "val_history", "skipped", "key_metric_history", "best_key_metric"):
        assert logs[name] == ref_logs[name], name  # the histories rebuilt from the log
    assert logs["epoch_batches"] == ref_logs["epoch_batches"] and len(logs["epoch_batches"]) == 3
    assert logs["val_batches"] == ref_logs["val_batches"] and logs["key_metric_history"]
    assert csv_text == ref_csv  # no duplicate rows from the killed processes
    if case == "mlp-written":  # the killed process ran a group written out
        assert os.path.exists(os.path.join(root, f"{case}-run.written-out"))
    if case == "mlp-skip":  # one slice left out per epoch, named in metrics.csv too
        assert [entry["epoch"] for entry in logs["skipped"]] == [0, 1, 2]
        assert all(5 in entry["samples"] for entry in logs["skipped"])
        assert csv_text.count("\nskipped,") == 3


def test_kills_leave_no_half_written_checkpoint_behind(runs):
    root, _ = runs
    for run_dir in glob.glob(os.path.join(root, "*-run", "*")):
        leftovers = [n for n in os.listdir(run_dir) if n.startswith(".tmp-")]
        assert leftovers == []
        for name in os.listdir(run_dir):
            if name.startswith("ckpt-"):
                assert os.path.isfile(os.path.join(run_dir, name, "state.json"))
