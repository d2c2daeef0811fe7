"""Property tests: coverage across shards, and resume at random cut points."""

import copy

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from trainkit import Chain, DataGenerator, RandomCropPreprocessor, TimeseriesPreprocessor
from trainkit.testing import assert_resumes_identically

shuffles = st.sampled_from([False, "sets", "samples"])


@st.composite
def generator_settings(draw):
    num_samples = draw(st.integers(1, 40))
    batch_size = draw(st.integers(1, 12))
    count = draw(st.sampled_from([1, 2, 3, 4]))
    return {
        "num_samples": num_samples,
        "batch_size": batch_size * count,
        "shard_count": count,
        "shuffle": draw(shuffles),
        "seed": draw(st.integers(0, 2**16)),
        "drop_remainder": draw(st.booleans()) and num_samples >= batch_size * count,
        "shuffle_group_batches": draw(st.booleans()),
        "shuffle_group_samples": draw(st.booleans()),
    }


def make(settings, shard=None, preprocessor=None, timesteps=1, width=1):
    n = settings["num_samples"]
    data = np.arange(n * timesteps * width * width, dtype="int64").reshape(
        n, timesteps, width, width
    )
    return DataGenerator(
        data=data,
        labels=np.arange(n),
        batch_size=settings["batch_size"],
        shuffle=settings["shuffle"],
        seed=settings["seed"],
        drop_remainder=settings["drop_remainder"],
        shuffle_group_batches=settings["shuffle_group_batches"],
        shuffle_group_samples=settings["shuffle_group_samples"],
        shard=shard,
        preprocessor=preprocessor,
    )


@given(generator_settings(), st.integers(0, 3))
def test_every_sample_is_served_exactly_once_per_epoch_across_all_shards(settings, epoch):
    count = settings["shard_count"]
    labels = []
    for index in range(count):
        dg = make(settings, shard=(index, count) if count > 1 else None)
        for _ in range(epoch):
            dg.on_epoch_end()
        labels += [y.tolist() for _, y in dg]
    served = sorted(v for batch in labels for v in batch)
    n, batch_size = settings["num_samples"], settings["batch_size"]
    expected = n - (n % batch_size if settings["drop_remainder"] else 0)
    assert len(served) == expected
    assert len(set(served)) == expected
    assert set(served) <= set(range(n))


@st.composite
def preprocessors(draw):
    kind = draw(st.sampled_from(["none", "timeseries", "crop", "chain"]))
    if kind == "none":
        return None, 1
    if kind == "crop":
        return RandomCropPreprocessor((1, 1)), 2
    window = draw(st.integers(1, 3))
    series = TimeseriesPreprocessor(
        window, draw(st.integers(1, 3)), draw(st.sampled_from([None, [0, 1]]))
    )
    if kind == "chain":
        return Chain(series, RandomCropPreprocessor((1, 1))), window + 1 + 2
    return series, window + 1


@given(
    generator_settings(), preprocessors(), st.lists(st.integers(0, 400), max_size=3), st.booleans()
)
def test_a_restored_generator_serves_the_rest_of_the_stream_exactly(settings, pre, cuts, use_shard):
    preprocessor, timesteps = pre
    count = settings["shard_count"]
    shard = (count - 1, count) if use_shard and count > 1 else None

    def factory():
        # An identical, untouched preprocessor per generator.
        return make(settings, shard, copy.deepcopy(preprocessor), timesteps, width=2)

    total = sum(1 for _ in _stream(factory(), 2))
    assert_resumes_identically(
        factory, epochs=2, cut_points=sorted({c % (total + 1) for c in cuts} | {total // 2})
    )


def _stream(dg, epochs):
    for _ in range(epochs):
        yield from dg
