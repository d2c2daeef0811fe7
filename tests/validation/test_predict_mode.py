"""Predict-mode validation equals the metrics computed on `model.predict` of all the data."""

import itertools

import numpy as np
import pytest
from sklearn import metrics as skm
from validation_helpers import binary_arrays, binary_model, sparse_model

from trainkit import DataGenerator, TrainGenerator, metrics
from trainkit.callbacks import Callback

X, Y = binary_arrays(70)
X_TRAIN, Y_TRAIN, X_VAL, Y_VAL = X[:40], Y[:40], X[40:], Y[40:]


@pytest.fixture(scope="module")
def model():
    return binary_model()


def datagens(val_batch_size=8, val_shuffle=False, x_val=X_VAL, y_val=Y_VAL):
    train = DataGenerator(data=X_TRAIN, labels=Y_TRAIN, batch_size=8, shuffle=True)
    val = DataGenerator(data=x_val, labels=y_val, batch_size=val_batch_size, shuffle=val_shuffle)
    return train, val


def mean_of_y_pred(y_true, y_pred):
    return float(np.mean(y_pred))


@pytest.mark.parametrize("val_shuffle", [False, "samples"])
def test_every_val_metric_equals_the_metric_on_model_predict_of_the_whole_set(model, val_shuffle):
    names = ["loss", "acc", "f1", "precision", "recall", "tpr", "tnr", "roc_auc", "mae", "mse"]
    tg = TrainGenerator(
        model, *datagens(val_shuffle=val_shuffle), eval_fn="predict", key_metric="f1",
        val_metrics=[*names, mean_of_y_pred], predict_threshold=0.4, iter_verbosity=0,
    )  # fmt: skip
    tg.train()
    scores = model.predict(X_VAL, verbose=0)
    hard = (scores[:, 0] > 0.4).astype(int)
    labels = Y_VAL[:, 0].astype(int)
    expected = {
        "loss": model.evaluate(X_VAL, Y_VAL, batch_size=8, verbose=0)[0],
        "acc": skm.accuracy_score(labels, hard),
        "f1": skm.f1_score(labels, hard, zero_division=0),
        "precision": skm.precision_score(labels, hard, zero_division=0),
        "recall": skm.recall_score(labels, hard, zero_division=0),
        "tpr": skm.recall_score(labels, hard, zero_division=0),
        "tnr": skm.recall_score(1 - labels, 1 - hard, zero_division=0),
        "roc_auc": skm.roc_auc_score(labels, scores[:, 0]),
        "mae": skm.mean_absolute_error(Y_VAL, scores),
        "mse": skm.mean_squared_error(Y_VAL, scores),
        "mean_of_y_pred": float(scores.mean()),
    }
    got = {name: values[-1] for name, values in tg.val_history.items()}
    assert got == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert tg.key_metric_history == [tg.val_history["f1"][-1]]
    assert tg.max_is_best is True


def test_accuracy_follows_the_loss_and_equals_model_evaluate_for_sparse_labels():
    model = sparse_model()
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(36, 4)).astype("float32"), rng.integers(0, 3, 36)
    train = DataGenerator(data=x[:24], labels=y[:24], batch_size=8)
    val = DataGenerator(data=x[24:], labels=y[24:], batch_size=5)
    tg = TrainGenerator(
        model, train, val, eval_fn="predict", val_metrics=["loss", "accuracy"],
        iter_verbosity=0,
    )  # fmt: skip
    tg.train()
    loss, accuracy = model.evaluate(x[24:], y[24:], batch_size=5, verbose=0)
    assert tg.val_history["loss"][-1] == pytest.approx(loss, rel=1e-5)
    assert tg.val_history["accuracy"][-1] == pytest.approx(accuracy)
    assert tg._val.val_metrics[1].fn is metrics.sparse_categorical_accuracy


def test_the_dynamic_threshold_is_the_best_f1_threshold_and_is_recorded(model):
    tg = TrainGenerator(
        model, *datagens(), eval_fn="predict", val_metrics=["loss", "f1"], key_metric="f1",
        dynamic_predict_threshold=True, epochs=2, iter_verbosity=0,
    )  # fmt: skip
    tg.train()
    scores = model.predict(X_VAL, verbose=0)
    threshold, best = metrics.best_threshold(Y_VAL, scores, metrics.f1)
    assert tg.predict_threshold == threshold
    assert tg.val_history["predict_threshold"][-1] == threshold
    assert len(tg.val_history["predict_threshold"]) == 2
    assert tg.val_history["f1"][-1] == pytest.approx(best)


def test_predict_mode_best_subset_scores_the_best_ranked_batches(model):
    tg = TrainGenerator(
        model, *datagens(val_batch_size=6), eval_fn="predict", key_metric="loss",
        best_subset_size=2, iter_verbosity=0,
    )  # fmt: skip
    tg.train()
    per_batch = [
        model.evaluate(X_VAL[i : i + 6], Y_VAL[i : i + 6], verbose=0)[0] for i in range(0, 30, 6)
    ]
    best = sorted(np.argsort(per_batch)[:2])
    assert tg.best_subset_names == [f"{b}" for b in best]  # array sets are batch-sized
    rows = np.concatenate([np.arange(b * 6, b * 6 + 6) for b in best])
    expected = model.evaluate(X_VAL[rows], Y_VAL[rows], verbose=0)[0]
    assert tg.val_history["loss"][-1] == pytest.approx(expected, rel=1e-5)


