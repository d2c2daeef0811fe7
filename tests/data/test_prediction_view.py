"""DataGenerator.for_prediction(): the same data in sample order, without augmentation."""

from __future__ import annotations

import numpy as np

from trainkit import Chain, DataGenerator, JitterPreprocessor, PadPreprocessor

RNG = np.random.default_rng(0)
RAGGED = [RNG.normal(size=(n, 3)).astype("float32") for n in (5, 9, 3, 7, 9, 4)]


def test_the_view_serves_the_same_data_in_sample_order_without_augmentation():
    dg = DataGenerator(
        data=RAGGED, labels=np.arange(6), batch_size=4, shuffle="samples", seed=3,
        preprocessor=Chain(JitterPreprocessor(sigma=0.5), PadPreprocessor()),
    )  # fmt: skip
    dg.get()  # the original has moved on; the view starts at the beginning
    view = dg.for_prediction()
    assert view.shuffle is None and isinstance(view.preprocessor, PadPreprocessor)
    served, labels = [], []
    for x, y, _ in view:
        served += list(x)
        labels += list(y)
    assert labels == list(range(6))
    for got, cloud in zip(served, RAGGED):
        np.testing.assert_array_equal(got[: len(cloud)], cloud)  # not jittered
        assert not got[len(cloud) :].any()  # padding
    assert isinstance(dg.preprocessor, Chain) and dg.shuffle == "samples"
    dg.close()
    view.close()
