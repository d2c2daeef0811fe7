"""`pred_weighted_slices_range='last'`: each sample scored on its batch's last slice only."""

import numpy as np
import pytest
from validation_helpers import series, series_datagen, window_model

from trainkit import TrainGenerator

SX, SY = series(n=8, timesteps=12)  # 3 windows of 4 steps per sample


def test_last_scores_each_sample_once_on_its_last_window():
    model = window_model()
    tg = TrainGenerator(
        model, series_datagen(SX, SY), series_datagen(SX, SY), eval_fn="predict",
        val_metrics=["loss", "mae"], pred_weighted_slices_range="last", iter_verbosity=0,
    )  # fmt: skip
    result = tg.predict(series_datagen(SX, SY, shuffle=True, seed=2))
    last_window = model.predict(SX[:, 8:12], verbose=0)[:, 0]
    assert result.slice_indices is None and len(result) == 8  # one row per sample
    np.testing.assert_allclose(result.predictions[:, 0], last_window[result.sample_indices])
    np.testing.assert_array_equal(result.labels, SY[result.sample_indices])

    logs = tg.evaluate(series_datagen(SX, SY))
    errors = last_window - SY[:, 0]
    assert logs["mae"] == pytest.approx(np.mean(np.abs(errors)), rel=1e-5)
    assert logs["loss"] == pytest.approx(np.mean(errors**2), rel=1e-5)


def test_another_word_is_refused_naming_last():
    with pytest.raises(TypeError, match="'last'"):
        TrainGenerator(window_model(), series_datagen(SX, SY), pred_weighted_slices_range="first")
