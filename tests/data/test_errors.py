"""Bad input gets a clear error naming the argument and the value received."""

import numpy as np
import pytest

from trainkit import Chain, DataGenerator, RandomCropPreprocessor, TimeseriesPreprocessor

X = np.zeros((10, 4, 4, 1), dtype="float32")
Y = np.arange(10)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"batch_sise": 4},
            ValueError,
            r"unknown argument 'batch_sise'\. Did you mean 'batch_size'",
        ),
        ({"shufle": True}, ValueError, "Did you mean 'shuffle'"),
        (
            {"batch_size": 0},
            ValueError,
            r"`batch_size` must be a positive int\. Received: batch_size=0",
        ),
        ({"batch_size": 2.5}, TypeError, r"Received: batch_size=2\.5"),
        ({"batch_size": True}, TypeError, "Received: batch_size=True"),
        ({"seed": -1}, ValueError, "Received: seed=-1"),
        ({"shuffle": "rows"}, ValueError, "Received: shuffle='rows'"),
        ({"prefetch": -2}, ValueError, "Received: prefetch=-2"),
        ({"drop_remainder": "yes"}, TypeError, "Received: drop_remainder='yes'"),
        ({"shard": (2, 2)}, ValueError, r"Received: shard=\(2, 2\)"),
        ({"shard": (0, 3)}, ValueError, "divisible by the shard count 3"),
        ({"labels": np.arange(9)}, ValueError, "`data=` array has 10, `labels=` array has 9"),
        ({"data": [1, 2, 3]}, TypeError, "Received: data=list"),
        ({"data": None}, ValueError, "needs data"),
        ({"data_path": "nowhere.npy", "data": None}, FileNotFoundError, "nowhere.npy"),
        ({"data_path": 5, "data": None}, TypeError, "Received: data_path=5"),
        ({"data_path": "x.npy"}, ValueError, "either `data_path` or `data=`"),
        ({"set_nums": [7]}, ValueError, "set_nums` names set 7"),
        ({"set_nums": [0, 0]}, ValueError, "lists a set twice"),
        ({"set_nums": "0"}, TypeError, "Received: set_nums='0'"),
        ({"batch_size": 32, "drop_remainder": True}, ValueError, "leaves no batch"),
        ({"preprocessor": TimeseriesPreprocessor(5)}, ValueError, "window_size=5"),
        ({"preprocessor": RandomCropPreprocessor(6)}, ValueError, r"size=\(6, 6\) is larger"),
        ({"preprocessor": object()}, TypeError, "must be an instance of trainkit.Preprocessor"),
        ({"data": np.zeros((0, 3))}, ValueError, "at least one sample"),
    ],
)
def test_bad_generator_arguments_raise_naming_the_value(kwargs, error, message):
    arguments = {"data": X, "labels": Y, "batch_size": 4, **kwargs}
    with pytest.raises(error, match=message):
        DataGenerator(**arguments)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: TimeseriesPreprocessor(0), ValueError, "Received: window_size=0"),
        (lambda: TimeseriesPreprocessor(2, slide_size=0), ValueError, "Received: slide_size=0"),
        (
            lambda: TimeseriesPreprocessor(2, start_increments=[-1]),
            ValueError,
            r"start_increments\[i\]",
        ),
        (lambda: TimeseriesPreprocessor(2, start_increments=[]), ValueError, "must not be empty"),
        (
            lambda: TimeseriesPreprocessor(2, start_increments=3),
            TypeError,
            "Received: start_increments=3",
        ),
        (lambda: RandomCropPreprocessor((2, 0)), ValueError, r"Received: size=\(2, 0\)"),
        (lambda: RandomCropPreprocessor("big"), ValueError, "Received: size='big'"),
        (lambda: RandomCropPreprocessor(2, crop_labels=1), TypeError, "Received: crop_labels=1"),
        (lambda: Chain(), ValueError, "at least one preprocessor"),
        (
            lambda: Chain(TimeseriesPreprocessor(2), "crop"),
            TypeError,
            "Received: preprocessor='crop'",
        ),
    ],
)
def test_bad_preprocessor_arguments_raise_naming_the_value(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_a_state_dict_that_is_not_one_is_refused():
    dg = DataGenerator(data=X, batch_size=4)
    with pytest.raises(ValueError, match="no 'version' key"):
        dg.load_state_dict({"epoch": 3})
    state = dg.state_dict()
    with pytest.raises(ValueError, match="version 99"):
        dg.load_state_dict({**state, "version": 99})
