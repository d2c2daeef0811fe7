"""Resume in one process: settings precedence, refusals, best models, pruning, callbacks."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest

from trainkit import DataGenerator, TrainGenerator
from trainkit.checkpoints import complete_checkpoints
from trainkit.testing import assert_resume_equivalent

RNG = np.random.default_rng(0)
X = RNG.random((48, 5), dtype=np.float32)
Y = (X.sum(axis=1) > 2.5).astype("float32")


def build_model(seed: int = 0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dropout(0.2),
         keras.layers.Dense(1, activation="sigmoid")]
    )  # fmt: skip
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy", metrics=["accuracy"])
    return model


def datagens(batch_size: int = 8):
    train = DataGenerator(data=X[:32], labels=Y[:32], batch_size=batch_size, shuffle=True, seed=1)
    val = DataGenerator(data=X[32:], labels=Y[32:], batch_size=8)
    return train, val


def trainer(logs_dir, resume=False, *, batch_size=8, **kwargs):
    kwargs = {"epochs": 2, "iter_verbosity": 0, **kwargs}
    return TrainGenerator(
        build_model(), *datagens(batch_size), logs_dir=str(logs_dir), resume=resume, **kwargs
    )


def test_assert_resume_equivalent_holds_for_a_shuffled_dropout_adam_setup(tmp_path):
    def make_trainer(logs_dir, resume, callbacks):
        return TrainGenerator(
            build_model(), *datagens(), epochs=2, logs_dir=logs_dir, resume=resume,
            callbacks=callbacks, iter_verbosity=0, checkpoint_freq=None,
        )  # fmt: skip

    assert_resume_equivalent(make_trainer, str(tmp_path), cut_points=(1, 4, 6))


def test_the_checkpoint_folder_holds_a_loadable_model_arrays_and_state(tmp_path):
    tg = trainer(tmp_path, checkpoint_freq={"batch": 2})
    tg.train()
    checkpoints = complete_checkpoints(tg.run_dir)
    assert len(checkpoints) == 4  # batches 2, 4, 6, 8
    names = sorted(os.listdir(checkpoints[-1]))
    assert names == ["arrays.npz", "manifest.json", "model.keras", "state.json"]
    loaded = keras.models.load_model(os.path.join(checkpoints[-1], "model.keras"))
    np.testing.assert_allclose(loaded.predict(X[:4], verbose=0), tg.model.predict(X[:4], verbose=0))
    assert os.path.basename(tg.run_dir) == "M1__model"


def test_resume_true_continues_the_newest_run_and_explicit_arguments_win(tmp_path):
    first = trainer(tmp_path, epochs=1, checkpoint_freq={"epoch": 1})
    first.train()
    resumed = trainer(tmp_path, resume=True, epochs=3)  # epochs may change
    assert resumed.run_dir == first.run_dir
    assert resumed.epoch == 1 and resumed.iters_fit == first.iters_fit
    assert resumed.checkpoint_freq.unit == "epoch"  # explicit: the default {'epoch': 1}
    resumed.train()
    assert resumed.epoch == 3


def test_saved_settings_beat_defaults_on_resume(tmp_path):
    trainer(tmp_path, epochs=1, checkpoint_freq={"batch": 3}, max_checkpoints=7).train()
    resumed = TrainGenerator(build_model(), *datagens(), logs_dir=str(tmp_path), resume=True)
    assert resumed.epochs == 1
    assert (resumed.checkpoint_freq.unit, resumed.checkpoint_freq.n) == ("batch", 3)
    assert resumed.max_checkpoints == 7
    assert resumed.iter_verbosity == 0


@pytest.mark.parametrize(
    ("change", "named"),
    [({"key_metric": "accuracy"}, "key_metric"), ({"reset_statefuls": True}, "reset_statefuls")],
)
def test_a_changed_data_affecting_setting_is_refused_naming_it(tmp_path, change, named):
    trainer(tmp_path, epochs=1).train()
    with pytest.raises(ValueError, match=f"`{named}` affects what is trained"):
        trainer(tmp_path, resume=True, **change)


def test_a_generator_with_other_settings_is_refused_naming_the_setting(tmp_path):
    trainer(tmp_path, epochs=1).train()
    with pytest.raises(ValueError, match=r"Cannot resume `datagen`.*batch_size"):
        trainer(tmp_path, resume=True, batch_size=4)


def test_resume_true_with_nothing_to_resume_starts_a_new_run_and_says_so(tmp_path, capsys):
    tg = trainer(tmp_path, resume=True)
    assert "starting a new run" in capsys.readouterr().out
    assert tg.iters_fit == 0 and os.path.isdir(tg.run_dir)


def test_a_new_run_never_overwrites_an_old_one(tmp_path):
    one = trainer(tmp_path, epochs=1)
    two = trainer(tmp_path, epochs=1)
    assert one.run_dir != two.run_dir and os.path.basename(two.run_dir) == "M2__model"


def test_resume_from_a_named_checkpoint_and_bad_paths_are_explained(tmp_path):
    tg = trainer(tmp_path, checkpoint_freq={"batch": 1})
    tg.train()
    third = complete_checkpoints(tg.run_dir)[0]
    resumed = trainer(tmp_path, resume=third)
    assert resumed.run_dir == tg.run_dir
    with pytest.raises(FileNotFoundError, match="neither a checkpoint folder"):
        trainer(tmp_path, resume=str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="`resume` needs `logs_dir`"):
        TrainGenerator(build_model(), *datagens(), resume=True)


def test_best_models_are_saved_and_the_best_checkpoint_survives_pruning(tmp_path):
    tg = trainer(tmp_path / "logs", epochs=4, checkpoint_freq={"batch": 1}, max_checkpoints=2,
                 val_freq={"epoch": 1}, best_models_dir=str(tmp_path / "best"))  # fmt: skip
    tg.train()
    saved = sorted(os.listdir(tmp_path / "best"))
    history = tg.key_metric_history  # one best model per validation that improved on all before
    improved = [i for i, value in enumerate(history) if value < min(history[:i], default=np.inf)]
    assert len(saved) == len(improved) >= 1
    assert sorted(os.listdir(tmp_path / "best" / saved[0])) == ["model.keras", "state.json"]
    remaining = complete_checkpoints(tg.run_dir)
    assert tg._run.best_checkpoint in remaining
    assert len(remaining) <= 3  # 2 kept + the best


def _lines(path):
    with open(path) as file:
        return file.read().count("\n")


def test_stock_keras_callbacks_resume_with_their_state(tmp_path):
    csv_path = str(tmp_path / "keras_log.csv")

    def callbacks():
        return [keras.callbacks.EarlyStopping(monitor="val_loss", patience=50),
                keras.callbacks.CSVLogger(csv_path)]  # fmt: skip

    stopper, logger = callbacks()
    first = trainer(tmp_path / "logs", epochs=2, callbacks=[stopper, logger])
    first.train()
    rows_before = _lines(csv_path)
    wait, best = stopper.wait, stopper.best
    stopper2, logger2 = callbacks()
    resumed = trainer(tmp_path / "logs", resume=True, epochs=3, callbacks=[stopper2, logger2])
    resumed.train()
    assert _lines(csv_path) == rows_before + 1  # one more epoch, no duplicates
    assert stopper2.best <= best
    assert stopper2.wait in (0, wait + 1)


def test_an_unknown_stock_callback_gets_a_warning_that_its_state_is_not_saved(tmp_path):
    class Custom(keras.callbacks.Callback):
        pass

    with pytest.warns(UserWarning, match="state of callback Custom is not saved"):
        trainer(tmp_path, callbacks=[Custom()])


def test_checkpoint_on_demand_needs_logs_dir():
    tg = TrainGenerator(build_model(), *datagens(), iter_verbosity=0)
    with pytest.raises(ValueError, match="needs a run folder"):
        tg.checkpoint()


def test_resume_given_an_offline_store_says_it_is_data_not_a_checkpoint(tmp_path):
    from trainkit import write_store

    folder = str(tmp_path / "store")
    write_store(DataGenerator(data=X[:16], labels=Y[:16], batch_size=8), folder, chunk_size=1)
    with pytest.raises(ValueError, match=r"is an offline store written by write_store"):
        trainer(tmp_path / "logs", resume=folder)


def test_an_assigned_plot_history_freq_and_introspect_freq_survive_a_resume(tmp_path):
    tg = trainer(tmp_path, epochs=1)
    tg.plot_history_freq = {"epoch": 1}
    tg.introspect_freq = {"batch": 2}
    tg.train()
    resumed = trainer(tmp_path, resume=True, epochs=1)
    assert (resumed.plot_history_freq.unit, resumed.plot_history_freq.n) == ("epoch", 1)
    assert (resumed.introspect_freq.unit, resumed.introspect_freq.n) == ("batch", 2)
