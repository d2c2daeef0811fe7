"""Preprocessors: the base-class protocol, the built-ins and Chain."""

import numpy as np
import pytest

from trainkit import (
    Chain,
    DataGenerator,
    Preprocessor,
    RandomCropPreprocessor,
    TimeseriesPreprocessor,
)
from trainkit.testing import check_preprocessor


class Double(Preprocessor):
    """Defines only process(): one slice per batch."""

    def process(self, batch, labels):
        return batch * 2, labels


class NoSuper(Preprocessor):
    def __init__(self):
        self.factor = 2

    def process(self, batch, labels):
        return batch, labels


class EndsEarly(Preprocessor):
    """Cuts three slices but ends each batch after the first two."""

    def on_batch_load(self, batch, labels):
        self.slices_per_batch = 3

    def process(self, batch, labels):
        return batch + self.slice_idx, labels

    def update_state(self):
        self.slice_idx += 1
        self.batch_exhausted = self.slice_idx >= 2


class CountsBatches(Preprocessor):
    """Keeps its own state: how many batches it has seen."""

    def __init__(self):
        super().__init__()
        self.seen = 0

    def on_batch_load(self, batch, labels):
        super().on_batch_load(batch, labels)
        self.seen += 1

    def process(self, batch, labels):
        return batch + self.seen, labels

    def state_dict(self):
        return {"seen": self.seen}

    def load_state_dict(self, state):
        self.seen = state["seen"]


class ForgetsState(CountsBatches):
    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


class UsesGlobalRandom(Preprocessor):
    def process(self, batch, labels):
        return batch + np.random.random(), labels


def series(n=8, timesteps=10):
    return np.arange(n * timesteps, dtype="float32").reshape(n, timesteps, 1), np.arange(n)


def test_a_subclass_that_only_defines_process_gets_one_slice_per_batch():
    x, y = series()
    dg = DataGenerator(data=x, labels=y, batch_size=4, preprocessor=Double())
    slices = list(dg)
    assert len(slices) == 2
    np.testing.assert_array_equal(slices[0][0], x[:4] * 2)


def test_a_subclass_that_skips_super_init_is_refused_naming_the_class():
    x, _ = series()
    with pytest.raises(TypeError, match=r"NoSuper.__init__ did not call super\(\).__init__\(\)"):
        DataGenerator(data=x, batch_size=4, preprocessor=NoSuper())


def test_a_preprocessor_may_end_a_batch_early_and_the_generator_follows():
    x, y = series()
    dg = DataGenerator(data=x, labels=y, batch_size=4, preprocessor=EndsEarly())
    seen = []
    while not dg.all_data_exhausted:
        dg.get()
        seen.append((dg.set_name, dg.slice_idx))
        dg.update_state()
    assert seen == [("0", 0), ("0", 1), ("1", 0), ("1", 1)]


@pytest.mark.parametrize(
    ("timesteps", "window", "slide", "increment", "starts"),
    [
        (10, 5, None, 0, [0, 5]),
        (10, 4, 2, 0, [0, 2, 4, 6]),
        (10, 4, 3, 1, [1, 4]),
        (10, 10, None, 0, [0]),
        (10, 3, 3, 2, [2, 5]),
    ],
)
def test_timeseries_windows_follow_the_documented_formula(
    timesteps, window, slide, increment, starts
):
    x, y = series(4, timesteps)
    pre = TimeseriesPreprocessor(window, slide, start_increments=[increment])
    dg = DataGenerator(data=x, labels=y, batch_size=4, preprocessor=pre)
    slices = list(dg)
    assert len(slices) == 1 + (timesteps - window - increment) // (slide or window) == len(starts)
    for (xs, ys), start in zip(slices, starts):
        np.testing.assert_array_equal(xs, x[:, start : start + window])
        np.testing.assert_array_equal(ys, y)


def test_timeseries_start_increments_cycle_with_the_epoch():
    x, y = series(4, 10)
    dg = DataGenerator(
        data=x, labels=y, batch_size=4, preprocessor=TimeseriesPreprocessor(4, 4, [0, 1, 2])
    )
    firsts = []
    for _ in range(5):
        firsts.append(next(iter(dg))[0][0, 0, 0] - x[0, 0, 0])
        list(dg)
    assert firsts == [0, 1, 2, 0, 1]


def test_a_window_larger_than_the_series_is_refused_at_construction():
    x, _ = series(4, 10)
    with pytest.raises(ValueError, match="window_size=11"):
        DataGenerator(data=x, batch_size=4, preprocessor=TimeseriesPreprocessor(11))
    with pytest.raises(ValueError, match="start_increment=3"):
        DataGenerator(
            data=x, batch_size=4, preprocessor=TimeseriesPreprocessor(8, start_increments=[0, 3])
        )


