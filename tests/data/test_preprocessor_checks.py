"""What a Preprocessor hands back is checked, with messages that name the class and the fix."""

import re

import numpy as np
import pytest

from trainkit import Chain, DataGenerator, Preprocessor, TimeseriesPreprocessor
from trainkit.testing import check_preprocessor

# 7.25 appears in no message: messages describe arrays, never print them.
X = np.full((4, 6, 1), 7.25)
Y = np.arange(4)


class Returns(Preprocessor):
    """process() returns whatever `make(batch, labels)` builds."""

    def __init__(self, make):
        super().__init__()
        self.make = make

    def process(self, batch, labels):
        return self.make(batch, labels)


class Slices(Preprocessor):
    """on_batch_load() sets slices_per_batch to `count`."""

    def __init__(self, count):
        super().__init__()
        self.count = count

    def on_batch_load(self, batch, labels):
        self.slices_per_batch = self.count

    def process(self, batch, labels):
        return batch, labels


class Weighted(Preprocessor):
    def process(self, batch, labels):
        return batch, labels, np.ones(len(batch))


class NoArguments(Preprocessor):
    def process(self, batch, labels):
        return batch, labels


BAD_RETURNS = [
    ("the batch alone", lambda b, y: b, r"returned ndarray\(shape=\(2, 6, 1\), dtype=float64\)"),
    ("a 1-tuple", lambda b, y: (b,), "returned a tuple of length 1"),
    ("a 4-tuple", lambda b, y: (b, y, y, y), "returned a tuple of length 4"),
    ("a list", lambda b, y: [b, y], "returned a list of length 2"),
    ("None", lambda b, y: None, "returned None"),
]


def first_slice_of_generator(pre):
    return DataGenerator(data=X, labels=Y, batch_size=2, preprocessor=pre).get()


def first_slice_of_view(pre):
    return next(
        iter(DataGenerator(data=X, labels=Y, batch_size=2, preprocessor=pre).as_py_dataset())
    )


def conformance(pre):
    check_preprocessor(lambda: pre, X[:2], Y[:2])


def first_slice_of_chain(pre):
    return first_slice_of_generator(Chain(NoArguments(), pre))


DRIVERS = [first_slice_of_generator, first_slice_of_view, conformance]


@pytest.mark.parametrize("drive", [*DRIVERS, first_slice_of_chain])
@pytest.mark.parametrize(
    ("make", "returned"), [c[1:] for c in BAD_RETURNS], ids=[c[0] for c in BAD_RETURNS]
)
def test_a_process_that_returns_no_x_y_tuple_is_refused_naming_the_class(drive, make, returned):
    with pytest.raises(
        TypeError, match=r"Returns\.process\(\) must return a tuple \(x, y\)"
    ) as info:
        drive(Returns(make))
    message = str(info.value)
    assert re.search(returned, message)
    assert "return batch, labels" in message
    assert "7.25" not in message


@pytest.mark.parametrize("drive", DRIVERS)
@pytest.mark.parametrize(
    ("count", "error", "received"),
    [
        (0, ValueError, "Received: slices_per_batch=0"),
        (-1, ValueError, "Received: slices_per_batch=-1"),
        (2.5, TypeError, r"Received: slices_per_batch=2\.5"),
        (None, TypeError, "Received: slices_per_batch=None"),
        (True, TypeError, "Received: slices_per_batch=True"),
        (np.float32(2), TypeError, r"Received: slices_per_batch=np\.float32\(2\.0\)"),
    ],
)
def test_slices_per_batch_must_be_an_int_of_at_least_one(drive, count, error, received):
    with pytest.raises(error, match=r"Slices\.slices_per_batch must be .*" + received):
        drive(Slices(count))


def test_a_numpy_int_slice_count_is_served_and_stored_as_an_int():
    dg = DataGenerator(data=X, labels=Y, batch_size=2, preprocessor=Slices(np.int64(2)))
    dg.get()
    assert type(dg.state_dict()["slices_per_batch"]) is int
    assert len(list(dg)) == 4  # two batches of two slices


def test_sample_weights_from_process_reach_the_generator_and_the_views():
    dg = DataGenerator(data=X, labels=Y, batch_size=2, preprocessor=Weighted())
    assert len(dg.get()) == 3
    assert len(dg.as_py_dataset()[0]) == 3
    chained = DataGenerator(
        data=X, labels=Y, batch_size=2, preprocessor=Chain(Weighted(), NoArguments())
    )
    np.testing.assert_array_equal(chained.get()[2], np.ones(2))


