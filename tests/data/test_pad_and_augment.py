"""PadPreprocessor and the point-cloud augmenters (rotation, jitter, scale)."""

import math

import numpy as np
import pytest

from trainkit import (
    Chain,
    DataGenerator,
    JitterPreprocessor,
    PadPreprocessor,
    RandomRotationPreprocessor,
    RandomScalePreprocessor,
)
from trainkit.testing import assert_resumes_identically, check_preprocessor

RNG = np.random.default_rng(0)
CLOUDS = RNG.normal(size=(6, 20, 3)).astype("float32")
RAGGED = [RNG.normal(size=(n, 3)).astype("float32") for n in (5, 9, 3, 7, 9, 4)]
PER_POINT = [np.arange(len(c), dtype="float32")[:, None] + 1 for c in RAGGED]
CLASSES = np.arange(6)


def run(pre, batch, labels=None, key=(0, 0, 0, 0)):
    pre.set_rng_key(key)
    return pre.process(batch, labels)


def perpendicular(points, axis, center):
    """Each point's offset from `center` with its component along `axis` removed."""
    offset = np.asarray(points, dtype=float) - center
    return offset - (offset @ axis)[..., None] * axis


# --- augmenters: geometry ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("axis", "unit"),
    [("z", (0, 0, 1)), (0, (1, 0, 0)), ("Y", (0, 1, 0)), ((1, 1, 0), (0.5**0.5, 0.5**0.5, 0))],
)
@pytest.mark.parametrize("center", ["origin", "centroid", (1.0, -2.0, 0.5)])
def test_rotation_keeps_distances_to_the_axis_through_the_center_and_the_axis_component(
    axis, unit, center
):
    pre = RandomRotationPreprocessor(axis=axis, center=center)
    turned, _ = run(pre, CLOUDS)
    unit = np.asarray(unit)
    if center == "origin":
        point = np.zeros((1, 1, 3))
    elif center == "centroid":
        point = CLOUDS.mean(axis=1, keepdims=True)
    else:
        point = np.asarray(center)
    np.testing.assert_allclose(
        np.linalg.norm(perpendicular(turned, unit, point), axis=-1),
        np.linalg.norm(perpendicular(CLOUDS, unit, point), axis=-1),
        atol=1e-5,
    )
    np.testing.assert_allclose((turned - point) @ unit, (CLOUDS - point) @ unit, atol=1e-5)
    assert turned.dtype == np.float32
    assert not np.allclose(turned, CLOUDS)


def test_rotation_draws_one_angle_per_sample_within_max_angle():
    pre = RandomRotationPreprocessor(axis="z", max_angle=0.3)
    turned, _ = run(pre, CLOUDS)
    angles = np.asarray(pre.describe_slice()["rotation_angles"])
    assert angles.shape == (6,) and np.all(np.abs(angles) <= 0.3)
    assert len(set(angles.tolist())) == 6
    measured = np.arctan2(turned[..., 1], turned[..., 0]) - np.arctan2(
        CLOUDS[..., 1], CLOUDS[..., 0]
    )
    measured = (measured + math.pi) % (2 * math.pi) - math.pi
    np.testing.assert_allclose(measured, np.broadcast_to(angles[:, None], (6, 20)), atol=1e-4)


def test_scale_is_one_factor_per_sample_within_low_and_high():
    pre = RandomScalePreprocessor(low=0.5, high=2.0)
    scaled, _ = run(pre, CLOUDS)
    ratios = scaled / CLOUDS
    factors = np.asarray(pre.describe_slice()["scale_factors"])
    np.testing.assert_allclose(ratios, np.broadcast_to(factors[:, None, None], ratios.shape), 1e-5)
    assert np.all((factors >= 0.5) & (factors <= 2.0)) and len(set(factors.tolist())) == 6


def test_jitter_has_the_asked_sigma_and_respects_clip():
    points = np.zeros((50, 400, 3), dtype="float32")
    noise, _ = run(JitterPreprocessor(sigma=0.02), points)
    assert abs(noise.std() - 0.02) < 0.02 * 0.02  # 60k draws: the std is within 0.5%
    assert abs(noise.mean()) < 0.001
    clipped, _ = run(JitterPreprocessor(sigma=0.02, clip=0.01), points)
    assert np.abs(clipped).max() <= 0.01
    assert np.mean(np.abs(clipped) == np.float32(0.01)) > 0.25  # |z| > 0.5 sigma is clipped


