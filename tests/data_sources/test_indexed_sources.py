"""Data you already have: a keras.utils.PyDataset or any random-access source as `data=`.

A PyDataset's batch i is set str(i); a random-access source's item i is sample i. Both are
shuffled, sharded and resumed like any other source, and a trainer fed from them resumes
bitwise.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from trainkit import DataGenerator, TrainGenerator
from trainkit.testing import assert_resume_equivalent, assert_resumes_identically

RNG = np.random.default_rng(0)
X = RNG.random((30, 4), dtype=np.float32)
Y = RNG.integers(0, 2, 30)


class Batches(keras.utils.PyDataset):
    """Batches of 8 rows of X (the last one short), as Keras users write them."""

    def __init__(self, x=X, y=Y, batch_size=8):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index):
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[rows], self.y[rows]


class Samples:
    """Grain's random-access protocol: `__len__` and `__getitem__(i)` -> one sample."""

    def __init__(self, x=X, y=Y, structured=False):
        self.x, self.y, self.structured = x, y, structured

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        x = {"features": self.x[index]} if self.structured else self.x[index]
        return x, self.y[index]


def served(dg):
    xs, ys = zip(*dg)
    x = np.concatenate([v["features"] if isinstance(v, dict) else v for v in xs])
    return x, np.concatenate(ys)


def test_a_py_dataset_serves_batch_i_as_set_i_with_its_labels():
    dg = DataGenerator(data=Batches(), batch_size=8)
    assert dg.set_nums_original == ["0", "1", "2", "3"]
    assert [b.size for b in dg.plan(0)] == [8, 8, 8, 6]
    x, y = served(dg)
    np.testing.assert_array_equal(x, X)
    np.testing.assert_array_equal(y, Y)


@pytest.mark.parametrize("source", [Batches, Samples, lambda: Samples(structured=True)])
@pytest.mark.parametrize("shuffle", [True, "samples"])
def test_every_sample_is_served_once_per_epoch_shuffled(source, shuffle):
    dg = DataGenerator(data=source(), batch_size=8, shuffle=shuffle, seed=3)
    x, y = served(dg)
    order = np.argsort(x[:, 0])
    np.testing.assert_array_equal(x[order], X[np.argsort(X[:, 0])])
    np.testing.assert_array_equal(y[order], Y[np.argsort(X[:, 0])])
    assert not np.array_equal(x, X), "shuffle=True served the source's order"


def test_shards_of_a_py_dataset_together_serve_the_whole_batch():
    whole = DataGenerator(data=Batches(), batch_size=8, shuffle=True, seed=1)
    shards = [DataGenerator(data=Batches(), batch_size=8, shuffle=True, seed=1, shard=(i, 2))
              for i in range(2)]  # fmt: skip
    for x, _ in whole:
        parts = [shard.get()[0] for shard in shards]
        np.testing.assert_array_equal(np.concatenate(parts), x)
        for shard in shards:
            shard.update_state()


@pytest.mark.parametrize("source", [Batches, lambda: Samples(structured=True)])
def test_a_generator_over_them_resumes_identically(source):
    assert_resumes_identically(
        lambda: DataGenerator(data=source(), batch_size=8, shuffle="samples", seed=2, prefetch=2)
    )


def test_data_and_labels_of_a_batch_read_each_item_once():
    class Counting(Batches):
        calls = 0

        def __getitem__(self, index):
            Counting.calls += 1
            return super().__getitem__(index)

    dg = DataGenerator(data=Counting(), batch_size=8, prefetch=0)
    before = Counting.calls  # construction reads the first and the last batch
    list(dg)
    assert Counting.calls - before == 4


def build_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(True))
    return model


@pytest.mark.parametrize("source", [Batches, Samples], ids=["PyDataset", "random-access"])
def test_training_from_them_resumes_bitwise_with_prefetch(source, tmp_path):
    def make_trainer(logs_dir, resume, callbacks):
        datagen = DataGenerator(data=source(), batch_size=8, shuffle=True, seed=1, prefetch=2)
        val = DataGenerator(data=source(X[:8], Y[:8]), batch_size=8)
        return TrainGenerator(
            build_model(), datagen, val, epochs=2, logs_dir=logs_dir, resume=resume,
            callbacks=callbacks, iter_verbosity=0, checkpoint_freq=None,
        )  # fmt: skip

    assert_resume_equivalent(make_trainer, str(tmp_path), cut_points=(3,))


class Bad(Batches):
    def __init__(self, item):
        super().__init__()
        self.item = item

    def __getitem__(self, index):
        return self.item(index) if index == 2 else super().__getitem__(index)


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (Bad(lambda i: (X[:5], Y[:5])), r"Batch 2 of .*PyDataset Bad holds 5 samples.*batch 0"),
        (Bad(lambda i: X[:8]), r"Item 2 .* has 1 part\(s\) and item 0 2"),
        (Bad(lambda i: (X[:8, :2], Y[:8])), r"Item 2 .* shape \(8, 2\).*item 0 \(8, 4\)"),
        (Batches(X.astype(complex)), r"complex numbers"),
        (Batches(y=np.array(["a"] * 30)), r"\(strings\)"),
        (Samples(X[:0]), r"is empty \(len 0\)"),
    ],
    ids=["a short middle batch", "x alone", "another shape", "complex", "strings", "empty"],
)
def test_bad_items_are_refused_naming_the_item(data, pattern):
    with pytest.raises(ValueError, match=pattern):
        list(DataGenerator(data=data, batch_size=8))


def test_items_with_sample_weights_say_where_weights_go():
    class Weighted(Batches):
        def __getitem__(self, index):
            return (*super().__getitem__(index), np.ones(8))

    with pytest.raises(ValueError, match=r"\(x, y, sample_weight\).*preprocessor's process"):
        DataGenerator(data=Weighted(), batch_size=8)
