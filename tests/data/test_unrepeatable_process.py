"""A process() drawing from np.random is caught at the first slice a generator serves."""

import warnings

import numpy as np
import pytest

from trainkit import DataGenerator, Preprocessor, TimeseriesPreprocessor

X = np.zeros((6, 3, 1), dtype="float32")


class GlobalNoise(Preprocessor):
    def process(self, batch, labels):
        return batch + np.random.random(), labels


class CountsCalls(Preprocessor):
    calls = 0

    def process(self, batch, labels):
        type(self).calls += 1  # a side effect outside the slice: the slice stays the same
        return batch * 2, labels


def walk(preprocessor, prefetch, slices=3):
    dg = DataGenerator(data=X, batch_size=2, preprocessor=preprocessor, prefetch=prefetch)
    for _ in range(slices):
        dg.get()
        dg.update_state()


@pytest.mark.parametrize("prefetch", [0, None])  # None: the default, synchronous at first
def test_global_random_in_process_warns_once_naming_self_rng(prefetch):
    with pytest.warns(UserWarning, match=r"GlobalNoise\.process\(\).*Draw from self\.rng") as seen:
        walk(GlobalNoise(), prefetch)
    assert len([w for w in seen if "GlobalNoise" in str(w.message)]) == 1


@pytest.mark.parametrize("prefetch", [0, 2])
def test_a_repeatable_process_is_served_without_a_warning(prefetch):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        walk(TimeseriesPreprocessor(window_size=1), prefetch)


def test_the_check_costs_one_process_call_per_generator():
    CountsCalls.calls = 0
    walk(CountsCalls(), prefetch=0, slices=3)
    assert CountsCalls.calls == 3 + 1
