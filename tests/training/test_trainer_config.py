"""TrainGenerator's arguments are validated when it is built; configs can be dicts."""

import random

import numpy as np
import pytest
from training_helpers import dense_arrays, dense_datagens, dense_model

from trainkit import DataGenerator, TrainGenerator


@pytest.fixture(scope="module")
def model():
    return dense_model()


@pytest.fixture(scope="module")
def datagens():
    return dense_datagens()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"epoch": 3}, ValueError, r"unknown argument 'epoch'\. Did you mean 'epochs'\?"),
        ({"val_frq": {"epoch": 1}}, ValueError, "Did you mean 'val_freq'"),
        ({"reset_stateful": True}, ValueError, "Did you mean 'reset_statefuls'"),
        ({"epochs": "3"}, TypeError, r"`epochs` must be an int\. Received: epochs='3'"),
        ({"epochs": -1}, ValueError, "Received: epochs=-1"),
        ({"val_freq": {"epochs": 1}}, ValueError, "unknown unit 'epochs'. Did you mean 'epoch'"),
        ({"val_freq": {"val": 1}}, ValueError, "unknown unit 'val'"),
        ({"val_freq": {"epoch": 1, "batch": 2}}, ValueError, "one key"),
        ({"val_freq": 2}, TypeError, "Received: val_freq=2"),
        ({"val_freq": {"iter": 0}}, ValueError, r"positive int\. Received: val_freq\['iter'\]=0"),
        ({"checkpoint_freq": {"val": 0}}, ValueError, "checkpoint_freq"),
        ({"iter_verbosity": 3}, ValueError, "Received: iter_verbosity=3"),
        ({"key_metric": 1}, TypeError, "Received: key_metric=1"),
        ({"max_is_best": "yes"}, TypeError, "Received: max_is_best='yes'"),
        ({"reset_statefuls": 1}, TypeError, "Received: reset_statefuls=1"),
        ({"input_as_labels": None}, TypeError, "input_as_labels"),
        ({"seed": -2}, ValueError, "Received: seed=-2"),
        ({"max_checkpoints": 0}, ValueError, "max_checkpoints"),
        ({"model_configs": [1]}, TypeError, "model_configs"),
        ({"model_base_name": ""}, TypeError, "model_base_name"),
        ({"callbacks": [object()]}, TypeError, "Each callback must be"),
        ({"callbacks": "csv"}, TypeError, "`callbacks` must be a list"),
        ({"eval_fn": "score"}, ValueError, "Received: eval_fn='score'"),
        ({"progress_every": 0}, ValueError, "progress_every"),
    ],
)
def test_bad_arguments_are_refused_at_construction(model, datagens, kwargs, error, message):
    with pytest.raises(error, match=message):
        TrainGenerator(model, *datagens, **kwargs)


def test_a_strategy_that_is_not_a_mirrored_one_is_refused_naming_the_supported_ones(
    model, datagens
):
    import tensorflow as tf

    with pytest.raises(TypeError, match=r"MirroredStrategy.*MultiWorkerMirroredStrategy"):
        TrainGenerator(model, *datagens, strategy=object())
    with pytest.raises(TypeError, match="OneDeviceStrategy"):
        TrainGenerator(model, *datagens, strategy=tf.distribute.OneDeviceStrategy("/cpu:0"))


def test_model_and_generators_are_checked(model, datagens):
    import keras

    uncompiled = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="must be compiled"):
        TrainGenerator(uncompiled, datagens[0])
    with pytest.raises(TypeError, match=r"`model` must be a keras\.Model"):
        TrainGenerator("model", datagens[0])
    with pytest.raises(TypeError, match=r"`datagen` must be a trainkit\.DataGenerator"):
        TrainGenerator(model, np.zeros(3))
    with pytest.raises(ValueError, match="different DataGenerator object"):
        TrainGenerator(model, datagens[0], datagens[0])


def test_seed_seeds_python_numpy_and_keras_at_construction(model, datagens):
    TrainGenerator(model, *datagens, seed=7)
    drawn = (random.random(), np.random.random())
    random.seed(7)
    np.random.seed(7)
    assert drawn == (random.random(), np.random.random())


def test_a_run_can_be_configured_from_plain_dicts():
    x, y = dense_arrays(40)
    C = {
        "datagen": {"data": x[:30], "labels": y[:30], "batch_size": 8, "shuffle": True},
        "val_datagen": {"data": x[30:], "labels": y[30:], "batch_size": 5},
        "traingen": {
            "epochs": 2,
            "val_freq": {"batch": 2},
            "key_metric": "accuracy",
            "iter_verbosity": 0,
            "seed": 0,
            "progress_every": 2,
        },
    }
    trainer = TrainGenerator(
        dense_model(), DataGenerator(**C["datagen"]), DataGenerator(**C["val_datagen"]),
        **C["traingen"],
    )  # fmt: skip
    trainer.train()
    assert (trainer.epoch, trainer.batches_fit, trainer.times_validated) == (2, 8, 4)
    assert trainer.max_is_best is True
    assert trainer.best_key_metric == max(trainer.val_history["accuracy"])


def test_loop_state_round_trips_through_json(model, datagens):
    import json

    trainer = TrainGenerator(dense_model(), *dense_datagens(), epochs=1, iter_verbosity=0)
    trainer.train()
    state = json.loads(json.dumps(trainer.state_dict()))
    other = TrainGenerator(dense_model(), *dense_datagens(), iter_verbosity=0)
    other.load_state_dict(state)
    assert other.state_dict() == trainer.state_dict()
    assert (other.epoch, other.history) == (trainer.epoch, trainer.history)
    with pytest.raises(ValueError, match="version"):
        other.load_state_dict({**state, "version": 99})
