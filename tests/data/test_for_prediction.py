"""The prediction view: DataGenerator.for_prediction() and Preprocessor.for_prediction()."""

from __future__ import annotations

import numpy as np
import pytest

from trainkit import (
    Chain,
    JitterPreprocessor,
    PadPreprocessor,
    RandomCropPreprocessor,
    RandomRotationPreprocessor,
    RandomScalePreprocessor,
    TimeseriesPreprocessor,
)

RNG = np.random.default_rng(0)
RAGGED = [RNG.normal(size=(n, 3)).astype("float32") for n in (5, 9, 3, 7, 9, 4)]


@pytest.mark.parametrize(
    "make", [RandomRotationPreprocessor, JitterPreprocessor, RandomScalePreprocessor]
)
def test_random_augmenters_drop_out_for_prediction(make):
    assert make().for_prediction() is None


def test_padding_and_windows_stay_and_a_chain_keeps_its_deterministic_members():
    pad, windows = PadPreprocessor(), TimeseriesPreprocessor(4)
    assert pad.for_prediction() is pad and windows.for_prediction() is windows
    assert Chain(JitterPreprocessor(), pad).for_prediction() is pad
    assert Chain(JitterPreprocessor(), RandomScalePreprocessor()).for_prediction() is None
    kept = Chain(windows, pad)
    assert kept.for_prediction() is kept


def test_a_random_crop_becomes_the_center_crop_of_the_same_size():
    images = np.arange(2 * 8 * 6, dtype="float32").reshape(2, 8, 6, 1)
    crop = RandomCropPreprocessor((4, 2), crop_labels=True, crop_same=True)
    center = crop.for_prediction()
    assert not crop.center and center.center  # the original still draws
    center.set_rng_key((0, 0, 0, 0))
    x, y = center.process(images, images)
    np.testing.assert_array_equal(x, images[:, 2:6, 2:4])
    np.testing.assert_array_equal(y, x)
    assert center.get_config()["center"] is True
