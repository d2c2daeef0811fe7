"""Random preprocessors draw per global sample: the shards of a batch are the whole batch.

Worker k of W serves rows `[k*B//W, (k+1)*B//W)` of every global batch (`shard=`). The
built-in augmenters key each sample's draws on its row in the global batch, so the
shards of a batch, served one after the other and put together, are exactly the batch
the unsharded generator serves, for any shard count; the batch-level crop window is the
same on every shard. The thread and worker-process walks, the read-only views and a
resumed generator serve a shard the same way.
"""

from __future__ import annotations

import numpy as np
import pytest

from trainkit import (
    Chain,
    DataGenerator,
    JitterPreprocessor,
    PadPreprocessor,
    Preprocessor,
    RandomCropPreprocessor,
    RandomRotationPreprocessor,
    RandomScalePreprocessor,
)
from trainkit.data.adapters import EpochView
from trainkit.testing import assert_resumes_identically

# Served the same by every walk, and process() repeatable (no "unrepeatable" warning).
pytestmark = pytest.mark.filterwarnings("error::UserWarning")

RNG = np.random.default_rng(7)
SAMPLES, BATCH = 11, 6  # the last batch of 5 rows cuts 2/3 on 2 shards and 1/2/2 on 3
DENSE = RNG.normal(size=(SAMPLES, 8, 3)).astype("float32")
RAGGED = [RNG.normal(size=(n, 3)).astype("float32") for n in RNG.integers(2, 9, SAMPLES)]
LABELS = np.arange(SAMPLES)
STRUCTURED = {"points": RAGGED, "normals": RAGGED}


class NoisyCopies(Preprocessor):
    """A custom preprocessor drawing per sample as the docs show (`sample_rngs`)."""

    def process(self, batch, labels):
        rngs = self.sample_rngs(len(batch))
        return [s + r.normal(0, 0.1, s.shape) for s, r in zip(batch, rngs)], labels


class DropsFirstSample(Preprocessor):
    """Changes the number of samples: per-sample draws after it cannot know their rows."""

    def process(self, batch, labels):
        return batch[1:], labels[1:]


def augmenters() -> Chain:
    return Chain(
        RandomRotationPreprocessor(max_angle=1.0, center="centroid"),
        JitterPreprocessor(0.05, clip=0.1),
        RandomScalePreprocessor(0.5, 1.5),
    )


CASES = {
    "rotation, dense": (DENSE, lambda: RandomRotationPreprocessor(axis=(1, 2, 3))),
    "jitter, dense": (DENSE, lambda: JitterPreprocessor(0.1)),
    "scale, dense": (DENSE, lambda: RandomScalePreprocessor(0.5, 2.0)),
    "rotation, ragged": (RAGGED, lambda: RandomRotationPreprocessor(center="centroid")),
    "jitter, ragged": (RAGGED, lambda: JitterPreprocessor(0.1, clip=0.15)),
    "scale, ragged": (RAGGED, lambda: RandomScalePreprocessor()),
    "chain with padding, ragged": (RAGGED, lambda: Chain(augmenters(), PadPreprocessor())),
    "members, structured": (STRUCTURED, lambda: Chain(augmenters(), PadPreprocessor())),
    "custom sample_rngs, ragged": (RAGGED, NoisyCopies),
}


def generator(data, make, shard=None, shuffle=False, **options):
    return DataGenerator(
        data=data, labels=LABELS, batch_size=BATCH, seed=3, preprocessor=make(),
        shard=shard, shuffle=shuffle, **options,
    )  # fmt: skip


def served(dg, epochs=2):
    """Every slice of `epochs` epochs: (epoch, set_name, the slice, its description)."""
    out = []
    for _ in range(epochs):
        while not dg.all_data_exhausted:
            out.append((dg.epoch, dg.set_name, dg.get(), dg.describe_slice()))
            dg.update_state()
        dg.on_epoch_end()
    dg.close()
    return out


def cut(part, lengths):
    """Each sample of `part` (x, or a member of it) as an array, its padding cut off."""
    if isinstance(part, dict):
        per_member = isinstance(lengths, dict)
        return {k: cut(v, lengths[k] if per_member else lengths) for k, v in part.items()}
    if lengths is None:
        return [np.asarray(sample) for sample in part]
    return [np.asarray(part[i][:n]) for i, n in enumerate(lengths)]


def unpadded(item, description):
    """A slice's x and labels as lists of samples, x cut to each sample's real length."""
    return cut(item[0], description.get("lengths")), cut(item[1], None)


def joined(shards):
    """The shards' samples of one batch, in shard order."""
    xs, ys = zip(*shards)
    if isinstance(xs[0], dict):
        return {key: [s for x in xs for s in x[key]] for key in xs[0]}, [s for y in ys for s in y]
    return [s for x in xs for s in x], [s for y in ys for s in y]


def assert_same_samples(expected, actual, where):
    if isinstance(expected, dict):
        assert sorted(expected) == sorted(actual), where
        for key in expected:
            assert_same_samples(expected[key], actual[key], f"{where}, member {key!r}")
        return
    assert len(expected) == len(actual), where
    for index, (a, b) in enumerate(zip(expected, actual)):
        assert a.dtype == b.dtype and np.array_equal(a, b), f"{where}, sample {index}"


