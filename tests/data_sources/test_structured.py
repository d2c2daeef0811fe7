"""Structured (dict/tuple of members) and ragged (list of arrays) sources.

Every member is gathered with the same rows, whatever the plan does, and resumes
exactly; bad structures are refused naming the members.
"""

import json

import numpy as np
import pytest

from trainkit import DataGenerator
from trainkit.data import write_sets
from trainkit.testing import assert_resumes_identically

N = 30


def members(n=N):
    """Members whose rows all encode the sample index, so alignment is checkable."""
    index = np.arange(n)
    points = np.stack([index, index + 0.5, index + 0.25], axis=1).astype("float32")
    features = (index[:, None] * 10 + np.arange(4)).astype("float64")
    return {"points": points, "features": features}, (index, index * 2)


def sample_of(x, y):
    """The sample index of every row of every member; all must agree."""
    rows = [
        x["points"][:, 0].astype(int),
        (x["features"][:, 0] // 10).astype(int),
        np.asarray(y[0]),
        np.asarray(y[1]) // 2,
    ]
    for other in rows[1:]:
        assert np.array_equal(rows[0], other)
    return rows[0].tolist()


OPTIONS = [
    {},
    {"shuffle": True},
    {"shuffle": "samples"},
    {"shuffle": True, "shuffle_group_samples": True, "shuffle_group_batches": True},
    {"batch_size": 7, "shuffle": "samples", "drop_remainder": True},
    {"shard": (1, 2)},
    {"superbatch": True, "shuffle": True},
]


@pytest.mark.parametrize("options", OPTIONS, ids=[json.dumps(o) for o in OPTIONS])
def test_members_stay_row_aligned_and_resume_exactly(options):
    x, y = members()
    options = {"batch_size": 6, **options}

    def make():
        return DataGenerator(data=x, labels=y, seed=4, **options)

    dg = make()
    for _ in range(2):
        served = [i for xs, ys in dg for i in sample_of(xs, ys)]
        assert len(served) == len(set(served))
        dg.on_epoch_end()
    assert isinstance(dg.get()[0], dict) and isinstance(dg.get()[1], tuple)
    assert_resumes_identically(make, epochs=2)


def test_structures_of_files_read_like_the_arrays(tmp_path):
    x, y = members()
    keywords = write_sets(x, y, tmp_path / "sets", set_size=5, format="h5", shuffle=True, seed=2)
    assert set(keywords["data_path"]) == {"points", "features"}
    assert isinstance(keywords["labels_path"], tuple)
    from_files = DataGenerator(**keywords, batch_size=10, shuffle="samples", seed=1)
    for xs, ys in from_files:
        sample_of(xs, ys)
    # Any mix of layouts: one member in memory, one a single .npy file, labels in files.
    np.save(tmp_path / "features.npy", x["features"])
    mixed = DataGenerator(
        data={"points": x["points"], "features": tmp_path / "features.npy"},
        labels=y, batch_size=6, shuffle="samples",
    )  # fmt: skip
    assert sorted(i for xs, ys in mixed for i in sample_of(xs, ys)) == list(range(N))


def test_a_member_of_another_length_is_named():
    x, y = members()
    x["features"] = x["features"][:-2]
    with pytest.raises(ValueError, match=r"'points': 30, 'features': 28"):
        DataGenerator(data=x, labels=y)
    with pytest.raises(ValueError, match="different numbers of samples"):
        DataGenerator(data=members()[0], labels=(np.arange(N), np.arange(N - 1)))


def test_members_cut_into_other_sets_are_refused(tmp_path):
    x, _ = members()
    a = write_sets(x["points"], None, tmp_path / "a", set_size=5)["data_path"]
    b = write_sets(x["features"], None, tmp_path / "b", set_size=6)["data_path"]
    with pytest.raises(ValueError, match=r"'points' and 'features' .* different sets"):
        DataGenerator(data_path={"points": a, "features": b}, batch_size=5)


def test_bad_structures_get_clear_errors():
    x, _ = members()
    with pytest.raises(TypeError, match="structures are one level deep"):
        DataGenerator(data={"a": {"b": x["points"]}})
    with pytest.raises(TypeError, match="must be str"):
        DataGenerator(data={0: x["points"]})
    with pytest.raises(ValueError, match="empty dict"):
        DataGenerator(data={})
    with pytest.raises(TypeError, match="element 1 is a list"):
        DataGenerator(data=[np.zeros((2, 3)), [1, 2, 3]])
    with pytest.raises(TypeError, match="a list of NumPy arrays is read as ragged"):
        DataGenerator(data=[1.0, 2.0])


def test_a_state_from_other_members_is_refused():
    x, y = members()
    state = DataGenerator(data=x, labels=y).state_dict()
    other = dict(x, extra=x["points"])
    with pytest.raises(ValueError, match="members"):
        DataGenerator(data=other, labels=y).load_state_dict(state)


def clouds(n=11, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, 9, size=n)
    points = [np.full((k, 3), i, dtype="float32") + rng.random((k, 3), dtype=np.float32)
              for i, k in enumerate(lengths)]  # fmt: skip
    labels = [np.full(k, i) for i, k in enumerate(lengths)]
    return points, labels


@pytest.mark.parametrize("shuffle", [False, True, "samples"])
def test_ragged_samples_are_served_as_lists_and_resume_exactly(shuffle):
    points, labels = clouds()

    def make():
        return DataGenerator(data=points, labels=labels, batch_size=4, shuffle=shuffle, seed=3)

    dg = make()
    seen = []
    for x, y in dg:
        assert isinstance(x, list) and isinstance(y, list)
        for cloud, per_point in zip(x, y, strict=True):
            assert len(cloud) == len(per_point) and (cloud.astype(int)[:, 0] == per_point).all()
            seen.append(int(per_point[0]))
    assert sorted(seen) == list(range(len(points)))
    assert_resumes_identically(make, epochs=2)


def test_ragged_samples_stay_read_only_views_of_the_users_arrays():
    points, labels = clouds()
    x, _ = DataGenerator(data=points, labels=labels, batch_size=4).get()
    assert not x[0].flags.writeable and np.shares_memory(x[0], points[0])
    assert points[0].flags.writeable  # the user's array is untouched


def test_ragged_samples_must_share_their_trailing_shape_and_dtype():
    with pytest.raises(ValueError, match=r"element 0 is shaped \(2, 3\) and element 1 \(2, 4\)"):
        DataGenerator(data=[np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(ValueError, match="different dtypes"):
        DataGenerator(data=[np.zeros((2, 3), "float32"), np.zeros((2, 3))])


def test_a_ragged_state_is_refused_for_clouds_of_other_lengths():
    points, _ = clouds()
    state = DataGenerator(data=points, batch_size=4).state_dict()
    points[3] = np.zeros((len(points[3]) + 1, 3), "float32")
    with pytest.raises(ValueError, match="lengths_sha1"):
        DataGenerator(data=points, batch_size=4).load_state_dict(state)


def test_views_carry_structures_and_refuse_ragged_lists():
    tf = pytest.importorskip("tensorflow")
    x, y = members()
    dataset = DataGenerator(data=x, labels=y, batch_size=8).as_tf_dataset()
    first_x, first_y = next(iter(dataset))
    assert set(first_x) == {"points", "features"} and len(first_y) == 2
    assert first_x["features"].dtype == tf.float64
    view = DataGenerator(data=x, labels=y, batch_size=8, shuffle="samples").as_py_dataset()
    view_x, view_y = view[1]
    assert set(view_x) == {"points", "features"} and isinstance(view_y, tuple)
    sample_of(view_x, view_y)  # members aligned in the Keras view too
    points, _ = clouds()
    with pytest.raises(TypeError, match="PadPreprocessor"):
        DataGenerator(data=points, batch_size=4).as_tf_dataset()
