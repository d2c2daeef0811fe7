"""state.json is strict JSON: non-finite floats have one encoding, read back as floats."""

from __future__ import annotations

import json
import math
import os

import numpy as np

from trainkit.checkpoints import checkpoint_dirs


def strict_loads(text: str):
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


STATE = {
    "history": {"roc_auc": [0.5, float("nan"), 0.75], "loss": [float("inf")]},
    "best_key_metric": -math.inf,
    "nested": [{"value": float("nan")}, (1.0, float("-inf"))],
    "name": "inf",  # a string stays a string
}


def test_non_finite_floats_are_written_as_strict_json_in_one_encoding():
    text = checkpoint_dirs.dumps_state(STATE)
    parsed = strict_loads(text)  # a strict parser accepts it
    assert parsed["history"]["roc_auc"][1] == {"$float": "nan"}
    assert parsed["best_key_metric"] == {"$float": "-inf"}
    assert parsed["name"] == "inf"
    back = checkpoint_dirs.loads_state(text)
    assert math.isnan(back["history"]["roc_auc"][1]) and back["history"]["loss"] == [math.inf]
    assert back["nested"][1] == [1.0, -math.inf] and back["best_key_metric"] == -math.inf


def test_checkpoints_write_strict_json_and_read_older_files_with_nan_tokens(tmp_path):
    path = checkpoint_dirs.write_checkpoint(
        str(tmp_path), iters_fit=3, arrays={"w": np.zeros(2)}, state=STATE
    )
    with open(f"{path}/{checkpoint_dirs.STATE_FILE}", encoding="utf-8") as file:
        strict_loads(file.read())
    _, state = checkpoint_dirs.read_checkpoint(path)
    assert math.isnan(state["history"]["roc_auc"][1]) and state["best_key_metric"] == -math.inf
    old = json.dumps(STATE, allow_nan=True)  # what earlier versions wrote
    assert "NaN" in old and "Infinity" in old
    back = checkpoint_dirs.loads_state(old)
    assert math.isnan(back["history"]["roc_auc"][1]) and back["history"]["loss"] == [math.inf]


def test_a_trainers_checkpoint_holds_no_non_finite_token_and_no_infinity_string(tmp_path):
    import keras

    from trainkit import DataGenerator, TrainGenerator

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.zeros((8, 3), "float32")
    tg = TrainGenerator(
        model, DataGenerator(data=x, labels=x[:, :1], batch_size=4), iter_verbosity=0,
        logs_dir=str(tmp_path),
    )  # fmt: skip
    tg.train()  # no validation: best_key_metric stays +inf
    (checkpoint,) = [name for name in os.listdir(tg.run_dir) if name.startswith("ckpt")]
    with open(f"{tg.run_dir}/{checkpoint}/{checkpoint_dirs.STATE_FILE}", encoding="utf-8") as file:
        text = file.read()
    parsed = strict_loads(text)
    assert parsed["trainer"]["best_key_metric"] == {"$float": "inf"}

    def bare_words(value):  # non-finite floats spelled as plain strings, outside $float
        if isinstance(value, dict):
            if set(value) == {"$float"}:
                return []
            return [word for item in value.values() for word in bare_words(item)]
        if isinstance(value, list):
            return [word for item in value for word in bare_words(item)]
        return [value] if value in ("inf", "-inf", "nan", "Infinity", "NaN") else []

    assert bare_words(parsed) == []
