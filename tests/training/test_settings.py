"""Settings: one resolved object behind the public attributes, checked on assignment."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest

from trainkit import DataGenerator, TrainGenerator
from trainkit.checkpoints import complete_checkpoints

RNG = np.random.default_rng(0)
X = RNG.random((40, 4), dtype=np.float32)
Y = (X.sum(axis=1) > 2).astype("float32")


def build_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy", metrics=["accuracy"])
    return model


def trainer(**kwargs):
    train = DataGenerator(data=X[:32], labels=Y[:32], batch_size=8)
    val = DataGenerator(data=X[32:], labels=Y[32:], batch_size=8)
    return TrainGenerator(build_model(), train, val, **{"iter_verbosity": 0, **kwargs})


def test_frequencies_assigned_as_attributes_are_checked_and_used():
    tg = trainer(epochs=4)
    tg.val_freq = {"epoch": 2}
    tg.train()
    assert tg.times_validated == 2
    assert (tg.val_freq.unit, tg.val_freq.n) == ("epoch", 2)


@pytest.mark.parametrize(
    ("name", "value", "error", "match"),
    [
        ("val_freq", {"epok": 2}, ValueError, "Did you mean 'epoch'"),
        ("checkpoint_freq", 3, TypeError, "checkpoint_freq"),
        ("epochs", -1, ValueError, "epochs"),
        ("iter_verbosity", 5, ValueError, "iter_verbosity"),
        ("max_checkpoints", 0, ValueError, "max_checkpoints"),
    ],
)
def test_a_bad_assigned_setting_is_refused_and_the_old_value_kept(name, value, error, match):
    tg = trainer()
    before = getattr(tg, name)
    with pytest.raises(error, match=match):
        setattr(tg, name, value)
    assert getattr(tg, name) == before


def test_assigning_an_unknown_public_name_suggests_the_closest_setting():
    tg = trainer()
    with pytest.raises(AttributeError, match="Did you mean 'checkpoint_freq'"):
        tg.unique_checkpoint_freq = {"epoch": 1}
    tg._private_scratch = 1  # private names stay free


@pytest.mark.parametrize("name", ["class_weights", "key_metric", "eval_fn", "input_as_labels"])
def test_settings_that_change_what_is_trained_are_read_only(name):
    tg = trainer()
    with pytest.raises(AttributeError, match=rf"TrainGenerator\(\.\.\., {name}=\.\.\.\)"):
        setattr(tg, name, getattr(tg, name))


def test_public_settings_are_views_of_the_one_object_the_loop_reads():
    tg = trainer(class_weights={0: 1, 1: 5})
    assert tg.class_weights == {0: 1.0, 1: 5.0}
    assert tg.class_weights is tg._settings.validation.class_weights


def test_objects_and_functions_in_model_configs_name_the_run_without_addresses(tmp_path):
    configs = {"optimizer": keras.optimizers.Adam(4e-4), "act": keras.activations.relu}
    tg = trainer(logs_dir=str(tmp_path), model_configs=configs, checkpoint_freq={"batch": 2})
    tg.train()
    name = os.path.basename(tg.run_dir)
    assert name == "M1__model-optimizer=Adam-act=relu"
    with open(os.path.join(complete_checkpoints(tg.run_dir)[-1], "state.json")) as file:
        saved = json.load(file)["settings"]["model_configs"]
    assert "0x" not in json.dumps(saved)
    assert saved["act"] == {"callable": "keras.src.activations.activations.relu"}
    # New objects with the same configuration: the same settings, so resuming is accepted.
    again = {"optimizer": keras.optimizers.Adam(4e-4), "act": keras.activations.relu}
    resumed = trainer(logs_dir=str(tmp_path), model_configs=again, resume=True, epochs=2)
    assert resumed.run_dir == tg.run_dir and resumed.iters_fit == 4
    with pytest.raises(ValueError, match="model_configs"):
        trainer(logs_dir=str(tmp_path), resume=True,
                model_configs={"optimizer": keras.optimizers.Adam(1e-3)})  # fmt: skip


def test_a_key_metric_changed_before_any_validation_is_accepted_on_resume(tmp_path):
    first = trainer(logs_dir=str(tmp_path), checkpoint_freq={"iter": 2}, val_freq=None)
    first.train()  # checkpoints, never validates
    resumed = trainer(
        logs_dir=str(tmp_path), resume=True, epochs=2, key_metric="accuracy", val_freq={"epoch": 1}
    )
    assert (resumed.key_metric, resumed.max_is_best) == ("accuracy", True)
    resumed.train()
    assert resumed.key_metric_history  # scored with the new key metric


def test_a_key_metric_changed_after_validations_is_refused_on_resume(tmp_path):
    trainer(logs_dir=str(tmp_path)).train()  # validates, then checkpoints at the epoch end
    with pytest.raises(ValueError, match="Cannot resume: `key_metric`"):
        trainer(logs_dir=str(tmp_path), resume=True, key_metric="accuracy")
    resumed = trainer(logs_dir=str(tmp_path), resume=True)  # the saved one is taken
    assert resumed.key_metric == "loss"


def test_loop_control_settings_may_change_on_resume_and_saved_ones_are_taken(tmp_path):
    trainer(logs_dir=str(tmp_path), val_freq={"batch": 2}, max_checkpoints=3).train()
    resumed = trainer(logs_dir=str(tmp_path), resume=True, epochs=3)
    assert resumed.epochs == 3
    assert (resumed.val_freq.unit, resumed.val_freq.n) == ("batch", 2)
    assert resumed.max_checkpoints == 3
    assert resumed._settings.sources["val_freq"] == "saved"


@pytest.mark.parametrize(
    ("value", "match"),
    [("", "empty string"), ("FILE", "is a file, not a folder"), ("FILE/sub", "is a file")],
)
def test_logs_dir_that_cannot_hold_run_folders_is_refused_clearly(tmp_path, value, match):
    file = tmp_path / "notes.txt"
    file.write_text("mine")
    path = value.replace("FILE", str(file))
    with pytest.raises(ValueError, match=match):
        trainer(logs_dir=path)
    assert file.read_text() == "mine"


def test_a_changed_key_metric_tracks_its_best_in_its_own_direction(tmp_path):
    trainer(logs_dir=str(tmp_path), checkpoint_freq={"iter": 2}, val_freq=None).train()
    resumed = trainer(
        logs_dir=str(tmp_path), resume=True, epochs=3, key_metric="accuracy", val_freq={"epoch": 1}
    )  # loss (lower is better) -> accuracy (higher is better)
    resumed.train()
    assert resumed.best_key_metric == max(resumed.key_metric_history)


def test_model_configs_are_described_once_so_objects_that_train_do_not_block_resume(tmp_path):
    model = build_model()
    configs = {"optimizer": model.optimizer}  # DeepTrain style: the object the model uses
    train = DataGenerator(data=X[:32], labels=Y[:32], batch_size=8)
    tg = TrainGenerator(model, train, logs_dir=str(tmp_path), model_configs=configs,
                        iter_verbosity=0)  # fmt: skip
    model.optimizer.learning_rate.assign(0.5)  # as ReduceLROnPlateau would
    tg.train()
    again = build_model()
    resumed = TrainGenerator(again, DataGenerator(data=X[:32], labels=Y[:32], batch_size=8),
                             logs_dir=str(tmp_path), resume=True, epochs=2,
                             model_configs={"optimizer": again.optimizer})  # fmt: skip
    assert resumed.run_dir == tg.run_dir


def test_arrays_passed_as_generators_get_a_short_message_suggesting_data_generator():
    x = np.arange(8000.0).reshape(2000, 4)
    with pytest.raises(TypeError, match=r"DataGenerator\(data=x, labels=y") as error:
        TrainGenerator(build_model(), x, x[:, 0])
    assert len(str(error.value)) < 600 and "7999" not in str(error.value)


class OwnTestStep(keras.Sequential):
    def test_step(self, data):  # its logged names cannot be known before a step
        return super().test_step(data)


def test_a_key_metric_found_missing_at_a_validation_records_nothing_each_time():
    keras.utils.set_random_seed(0)
    model = OwnTestStep([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("sgd", "binary_crossentropy")
    train = DataGenerator(data=X[:32], labels=Y[:32], batch_size=8)
    val = DataGenerator(data=X[32:], labels=Y[32:], batch_size=8)
    tg = TrainGenerator(model, train, val, key_metric="bogus", max_is_best=True, iter_verbosity=0)
    for _ in range(2):
        with pytest.raises(ValueError, match="key_metric='bogus' is not among"):
            tg.train()
        assert tg.times_validated == 0 and tg.val_history == {}


def test_a_trainer_seed_out_of_range_names_seed_and_the_range():
    with pytest.raises(ValueError, match=r"`seed` must be an int from 0 to 4294967295"):
        trainer(seed=2**80)


def test_a_checkpoint_taken_right_after_a_resume_keeps_the_metrics_rows(tmp_path):
    first = trainer(logs_dir=str(tmp_path), val_freq=None)
    first.train()
    metrics = os.path.join(first.run_dir, "metrics.csv")
    with open(metrics) as file:
        rows = file.read()
    resumed = trainer(logs_dir=str(tmp_path), resume=True, epochs=2)
    resumed.checkpoint()  # before any new row is written
    again = trainer(logs_dir=str(tmp_path), resume=True, epochs=2)
    again.train()
    with open(metrics) as file:
        assert file.read().startswith(rows)
