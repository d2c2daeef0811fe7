"""`tg.predict` and `tg.evaluate` on any generator: rows line up with the data."""

import numpy as np
import pytest
from validation_helpers import binary_arrays, binary_model, series, series_datagen, window_model

from trainkit import DataGenerator, TrainGenerator

X, Y = binary_arrays(30)
SX, SY = series(n=8, timesteps=12)


@pytest.fixture(scope="module")
def trainer():
    model = binary_model()
    datagen = DataGenerator(data=X, labels=Y, batch_size=8)
    return TrainGenerator(model, datagen, iter_verbosity=0)


@pytest.fixture(scope="module")
def series_trainer():
    datagen = series_datagen(SX, SY)
    return TrainGenerator(window_model(), datagen, iter_verbosity=0)


@pytest.mark.parametrize("shuffle", [False, True, "samples"])
def test_predictions_line_up_sample_for_sample_with_the_data(trainer, shuffle):
    datagen = DataGenerator(data=X, labels=Y, batch_size=7, shuffle=shuffle, seed=3)
    plan = datagen.plan(0)
    result = trainer.predict(datagen)
    expected = trainer.model.predict(X, verbose=0)
    np.testing.assert_array_equal(result.sample_indices, np.concatenate([b.rows() for b in plan]))
    np.testing.assert_allclose(result.predictions, expected[result.sample_indices], atol=1e-6)
    np.testing.assert_array_equal(result.labels, Y[result.sample_indices])
    names = np.concatenate([[b.set_name] * b.size for b in plan])
    np.testing.assert_array_equal(result.set_names, names)
    np.testing.assert_array_equal(result.slice_indices, np.zeros(30))
    assert sorted(result.sample_indices) == list(range(30)) and len(result) == 30


def test_a_generator_without_labels_predicts_and_evaluate_in_predict_mode_refuses(trainer):
    result = trainer.predict(DataGenerator(data=X, batch_size=8, shuffle=True))
    assert result.labels is None
    order = np.argsort(result.sample_indices)
    np.testing.assert_allclose(
        result.predictions[order], trainer.model.predict(X, verbose=0), atol=1e-6
    )
    tg = TrainGenerator(trainer.model, trainer.datagen, eval_fn="predict", iter_verbosity=0)
    with pytest.raises(ValueError, match="serves none"):
        tg.evaluate(DataGenerator(data=X, batch_size=8))


def test_predict_runs_one_pass_from_the_generators_position_and_readies_the_next(trainer):
    datagen = DataGenerator(data=X, labels=Y, batch_size=8)
    datagen.get()
    datagen.update_state()  # batch 0 consumed: the pass covers batches 1..3
    result = trainer.predict(datagen)
    np.testing.assert_array_equal(result.sample_indices, np.arange(8, 30))
    assert (datagen.epoch, datagen.all_data_exhausted, datagen.batch_index) == (1, False, 0)
    assert len(trainer.predict(datagen)) == 30  # the next pass is whole


def test_evaluate_in_evaluate_mode_equals_model_evaluate(trainer):
    datagen = DataGenerator(data=X, labels=Y, batch_size=8, shuffle=True)
    loss, accuracy = trainer.model.evaluate(X, Y, batch_size=8, verbose=0)
    logs = trainer.evaluate(datagen)
    assert logs == pytest.approx({"loss": loss, "accuracy": accuracy}, rel=1e-5)


def windows(x, window=4):
    """(samples, slices, window, 1): the windows TimeseriesPreprocessor cuts."""
    return np.stack([x[:, s : s + window] for s in range(0, x.shape[1] - window + 1, window)], 1)


def test_sliced_data_gives_one_row_per_sample_and_slice(series_trainer):
    result = series_trainer.predict(series_datagen(SX, SY, shuffle=True, seed=1))
    model = series_trainer.model
    assert len(result) == 8 * 3
    per_window = model.predict(windows(SX).reshape(-1, 4, 1), verbose=0).reshape(8, 3)
    expected = per_window[result.sample_indices, result.slice_indices]
    np.testing.assert_allclose(result.predictions[:, 0], expected, atol=1e-6)
    # Serving order: all slices of a batch, slice by slice, before the next batch.
    assert list(result.slice_indices[:12]) == [0] * 4 + [1] * 4 + [2] * 4
    assert list(result.batch_indices) == [0] * 12 + [1] * 12


@pytest.mark.parametrize("weight_range", [(1.0, 1.0), (1.0, 3.0), (2.0, 0.0)])
def test_pred_weighted_slices_range_combines_slices_by_linspace_weights(weight_range):
    model = window_model()
    tg = TrainGenerator(
        model, series_datagen(SX, SY), pred_weighted_slices_range=weight_range, iter_verbosity=0
    )
    result = tg.predict(series_datagen(SX, SY, shuffle=True, seed=2))
    per_window = model.predict(windows(SX).reshape(-1, 4, 1), verbose=0).reshape(8, 3)
    weights = np.linspace(*weight_range, 3)
    expected = (per_window * weights).sum(1) / weights.sum()
    assert result.slice_indices is None and len(result) == 8
    np.testing.assert_allclose(result.predictions[:, 0], expected[result.sample_indices], atol=1e-6)
    np.testing.assert_array_equal(result.labels, SY[result.sample_indices])


def test_predict_mode_validation_of_sliced_data_scores_every_slice():
    model = window_model()
    tg = TrainGenerator(
        model, series_datagen(SX, SY), series_datagen(SX, SY), eval_fn="predict",
        val_metrics=["loss", "mae"], iter_verbosity=0,
    )  # fmt: skip
    tg.train()
    outputs = model.predict(windows(SX).reshape(-1, 4, 1), verbose=0).reshape(8, 3)
    errors = outputs - SY
    assert tg.val_history["loss"][-1] == pytest.approx(np.mean(errors**2), rel=1e-5)
    assert tg.val_history["mae"][-1] == pytest.approx(np.mean(np.abs(errors)), rel=1e-5)


def test_combining_slices_with_different_labels_is_refused():
    from trainkit import Preprocessor

    class LabelPerSlice(Preprocessor):
        def on_batch_load(self, batch, labels):
            self.slices_per_batch = 2

        def process(self, batch, labels):
            return batch[:, :4], labels + self.slice_idx

    tg = TrainGenerator(
        window_model(), series_datagen(SX, SY), pred_weighted_slices_range=(1, 1),
        iter_verbosity=0,
    )  # fmt: skip
    datagen = DataGenerator(data=SX, labels=SY, batch_size=4, preprocessor=LabelPerSlice())
    with pytest.raises(ValueError, match="differ in their samples or labels"):
        tg.predict(datagen)