class ValBatchLogs(Callback):
    def __init__(self):
        self.logs = []

    def on_val_begin(self, logs=None):
        self.logs = []

    def on_val_batch_end(self, batch, logs=None):
        self.logs.append(dict(logs))


@pytest.mark.parametrize(("key_metric", "size"), [("loss", 2), ("accuracy", 3)])
def test_evaluate_mode_best_subset_is_exact_against_brute_force(model, key_metric, size):
    recorder = ValBatchLogs()
    tg = TrainGenerator(
        model, *datagens(val_batch_size=7), key_metric=key_metric, best_subset_size=size,
        callbacks=[recorder], iter_verbosity=0,
    )  # fmt: skip
    tg.train()
    sizes = [7, 7, 7, 7, 2]  # 30 samples: the last batch is partial
    sign = 1 if tg.max_is_best else -1

    def mean(combo, name):
        return sum(recorder.logs[i][name] * sizes[i] for i in combo) / sum(sizes[i] for i in combo)

    best = max(itertools.combinations(range(5), size), key=lambda c: sign * mean(c, key_metric))
    assert tg.val_history[key_metric][-1] == pytest.approx(mean(best, key_metric))
    assert tg.val_history["loss"][-1] == pytest.approx(mean(best, "loss"))
    names = [tg.val_datagen.plan(0)[i].set_name for i in best]
    assert tg.best_subset_names == names


def test_evaluate_mode_val_metrics_select_the_recorded_compiled_metrics(model):
    tg = TrainGenerator(
        model, *datagens(), val_metrics=["accuracy"], key_metric="accuracy", iter_verbosity=0
    )
    tg.train()
    assert list(tg.val_history) == ["accuracy"]
    with pytest.raises(ValueError, match=r"val_metrics entry 'f1' is not among.*'accuracy'"):
        TrainGenerator(model, *datagens(), val_metrics=["f1"], key_metric="f1", iter_verbosity=0)


def test_input_as_labels_scores_predictions_against_the_inputs():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4)])
    model.compile(keras.optimizers.SGD(0.01), "mse")
    train, val = datagens()
    tg = TrainGenerator(
        model, train, val, input_as_labels=True, eval_fn="predict",
        val_metrics=["loss", "mae"], iter_verbosity=0,
    )  # fmt: skip
    tg.train()
    outputs = model.predict(X_VAL, verbose=0)
    assert tg.val_history["loss"][-1] == pytest.approx(skm.mean_squared_error(X_VAL, outputs))
    assert tg.val_history["mae"][-1] == pytest.approx(skm.mean_absolute_error(X_VAL, outputs))
    assert tg.evaluate(val)["loss"] == pytest.approx(tg.val_history["loss"][-1])


class RaiseOnValBatch(Callback):
    def __init__(self, at):
        self.at, self.calls = set(at), 0

    def on_val_batch_begin(self, batch, logs=None):
        self.calls += 1
        if self.calls in self.at:
            raise RuntimeError("planned")


def test_an_interrupted_predict_mode_validation_resumes_with_its_predictions():
    def run(callbacks):
        tg = TrainGenerator(
            binary_model(), *datagens(), eval_fn="predict", key_metric="f1",
            val_metrics=["loss", "f1"], epochs=2, callbacks=callbacks, iter_verbosity=0,
        )  # fmt: skip
        interrupts = 0
        while True:
            try:
                tg.train()
                return tg, interrupts
            except RuntimeError as error:
                assert str(error) == "planned" and interrupts < 2, error
                interrupts += 1

    reference, none = run([])
    interrupted, twice = run([RaiseOnValBatch(at={2, 7})])
    assert (none, twice) == (0, 2)  # each planned interrupt happened, once
    assert interrupted.val_history == reference.val_history
    assert interrupted.iters_validated == reference.iters_validated == 8


def test_a_half_done_predict_validation_loaded_into_a_new_trainer_restarts_its_pass():
    def build(callbacks):
        return TrainGenerator(
            binary_model(), *datagens(), eval_fn="predict", key_metric="f1",
            val_metrics=["loss", "f1"], callbacks=callbacks, iter_verbosity=0,
        )  # fmt: skip

    reference = build([])
    reference.train()
    first = build([RaiseOnValBatch(at={3})])
    with pytest.raises(RuntimeError):
        first.train()
    assert first._state.val_stage == "run" and first._state.val_batch_index == 2
    second = build([])
    second.model.set_weights(first.model.get_weights())
    second.datagen.load_state_dict(first.datagen.state_dict())
    second.val_datagen.load_state_dict(first.val_datagen.state_dict())
    second.model.optimizer.iterations.assign(first.model.optimizer.iterations)
    second.load_state_dict(first.state_dict())
    second.train()
    for name, values in reference.val_history.items():
        assert second.val_history[name] == pytest.approx(values)
    assert second.batches_validated == 2 + 4  # two batches counted again