@pytest.mark.parametrize(
    ("preprocessor", "message"),
    [
        (
            TimeseriesPreprocessor,
            r"not the class TimeseriesPreprocessor: "
            r"pass TimeseriesPreprocessor\(window_size=\.\.\.\)",
        ),
        (NoArguments, r"pass NoArguments\(\)\. Received: preprocessor=NoArguments \(the class\)"),
        ("timeseries", r"not a name: pass TimeseriesPreprocessor\(window_size=\.\.\.\)"),
        ("TimeseriesPreprocessor", r"pass TimeseriesPreprocessor\(window_size=\.\.\.\)"),
        ("random_crop", r"pass RandomCropPreprocessor\(size=\.\.\.\)"),
        ("randomcrop", r"pass RandomCropPreprocessor\(size=\.\.\.\)"),
        ("Random-Crop", r"pass RandomCropPreprocessor\(size=\.\.\.\)"),
        ("normalize", r"one of the built-ins .*Received: preprocessor='normalize'"),
        (X, r"Received: preprocessor=ndarray\(shape=\(4, 6, 1\), dtype=float64\)"),
    ],
)
def test_a_class_or_a_name_as_preprocessor_says_exactly_what_to_pass(preprocessor, message):
    with pytest.raises(TypeError, match=message) as info:
        DataGenerator(data=X, labels=Y, batch_size=2, preprocessor=preprocessor)
    assert "7.25" not in str(info.value)


class UsesGlobalRandom(Preprocessor):
    def process(self, batch, labels):
        return batch + np.random.random(), labels


class ChangesItself(Preprocessor):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def process(self, batch, labels):
        self.calls += 1
        return batch + self.calls, labels


class ForgetsState(Preprocessor):
    def __init__(self):
        super().__init__()
        self.seen = 0

    def on_batch_load(self, batch, labels):
        self.seen += 1

    def process(self, batch, labels):
        return batch + self.seen, labels


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (UsesGlobalRandom, r"other global seeds.*draw from self\.rng instead"),
        (ChangesItself, r"same global seeds.*move updates of self out of\s+process\(\)"),
        (
            ForgetsState,
            r"restored from state_dict.*set it back in\s+load_state_dict\(\)\. "
            r"Attributes .*\['seen'\]",
        ),
    ],
)
def test_conformance_failures_say_the_fix(make, message):
    with pytest.raises(AssertionError, match=message):
        check_preprocessor(make, X[:2], Y[:2])


class StateFromTheThirdLoad(Preprocessor):
    """Counts batch loads in on_batch_load() but keeps the count out of state_dict()."""

    def __init__(self):
        super().__init__()
        self.loads = 0

    def on_batch_load(self, batch, labels):
        super().on_batch_load(batch, labels)
        self.loads += 1

    def process(self, batch, labels):
        return batch + (self.loads >= 3), labels


def test_state_kept_in_on_batch_load_is_caught_by_the_default_walk():
    # One batch over two epochs never reaches the third load; the default walk does.
    check_preprocessor(StateFromTheThirdLoad, X[:2], Y[:2], epochs=2, batches=1)
    with pytest.raises(AssertionError, match=r"Attributes .*\['loads'\]"):
        check_preprocessor(StateFromTheThirdLoad, X[:2], Y[:2])


def test_labels_one_row_short_are_refused_naming_the_rows():
    short = Returns(lambda b, y: (b, y[:-1]))
    with pytest.raises(
        AssertionError, match=r"returned labels with \[1\] rows for x with \[2\] rows"
    ):
        check_preprocessor(short, X[:2], Y[:2])


def test_sample_weights_one_row_short_are_refused():
    short = Returns(lambda b, y: (b, y, np.ones(len(b) - 1)))
    with pytest.raises(AssertionError, match=r"returned sample_weight with \[1\] rows"):
        check_preprocessor(short, X[:2], Y[:2])


def test_an_instance_is_checked_on_copies_and_left_unchanged():
    chain = Chain(TimeseriesPreprocessor(window_size=2), Returns(lambda b, y: (b * 2, y)))
    check_preprocessor(chain, X[:2], Y[:2])
    assert (chain.slice_idx, chain.batch_loaded) == (0, False)  # walks ran on deep copies
    with pytest.raises(AssertionError, match=r"Attributes .*\['loads'\]"):
        check_preprocessor(StateFromTheThirdLoad(), X[:2], Y[:2])


def test_something_neither_a_preprocessor_nor_callable_says_to_pass_a_lambda():
    with pytest.raises(TypeError, match=r"lambda: MyPreprocessor\(\.\.\.\)"):
        check_preprocessor("timeseries", X[:2], Y[:2])