def test_ragged_clouds_get_the_same_draws_as_dense_ones_of_the_same_lengths():
    ragged = list(CLOUDS)
    for make in (
        lambda: RandomRotationPreprocessor(center="centroid"),
        lambda: JitterPreprocessor(0.1),
        lambda: RandomScalePreprocessor(),
    ):
        dense, _ = run(make(), CLOUDS)
        served, _ = run(make(), ragged)
        assert isinstance(served, list) and len(served) == 6
        np.testing.assert_allclose(np.stack(served), dense, rtol=1e-6)


def test_augmenters_pass_labels_through_unchanged():
    for pre in (RandomRotationPreprocessor(), JitterPreprocessor(), RandomScalePreprocessor()):
        _, labels = run(pre, RAGGED, PER_POINT)
        assert labels is PER_POINT
        _, labels = run(pre, CLOUDS, CLASSES)
        assert labels is CLASSES


def test_keys_pick_members_and_a_sample_turns_alike_in_each():
    batch = {"points": RAGGED, "normals": RAGGED, "features": CLOUDS[:, :, :2]}
    out, _ = run(RandomRotationPreprocessor(keys=["points", "normals"]), batch)
    assert out["features"] is batch["features"]
    for a, b in zip(out["points"], out["normals"]):
        np.testing.assert_array_equal(a, b)
    # without keys: every member with a last axis of 3
    out, _ = run(RandomScalePreprocessor(), batch)
    assert out["features"] is batch["features"] and out["points"][0] is not RAGGED[0]
    out, _ = run(JitterPreprocessor(keys=1), (CLOUDS, CLOUDS))
    assert out[0] is CLOUDS and not np.array_equal(out[1], CLOUDS)


# --- augmenters: randomness, resume, composition ---------------------------------------


def clouds_datagen(preprocessor, **kwargs):
    return DataGenerator(
        data=CLOUDS, labels=CLASSES, batch_size=2, preprocessor=preprocessor, **kwargs
    )


def test_augmenters_draw_anew_every_epoch():
    dg = clouds_datagen(Chain(RandomRotationPreprocessor(), JitterPreprocessor()))
    first = [x for x, _ in dg]
    second = [x for x, _ in dg]
    assert len(first) == len(second) == 3
    for a, b in zip(first, second):
        assert not np.allclose(a, b)


@pytest.mark.parametrize("prefetch", [0, 2])
def test_a_resumed_generator_draws_the_same_augmentations(prefetch):
    def make():
        pre = Chain(
            RandomRotationPreprocessor(center="centroid"),
            JitterPreprocessor(0.05, clip=0.1),
            RandomScalePreprocessor(),
        )
        return clouds_datagen(pre, shuffle="samples", prefetch=prefetch)

    assert_resumes_identically(make, epochs=2)


@pytest.mark.parametrize(
    "make",
    [
        lambda: RandomRotationPreprocessor(axis=(1, 2, 3), max_angle=1.0),
        lambda: JitterPreprocessor(0.01, clip=0.02),
        lambda: RandomScalePreprocessor(0.8, 1.2),
        lambda: PadPreprocessor(),
        lambda: PadPreprocessor(pad_value=-1.0, length=12),
        lambda: Chain(RandomRotationPreprocessor(), JitterPreprocessor(), PadPreprocessor()),
    ],
)
@pytest.mark.parametrize(
    ("batch", "labels"), [(RAGGED, PER_POINT), (RAGGED, CLASSES), (RAGGED, None)]
)
def test_the_built_ins_pass_the_conformance_check(make, batch, labels):
    check_preprocessor(make, batch, labels)


@pytest.mark.parametrize(
    "make",
    [RandomRotationPreprocessor, JitterPreprocessor, RandomScalePreprocessor, PadPreprocessor],
)
def test_the_built_ins_pass_the_conformance_check_on_dense_and_structured_batches(make):
    check_preprocessor(make, CLOUDS, CLASSES)
    check_preprocessor(make, {"points": RAGGED, "features": RAGGED}, {"seg": PER_POINT})


def test_a_chain_of_augmenters_and_padding_serves_weights_and_undoes_padding_in_reverse():
    pre = Chain(RandomScalePreprocessor(), PadPreprocessor(pad_value=0.0))
    x, y, weights = run(pre, RAGGED, PER_POINT)
    assert x.shape == (6, 9, 3) and y.shape == (6, 9, 1) and weights.shape == (6, 9)
    restored = pre.post_process(x, pre.describe_slice())
    factors = pre.describe_slice()["scale_factors"]
    for sample, original, factor in zip(restored, RAGGED, factors):
        np.testing.assert_allclose(sample, original * factor, rtol=1e-6)