def test_a_window_that_does_not_fit_a_loaded_batch_raises_at_load():
    pre = TimeseriesPreprocessor(6)
    with pytest.raises(ValueError, match="series has 5"):
        pre.on_batch_load(np.zeros((2, 5, 1)), None)


def test_random_crop_offsets_cover_every_valid_position_edges_included():
    images = np.arange(2 * 6 * 5, dtype="float32").reshape(2, 6, 5, 1)
    pre = RandomCropPreprocessor((3, 2))
    offsets = set()
    for k in range(300):
        pre.set_rng_key((k,))
        cropped, _ = pre.process(images, None)
        assert cropped.shape == (2, 3, 2, 1)
        offsets.add(pre.last_offsets["batch"])
        x0, y0 = pre.last_offsets["batch"]
        np.testing.assert_array_equal(cropped, images[:, x0 : x0 + 3, y0 : y0 + 2])
    assert offsets == {(x, y) for x in range(4) for y in range(4)}


def test_random_crop_of_the_full_size_is_a_no_op_and_larger_is_refused():
    images = np.random.rand(2, 4, 4, 3)
    pre = RandomCropPreprocessor(4)
    pre.set_rng_key((0,))
    np.testing.assert_array_equal(pre.process(images, None)[0], images)
    with pytest.raises(ValueError, match=r"size=\(5, 5\) is larger"):
        DataGenerator(data=images, batch_size=2, preprocessor=RandomCropPreprocessor(5))


def test_random_crop_labels_use_the_batch_window_only_with_crop_same():
    images = np.random.rand(2, 8, 8, 1)
    same = RandomCropPreprocessor(3, crop_labels=True, crop_same=True)
    own = RandomCropPreprocessor(3, crop_labels=True)
    differ = 0
    for k in range(50):
        for pre in (same, own):
            pre.set_rng_key((k,))
        x, y = same.process(images, images)
        np.testing.assert_array_equal(x, y)
        own.process(images, images)
        differ += own.last_offsets["batch"] != own.last_offsets["labels"]
    assert differ > 0


def test_chain_applies_members_in_order_and_the_slicer_governs():
    x, y = series(4, 8)
    dg = DataGenerator(
        data=x, labels=y, batch_size=4, preprocessor=Chain(Double(), TimeseriesPreprocessor(2))
    )
    slices = list(dg)
    assert len(slices) == 4
    np.testing.assert_array_equal(slices[1][0], x[:, 2:4] * 2)


def test_chain_refuses_two_members_that_both_slice():
    x, _ = series(4, 8)
    dg = DataGenerator(
        data=x,
        batch_size=4,
        preprocessor=Chain(TimeseriesPreprocessor(2), TimeseriesPreprocessor(4)),
    )
    with pytest.raises(ValueError, match="at most one member may slice"):
        dg.get()


def test_chain_members_draw_from_the_slice_key_with_their_index_appended():
    images = np.random.rand(2, 9, 9, 1)
    chain = Chain(RandomCropPreprocessor(7), RandomCropPreprocessor(3))
    chain.set_rng_key((1, 2, 3))
    chain.process(images, None)
    first = chain.members[0].last_offsets["batch"]
    alone = RandomCropPreprocessor(7)
    alone.set_rng_key((1, 2, 3, 0))
    alone.process(images, None)
    assert alone.last_offsets["batch"] == first


def test_reading_rng_outside_process_explains_where_it_comes_from():
    with pytest.raises(RuntimeError, match="sets it before each call to process"):
        Double().rng


@pytest.mark.parametrize(
    "make",
    [
        Double,
        CountsBatches,
        EndsEarly,
        lambda: TimeseriesPreprocessor(3, 2, [0, 1]),
        lambda: RandomCropPreprocessor(2, crop_labels=True),
        lambda: Chain(RandomCropPreprocessor(2), TimeseriesPreprocessor(1)),
    ],
)
def test_built_ins_and_well_behaved_subclasses_pass_the_conformance_check(make):
    batch = np.random.rand(3, 5, 4, 1)
    check_preprocessor(make, batch, batch.copy())


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (UsesGlobalRandom, "called twice"),
        (ForgetsState, "restored from state_dict"),
        (NoSuper, "did not call super"),
    ],
)
def test_the_conformance_check_catches_misbehaving_subclasses(make, message):
    batch = np.random.rand(3, 5, 4, 1)
    with pytest.raises((AssertionError, TypeError), match=message):
        check_preprocessor(make, batch, None)
