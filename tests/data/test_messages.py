"""Error messages of the data side describe arrays (type, shape, dtype) and never print them."""

import numpy as np
import pytest

from trainkit import DataGenerator, RandomCropPreprocessor, TimeseriesPreprocessor
from trainkit._validation import describe
from trainkit.data import write_sets

# 7.25 is in no message: an array's values never are.
X = np.full((50, 20), 7.25)
Y = np.full(50, 7.25)


def test_arrays_passed_positionally_keras_style_suggest_the_data_keywords():
    with pytest.raises(TypeError) as info:
        DataGenerator(X, Y, batch_size=10)
    message = str(info.value)
    assert "DataGenerator(data=x, labels=y, batch_size=...)" in message
    assert message.endswith("Received: data_path=ndarray(shape=(50, 20), dtype=float64)")
    assert len(message) < 300


def test_labels_passed_as_labels_path_suggest_the_labels_keyword():
    with pytest.raises(TypeError, match=r"`labels_path` is a path.*labels=y"):
        DataGenerator(data=X, labels_path=Y, batch_size=10)


def loader_array():
    np.save("x.npy", X)  # in tmp_path
    return DataGenerator("x.npy", loader=X)


BAD_CALLS = [
    ("unknown keyword", lambda: DataGenerator(data=X, lables=Y), "lables=ndarray"),
    ("data and data_path", lambda: DataGenerator(X, data=X), "data_path=ndarray"),
    ("shuffle", lambda: DataGenerator(data=X, shuffle=Y), "shuffle=ndarray"),
    ("shard", lambda: DataGenerator(data=X, batch_size=10, shard=Y), "shard=ndarray"),
    ("seed", lambda: DataGenerator(data=X, seed=Y), "seed=ndarray"),
    ("batch_size", lambda: DataGenerator(data=X, batch_size=Y), "batch_size=ndarray"),
    ("superbatch", lambda: DataGenerator(data=X, superbatch=Y), "superbatch=ndarray"),
    ("set_nums", lambda: DataGenerator(data=X, set_nums=Y), "set_nums=ndarray"),
    ("long set_nums", lambda: DataGenerator(data=X, set_nums=list(range(60))), "list of length"),
    ("preprocessor", lambda: DataGenerator(data=X, preprocessor=X), "preprocessor=ndarray"),
    ("data as a list", lambda: DataGenerator(data=[1.0, X]), "data=list of length 2"),
    ("loader", lambda: loader_array(), "loader=ndarray"),
    ("crop size", lambda: RandomCropPreprocessor(X), "size=ndarray"),
    ("start_increments", lambda: TimeseriesPreprocessor(2, start_increments=Y), "ndarray"),
    ("window_size", lambda: TimeseriesPreprocessor(X), "window_size=ndarray"),
    ("write_sets out", lambda: write_sets(X, Y, X, 10), "out=ndarray"),
    ("write_sets labels", lambda: write_sets(X, Y[:3], "out", 10), "labels=ndarray"),
]


@pytest.mark.parametrize(
    ("call", "received"), [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS]
)
def test_no_message_embeds_an_array(call, received, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises((TypeError, ValueError, FileNotFoundError)) as info:
        call()
    message = str(info.value)
    assert received in message
    assert "7.25" not in message
    assert len(message) < 600


@pytest.mark.parametrize(
    ("value", "described"),
    [
        (np.zeros((3, 2), dtype="float32"), "ndarray(shape=(3, 2), dtype=float32)"),
        (np.zeros(()), "ndarray(shape=(), dtype=float64)"),
        (np.float32(1.5), "np.float32(1.5)"),
        (5, "5"),
        ("sets", "'sets'"),
        ("x" * 100, "'" + "x" * 40 + "'... (100 characters)"),
        ([1, 2], "[1, 2]"),
        (list(range(100)), "list of length 100"),
        ((X, Y), "tuple of length 2 holding arrays"),
        ({"a": X}, "dict of length 1 holding arrays"),
        (np.ndarray, "<class 'numpy.ndarray'>"),
        (None, "None"),
    ],
)
def test_describe_shows_type_shape_and_dtype_never_the_values(value, described):
    assert describe(value) == described