# --- augmenters: errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: RandomRotationPreprocessor(axis=3), r"`axis` must be .*Received: axis=3"),
        (lambda: RandomRotationPreprocessor(axis="w"), r"Received: axis='w'"),
        (lambda: RandomRotationPreprocessor(axis=(0, 0, 0)), r"not zero.*axis=\(0, 0, 0\)"),
        (lambda: RandomRotationPreprocessor(max_angle=-1), r"max_angle.*Received: max_angle=-1"),
        (lambda: RandomRotationPreprocessor(max_angle=180), r"radians.*np\.pi.*max_angle=180"),
        (lambda: RandomRotationPreprocessor(center="middle"), r"'centroid'.*center='middle'"),
        (lambda: JitterPreprocessor(sigma=0), r"`sigma` must be .*> 0.*Received: sigma=0"),
        (lambda: JitterPreprocessor(sigma="0.1"), r"`sigma` must be .*Received: sigma='0\.1'"),
        (lambda: JitterPreprocessor(clip=-1.0), r"`clip` .*or None.*Received: clip=-1\.0"),
        (lambda: RandomScalePreprocessor(low=0), r"`low` .*Received: low=0"),
        (lambda: RandomScalePreprocessor(1.2, 1.1), r"at most `high`.*low=1\.2, high=1\.1"),
        (lambda: PadPreprocessor(length=0), r"`length` must be a positive int.*length=0"),
        (lambda: PadPreprocessor(pad_value="0"), r"`pad_value` must be a number.*'0'"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument_and_value(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


@pytest.mark.parametrize(
    "make", [RandomRotationPreprocessor, JitterPreprocessor, RandomScalePreprocessor]
)
def test_keys_must_be_names_or_positions(make):
    with pytest.raises(TypeError, match=r"`keys` names the members.*Received: keys=1\.5"):
        make(keys=1.5)
    with pytest.raises(TypeError, match=r"Received: keys=\[\]"):
        make(keys=[])


def test_data_without_a_last_axis_of_3_is_refused_at_construction_and_at_process():
    flat = np.zeros((4, 10, 2), dtype="float32")
    with pytest.raises(ValueError, match=r"last axis of size 3.*shape \(10, 2\).*keys="):
        DataGenerator(data=flat, batch_size=2, preprocessor=JitterPreprocessor())
    with pytest.raises(ValueError, match=r"shape=\(4, 10, 2\).*keys=.*Received: keys=None"):
        run(RandomRotationPreprocessor(), flat)
    with pytest.raises(ValueError, match=r"Member 'colors' has sample shape \(10, 2\)"):
        DataGenerator(
            data={"points": CLOUDS[:4], "colors": flat},
            batch_size=2,
            preprocessor=RandomScalePreprocessor(keys="colors"),
        )


def test_keys_that_name_no_member_suggest_the_closest():
    with pytest.raises(ValueError, match=r"member 'point'.*Did you mean 'points'\?"):
        run(JitterPreprocessor(keys="point"), {"points": RAGGED, "features": RAGGED})
    with pytest.raises(ValueError, match=r"not structured.*Drop `keys=`"):
        run(JitterPreprocessor(keys="points"), CLOUDS)
    with pytest.raises(ValueError, match=r"member 'point'.*Did you mean 'points'\?"):
        DataGenerator(
            data={"points": CLOUDS}, batch_size=2, preprocessor=PadPreprocessor(keys="point")
        )


# --- PadPreprocessor ----------------------------------------------------------------------


def test_padding_fills_with_pad_value_and_weighs_real_rows_1_and_padding_0():
    x, y, weights = run(PadPreprocessor(pad_value=-7.0), RAGGED, PER_POINT)
    assert x.shape == (6, 9, 3) and x.dtype == np.float32
    assert y.shape == (6, 9, 1) and weights.shape == (6, 9) and weights.dtype == np.float32
    for i, (cloud, labels) in enumerate(zip(RAGGED, PER_POINT)):
        n = len(cloud)
        np.testing.assert_array_equal(x[i, :n], cloud)
        np.testing.assert_array_equal(y[i, :n], labels)
        assert np.all(x[i, n:] == -7.0) and np.all(y[i, n:] == -7.0)
        np.testing.assert_array_equal(weights[i], (np.arange(9) < n).astype("float32"))


def test_a_fixed_length_pads_every_batch_to_it_and_a_longer_sample_is_refused():
    x, _, weights = run(PadPreprocessor(length=16), RAGGED[:3])
    assert x.shape == (3, 16, 3) and weights.sum() == 5 + 9 + 3
    with pytest.raises(
        ValueError, match=r"length=8\) got sample 1 of length 9.*Raise `length`.*length=None"
    ):
        run(PadPreprocessor(length=8), RAGGED)


def test_per_sample_labels_stay_and_get_one_weight_per_sample():
    x, y, weights = run(PadPreprocessor(), RAGGED, CLASSES)
    assert y is CLASSES and x.shape == (6, 9, 3)
    np.testing.assert_array_equal(weights, np.ones(6, dtype="float32"))
    x, y, weights = run(PadPreprocessor(), RAGGED, None)
    assert y is None and weights.shape == (6, 9)


def test_structured_labels_mixing_per_point_and_per_sample_get_weights_of_each_kind():
    _, y, weights = run(PadPreprocessor(), RAGGED, {"seg": PER_POINT, "cls": CLASSES})
    assert y["cls"] is CLASSES and y["seg"].shape == (6, 9, 1)
    assert weights["seg"].shape == (6, 9) and weights["cls"].shape == (6,)


def test_keys_pad_only_the_named_members_and_members_of_a_sample_must_agree():
    features = [np.ones((len(c), 2), dtype="float32") for c in RAGGED]
    other = [np.ones((len(c) + 1, 4)) for c in RAGGED]
    batch = {"points": RAGGED, "features": features, "other": other}
    x, _, _ = run(PadPreprocessor(keys=("points", "features")), batch)
    assert x["points"].shape == (6, 9, 3) and x["features"].shape == (6, 9, 2)
    assert x["other"] is other
    with pytest.raises(
        ValueError,
        match=r"sample 0 has length 5 in the batch member 'points' and 6 in the "
        r"batch member 'other'.*same length.*`keys=`",
    ):
        run(PadPreprocessor(), batch)
    with pytest.raises(ValueError, match=r"length 5 in the batch and 6 in the labels"):
        run(PadPreprocessor(), RAGGED, [np.ones(len(c) + 1) for c in RAGGED])
    with pytest.raises(ValueError, match=r"names member 'dense', which is dense.*Leave dense"):
        run(PadPreprocessor(keys=["points", "dense"]), {"points": RAGGED, "dense": CLOUDS})


def test_dense_batches_pass_through_unpadded():
    out = run(PadPreprocessor(), CLOUDS, CLASSES)
    assert len(out) == 2 and out[0] is CLOUDS and out[1] is CLASSES
    pre = PadPreprocessor()
    run(pre, CLOUDS)
    assert pre.post_process(CLOUDS, pre.describe_slice()) is CLOUDS


def test_a_pad_value_the_dtype_cannot_hold_is_refused():
    ints = [np.ones((n, 3), dtype="int32") for n in (2, 4)]
    x, _, _ = run(PadPreprocessor(pad_value=-1), ints)
    assert x.dtype == np.int32 and x[0, 2, 0] == -1
    with pytest.raises(ValueError, match=r"pad_value=0\.5 cannot be stored .*int32"):
        run(PadPreprocessor(pad_value=0.5), ints)
    with pytest.raises(ValueError, match=r"pad_value=300 cannot be stored .*uint8"):
        run(PadPreprocessor(pad_value=300), [np.ones((n, 3), dtype="uint8") for n in (2, 4)])
    with pytest.raises(ValueError, match=r"pad_value=-1 cannot be stored .*uint8"):
        run(PadPreprocessor(pad_value=-1), [np.ones((n, 3), dtype="uint8") for n in (2, 4)])


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_pad_value_is_refused_when_built(value):
    with pytest.raises(ValueError, match=r"`pad_value` must be finite"):
        PadPreprocessor(pad_value=value)


def test_a_batch_of_empty_samples_is_named_not_fit():
    empty = [np.ones((0, 3), "float32") for _ in range(2)]
    with pytest.raises(ValueError, match=r"2 samples all have length 0"):
        run(PadPreprocessor(), empty)
    x, _, weights = run(PadPreprocessor(length=3), empty)  # a fixed length pads them
    assert x.shape == (2, 3, 3) and not weights.any()


def test_post_process_restores_the_original_lengths_and_values():
    pre = PadPreprocessor(pad_value=3.0, length=12)
    x, _, _ = run(pre, RAGGED)
    description = pre.describe_slice()
    assert description == {"lengths": [5, 9, 3, 7, 9, 4], "padded_length": 12}
    fresh = PadPreprocessor(pad_value=3.0, length=12)  # e.g. the user's copy under prefetch
    for restored in (pre.post_process(x), fresh.post_process(x, description)):
        assert [r.shape for r in restored] == [c.shape for c in RAGGED]
        for r, c in zip(restored, RAGGED):
            np.testing.assert_array_equal(r, c)
    outputs = fresh.post_process({"seg": x[..., :2], "cls": np.zeros((6, 4))}, description)
    assert [len(s) for s in outputs["seg"]] == [5, 9, 3, 7, 9, 4]
    assert outputs["cls"].shape == (6, 4)  # one prediction per sample: left as it is
    pair = fresh.post_process([x, np.zeros(6)], description)
    assert isinstance(pair, list) and len(pair[0]) == 6 and pair[1].shape == (6,)


def test_post_process_without_lengths_or_with_other_predictions_says_what_to_pass():
    with pytest.raises(
        ValueError, match=r"datagen\.describe_slice\(\).*Received: description=None"
    ):
        PadPreprocessor().post_process(np.zeros((6, 9, 3)))
    with pytest.raises(ValueError, match=r"ndarray\(shape=\(4, 9, 3\).*slice of 6 samples"):
        PadPreprocessor().post_process(np.zeros((4, 9, 3)), {"lengths": [9] * 6})


@pytest.mark.parametrize("prefetch", [0, 2])
def test_post_process_with_the_generators_description_undoes_padding_under_prefetch(prefetch):
    pre = PadPreprocessor()
    dg = DataGenerator(
        data=RAGGED, labels=PER_POINT, batch_size=4, preprocessor=pre, prefetch=prefetch
    )
    served = []
    while not dg.all_data_exhausted:  # get(), describe_slice(), then update_state()
        x, _, weights = dg.get()
        assert weights.shape == x.shape[:2]
        served += pre.post_process(x, dg.describe_slice())
        dg.update_state()
    assert len(served) == 6
    for s, c in zip(served, RAGGED):
        np.testing.assert_array_equal(s, c)
    dg.close()


def test_a_ragged_structured_generator_with_augmenters_and_padding_resumes_identically():
    features = [np.ones((len(c), 2), dtype="float32") * k for k, c in enumerate(RAGGED)]

    def make():
        pre = Chain(
            RandomRotationPreprocessor(keys="points", center="centroid"),
            JitterPreprocessor(0.01, keys="points"),
            PadPreprocessor(pad_value=0.0),
        )
        return DataGenerator(
            data={"points": RAGGED, "features": features},
            labels=PER_POINT,
            batch_size=4,
            shuffle="samples",
            preprocessor=pre,
        )

    x, _, weights = make().get()
    assert x["points"].shape[0] == 4 and x["features"].shape[:2] == x["points"].shape[:2]
    assert weights.shape == x["points"].shape[:2]
    assert_resumes_identically(make, epochs=2)


def test_get_config_fingerprints_the_settings():
    assert PadPreprocessor(length=4, keys="points").get_config() == {
        "class": "PadPreprocessor", "pad_value": 0.0, "length": 4, "keys": ["points"]
    }  # fmt: skip
    config = RandomRotationPreprocessor(axis="x", max_angle=1, center=True).get_config()
    assert config["axis"] == [1.0, 0.0, 0.0] and config["center"] == "centroid"


def test_two_pad_values_train_a_per_point_model_to_the_same_weights():
    keras = pytest.importorskip("keras")
    targets = [np.stack([c.sum(-1), c[:, 0]], axis=-1) for c in RAGGED]

    def train(pad_value, use_weights=True):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((None, 3)), keras.layers.Dense(2)])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        x, y, weights = run(PadPreprocessor(pad_value=pad_value), RAGGED, targets)
        for _ in range(3):
            model.train_on_batch(x, y, sample_weight=weights if use_weights else None)
        return model.get_weights()

    for a, b in zip(train(0.0), train(50.0)):
        np.testing.assert_array_equal(a, b)
    unweighted = zip(train(0.0, use_weights=False), train(50.0, use_weights=False))
    assert not all(np.allclose(a, b) for a, b in unweighted)  # the weights are what protects
