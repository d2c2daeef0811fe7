"""MirroredStrategy over 2 logical CPU devices against one device, same global batch.

The batch of 16 splits 8/8 and the partial last batch of 11 splits 5/6: each replica's
loss is weighted by its rows, so both train to the same weights, losses, validation
metrics (evaluate and predict mode) and predictions, up to float rounding (stated
below). A stateful LSTM built with one replica's batch size keeps each replica's rows'
states. A mid-run checkpoint resumed under the strategy ends bitwise equal, and so does
`steps_per_execution=4`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

CASE = Path(__file__).with_name("mirrored_case.py")
# Summing two replicas' gradients rounds differently from one device's sum: after 15
# Adam steps the weights agree to about 1e-6; the bound leaves a margin.
ATOL = 2e-5


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> dict:
    logs = tmp_path_factory.mktemp("mirrored")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, str(CASE), str(logs)], capture_output=True, text=True, env=env,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def close(a, b) -> None:
    for x, y in zip(a, b):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=ATOL, rtol=0)


@pytest.mark.parametrize("eval_fn", ["evaluate", "predict"])
def test_two_replicas_train_to_the_weights_of_one_device(result, eval_fn):
    one, mirrored = result[eval_fn]["one"], result[eval_fn]["mirrored"]
    assert result["replicas"] == 2
    assert mirrored["iters_fit"] == one["iters_fit"] == 15  # 5 batches (the last of 11) x 3
    close(mirrored["weights"], one["weights"])
    close([mirrored["loss"]], [one["loss"]])
    assert set(mirrored["val"]) == set(one["val"])
    for name in one["val"]:
        close([mirrored["val"][name]], [one["val"][name]])
    close([mirrored["predictions"]], [one["predictions"]])


def test_a_mirrored_run_resumed_from_a_mid_run_checkpoint_ends_bitwise_equal(result):
    assert result["resumed_from"].startswith("ckpt-000000004")
    uninterrupted, resumed = result["evaluate"]["mirrored"], result["resumed"]
    for a, b in zip(resumed["weights"], uninterrupted["weights"]):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert resumed["loss"] == uninterrupted["loss"]


def test_a_stateful_lstm_keeps_each_replicas_rows_states_and_trains_as_one_device(result):
    one, mirrored = result["stateful"]["one"], result["stateful"]["mirrored"]
    assert len(mirrored["loss"]) == len(one["loss"]) == 8  # 4 batches of 4 windows, 2 epochs
    close(mirrored["weights"], one["weights"])
    close([mirrored["loss"]], [one["loss"]])
    assert len(mirrored["predictions"]) == len(one["predictions"]) == 128  # 32 rows x 4 windows
    close([mirrored["predictions"]], [one["predictions"]])


def test_fused_steps_under_the_strategy_equal_one_step_per_slice_bitwise(result):
    one_by_one, fused = result["evaluate"]["mirrored"], result["fused"]
    assert fused["iters_fit"] == one_by_one["iters_fit"]
    for a, b in zip(fused["weights"], one_by_one["weights"]):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert fused["loss"] == one_by_one["loss"]
    assert fused["val"] == one_by_one["val"]


def test_an_offline_store_trains_under_the_strategy_as_on_one_device(result):
    one, mirrored = result["store"]["one"], result["store"]["mirrored"]
    assert len(mirrored["loss"]) == len(one["loss"]) == 10  # 5 stored batches x 2 epochs
    close(mirrored["weights"], one["weights"])
    close([mirrored["loss"]], [one["loss"]])