@pytest.mark.parametrize("shuffle", [False, "samples"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_the_shards_of_each_batch_together_are_the_unsharded_batch(case, shuffle):
    data, make = CASES[case]
    whole = served(generator(data, make, shuffle=shuffle))
    assert len(whole) == 4  # 2 epochs of batches of 6 and 5 rows
    for count in (1, 2, 3):
        shards = [served(generator(data, make, (k, count), shuffle=shuffle)) for k in range(count)]
        for position, (epoch, name, item, description) in enumerate(whole):
            parts = [shard[position] for shard in shards]
            assert all(part[:2] == (epoch, name) for part in parts)
            together = joined([unpadded(part[2], part[3]) for part in parts])
            where = f"{case}: {count} shards, epoch {epoch}, batch {name!r}"
            assert_same_samples(unpadded(item, description)[0], together[0], where)
            assert_same_samples(unpadded(item, description)[1], together[1], where)


def test_per_sample_numbers_of_the_shards_are_the_unsharded_ones():
    """The described angles and factors too: those of the shards' rows in the batch."""
    make = augmenters
    whole = served(generator(DENSE, make, shuffle="samples"), epochs=1)
    shards = [served(generator(DENSE, make, (k, 3), shuffle="samples"), 1) for k in range(3)]
    for position, entry in enumerate(whole):
        for name in ("rotation_angles", "scale_factors"):
            together = [v for shard in shards for v in shard[position][3][name]]
            assert together == entry[3][name]
            assert len(set(together)) == len(together)  # no two samples draw alike


def test_every_shard_crops_the_window_of_the_unsharded_batch():
    images = RNG.normal(size=(SAMPLES, 9, 7, 2)).astype("float32")
    make = lambda: RandomCropPreprocessor((4, 3))  # noqa: E731
    whole = served(generator(images, make, shuffle="samples"))
    windows = {tuple(entry[3]["crop"]["batch"]) for entry in whole}
    assert len(windows) > 1  # batches draw their own windows
    for count in (2, 3):
        shards = [served(generator(images, make, (k, count), "samples")) for k in range(count)]
        for position, (_, _, item, description) in enumerate(whole):
            for shard in shards:
                assert shard[position][3] == description
            together = np.concatenate([shard[position][2][0] for shard in shards])
            np.testing.assert_array_equal(together, item[0])


@pytest.mark.parametrize(
    "options",
    [{"prefetch": 2}, {"prefetch": 3, "prefetch_workers": 2}],
    ids=["prefetch thread", "worker processes"],
)
def test_prefetch_and_worker_processes_serve_a_shard_as_the_synchronous_walk(options):
    data, make = CASES["chain with padding, ragged"]
    expected = served(generator(data, make, (1, 3), shuffle="samples", prefetch=0))
    actual = served(generator(data, make, (1, 3), shuffle="samples", **options))
    assert len(actual) == len(expected)
    for a, b in zip(expected, actual):
        assert a[0:2] == b[0:2] and a[3] == b[3]
        for part_a, part_b in zip(a[2], b[2]):
            np.testing.assert_array_equal(part_a, part_b)


def test_the_read_only_view_of_a_shard_serves_its_slices_walked_or_indexed():
    data, make = CASES["jitter, dense"]
    view = EpochView(generator(data, make, (2, 3), shuffle="samples"))
    expected = served(generator(data, make, (2, 3), shuffle="samples"), epochs=1)
    assert len(view) == len(expected) == 2
    for position, ((x, y), entry) in enumerate(zip(view, expected)):
        for served_x, served_y in ((x, y), view[position]):
            np.testing.assert_array_equal(served_x, entry[2][0])
            np.testing.assert_array_equal(served_y, entry[2][1])


def test_a_sharded_augmented_generator_resumes_identically():
    data, make = CASES["members, structured"]
    assert_resumes_identically(lambda: generator(data, make, (1, 2), shuffle="samples"))


def test_a_member_that_changes_the_sample_count_before_per_sample_draws_is_named():
    make = lambda: Chain(DropsFirstSample(), JitterPreprocessor())  # noqa: E731
    x, y = generator(DENSE, make).get()  # a whole batch: the draws know every row
    assert len(x) == BATCH - 1 and np.array_equal(y, LABELS[1:BATCH])
    with pytest.raises(ValueError, match=r"JitterPreprocessor asked for per-sample draws for 2 sa"):
        generator(DENSE, make, (1, 2)).get()
    with pytest.raises(ValueError, match=r"rows 3:6 of a global batch of 6 .* put JitterPre"):
        generator(DENSE, make, (1, 2)).get()
    reordered = lambda: Chain(JitterPreprocessor(), DropsFirstSample())  # noqa: E731
    assert len(generator(DENSE, reordered, (1, 2)).get()[0]) == BATCH // 2 - 1


def test_per_sample_generators_are_only_for_process():
    with pytest.raises(RuntimeError, match=r"NoisyCopies.sample_rngs\(\) was read outside pro"):
        NoisyCopies().sample_rngs(3)


def test_a_whole_batch_draws_its_angles_and_factors_as_before_sharding_existed():
    """One draw of the batch's size from `rng`: unsharded runs keep their numbers."""
    key = (3, 100, 0, 0, 0)
    for pre, low, high in (
        (RandomRotationPreprocessor(max_angle=0.5), -0.5, 0.5),
        (RandomScalePreprocessor(0.5, 1.5), 0.5, 1.5),
    ):
        pre.set_rng_key(key)
        pre.process(DENSE, LABELS)
        expected = np.random.default_rng(list(key)).uniform(low, high, size=SAMPLES)
        assert pre.last_draws == expected.tolist()
