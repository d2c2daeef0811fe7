"""Every saved setting is used on resume, in a new process, without passing it again.

For each case a process trains with every setting away from its default and is killed
with SIGKILL after a checkpoint; a second process builds the trainer from the model,
the generators, `logs_dir` and the run folder only. It must report the saved settings
and end bitwise equal to an uninterrupted run (class weights, predict-mode f1,
predict_threshold, slice weights, stateful resets and autoencoder labels all shape the
weights or the scores, so a setting adopted in name only would show).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "settings_case.py")
CASES = ("mlp", "lstm")


def _run(case: str, mode: str, logs_dir: str, out: str) -> int:
    command = [sys.executable, SCRIPT, case, mode, logs_dir, out]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if done.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"{case} {mode}: exit {done.returncode}\n{done.stderr[-3000:]}")
    return done.returncode


def _paths(root: str, name: str) -> tuple[str, str]:
    """`(logs_dir, out_file)` of one run."""
    return os.path.join(root, name), os.path.join(root, f"{name}.npz")


def _chain(case: str, root: str) -> list[int]:
    logs_dir, out = _paths(root, f"{case}-chain")
    return [_run(case, mode, logs_dir, out) for mode in ("first", "resume")]


def _load(out: str) -> tuple[list[np.ndarray], dict]:
    with np.load(out) as arrays:
        weights = [arrays[f"arr_{k}"] for k in range(len(arrays.files))]
    with open(out + ".json") as file:
        return weights, json.load(file)


@pytest.fixture(scope="session")
def settings_runs(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("settings_resume"))
    with ThreadPoolExecutor(max_workers=4) as pool:
        full = {
            case: pool.submit(_run, case, "full", *_paths(root, f"{case}-full")) for case in CASES
        }
        chains = {case: pool.submit(_chain, case, root) for case in CASES}
        codes = {case: chains[case].result() for case in CASES}
        for future in full.values():
            future.result()
    return {
        case: (
            codes[case],
            _load(os.path.join(root, f"{case}-full.npz")),
            _load(os.path.join(root, f"{case}-chain.npz")),
        )
        for case in CASES
    }


@pytest.mark.parametrize("case", CASES)
def test_a_resumed_run_uses_every_saved_setting_without_passing_it_again(settings_runs, case):
    codes, (_, full), (_, resumed) = settings_runs[case]
    assert codes == [-signal.SIGKILL, 0]
    assert resumed["settings"] == full["settings"]


@pytest.mark.parametrize("case", CASES)
def test_a_run_resumed_without_its_settings_ends_bitwise_equal(settings_runs, case):
    _, (full_weights, full), (weights, resumed) = settings_runs[case]
    assert len(weights) == len(full_weights)
    for expected, got in zip(full_weights, weights, strict=True):
        assert np.array_equal(expected, got)
    assert resumed["history"] == full["history"]
    assert resumed["val_history"] == full["val_history"]


def test_the_cases_really_move_settings_away_from_their_defaults(settings_runs):
    _, (_, mlp), _ = settings_runs["mlp"]
    _, (_, lstm), _ = settings_runs["lstm"]
    assert mlp["settings"]["class_weights"] == {"0": 1.0, "1": 5.0}
    assert mlp["settings"]["options"]["predict_threshold"] == 0.4
    assert "f1" in mlp["val_history"]
    assert lstm["settings"]["input_as_labels"] and lstm["settings"]["reset_statefuls"]
