"""PadPreprocessor: members of different lengths (groups=), and which outputs post_process cuts."""

from __future__ import annotations

import numpy as np
import pytest

from trainkit import Chain, DataGenerator, JitterPreprocessor, PadPreprocessor

RNG = np.random.default_rng(0)
FINE = [RNG.normal(size=(n, 3)).astype("float32") for n in (5, 9, 3, 7)]  # depth 0
COARSE = [RNG.normal(size=(n, 3)).astype("float32") for n in (2, 1, 4, 3)]  # depth 1
SEG = [np.arange(len(c)) % 2 for c in FINE]  # one label per fine point
CLS = np.arange(4)
DEPTHS = [{"batch": ["fine"], "labels": ["seg"]}, {"batch": ["coarse"]}]


def run(pre, batch, labels=None):
    pre.set_rng_key((0, 0, 0, 0))
    return pre.process(batch, labels)


def test_groups_pad_each_depth_to_its_own_length_with_the_mask_of_the_labels_they_pad():
    pre = PadPreprocessor(groups=DEPTHS)
    x, y, weights = run(pre, {"fine": FINE, "coarse": COARSE}, {"seg": SEG, "cls": CLS})
    assert x["fine"].shape == (4, 9, 3) and x["coarse"].shape == (4, 4, 3)
    assert y["seg"].shape == (4, 9) and y["cls"] is CLS
    # The per-point labels weigh their real points only; the per-cloud ones 1 each.
    assert weights["seg"].sum() == sum(len(c) for c in FINE)
    np.testing.assert_array_equal(weights["cls"], np.ones(4))
    description = pre.describe_slice()
    assert description["lengths"] == [5, 9, 3, 7]
    cuts = pre.post_process(
        {"seg": np.zeros((4, 9, 2)), "cls": np.zeros((4, 9)), "coarse": np.zeros((4, 4))},
        description,
    )
    assert [len(s) for s in cuts["seg"]] == [5, 9, 3, 7]
    assert cuts["cls"].shape == (4, 9)  # per cloud, though as wide as the padding
    assert cuts["coarse"].shape == (4, 4)  # no labels, not named in 'outputs'


def test_a_group_cuts_the_outputs_it_names_with_its_own_lengths():
    groups = [{"batch": ["fine"], "labels": ["seg"]}, {"batch": ["coarse"], "outputs": ["up"]}]
    pre = PadPreprocessor(groups=groups)
    run(pre, {"fine": FINE, "coarse": COARSE}, {"seg": SEG})
    cuts = pre.post_process({"seg": np.zeros((4, 9, 2)), "up": np.zeros((4, 4, 8))})
    assert [len(s) for s in cuts["seg"]] == [5, 9, 3, 7]
    assert [len(s) for s in cuts["up"]] == [2, 1, 4, 3]


def test_a_chain_of_pads_is_refused_naming_groups():
    with pytest.raises(ValueError, match=r"more than one PadPreprocessor.*groups="):
        Chain(
            PadPreprocessor(keys=["fine"]), JitterPreprocessor(), PadPreprocessor(keys=["coarse"])
        )
    with pytest.raises(ValueError, match=r"more than one PadPreprocessor"):
        Chain(PadPreprocessor(), Chain(JitterPreprocessor(), PadPreprocessor()))


@pytest.mark.parametrize(
    ("groups", "match"),
    [
        ([{"batch": ["fine"]}], r"ragged labels \['seg'\] that no group names"),
        ([{"batch": ["fine"], "labels": ["seg"]}, {"batch": ["fine"]}], r"member 'fine' twice"),
        ([{"batch": ["fine"], "labels": ["cls"]}], r"labels member 'cls', which is dense"),
        ([{"batch": ["fin"], "labels": ["seg"]}], r"batch member 'fin', which the batch does"),
    ],
)
def test_groups_that_miss_or_repeat_members_are_refused(groups, match):
    with pytest.raises(ValueError, match=match):
        run(
            PadPreprocessor(groups=groups),
            {"fine": FINE, "coarse": COARSE},
            {"seg": SEG, "cls": CLS},
        )


def test_groups_with_keys_or_of_the_wrong_type_are_refused():
    with pytest.raises(ValueError, match=r"`groups=` or `keys=`/`outputs=`, not both"):
        PadPreprocessor(keys=["fine"], groups=DEPTHS)
    with pytest.raises(TypeError, match=r"non-empty list of dicts.*Received: \{'bach'"):
        PadPreprocessor(groups=[{"bach": ["fine"]}])


def test_post_process_decides_from_the_padded_labels_not_from_a_width():
    """Lengths [3, 5] padded to 5: a per-cloud output of width 5 is not cut."""
    clouds = [np.zeros((3, 3)), np.zeros((5, 3))]
    pre = PadPreprocessor()
    run(pre, clouds, {"cls": np.arange(2), "seg": [np.zeros(3), np.zeros(5)]})
    cut = pre.post_process({"cls": np.zeros((2, 5)), "seg": np.zeros((2, 5))})
    assert cut["cls"].shape == (2, 5)
    assert [len(s) for s in cut["seg"]] == [3, 5]
    # Without labels, a 2-d output as wide as the padding is ambiguous: refused, naming
    # `outputs=`, which then decides.
    run(pre, clouds)
    with pytest.raises(ValueError, match=r"cannot tell whether output 'cls'.*outputs="):
        pre.post_process({"cls": np.zeros((2, 5)), "seg": np.zeros((2, 5, 2))})
    declared = PadPreprocessor(outputs=["seg"])
    run(declared, clouds)
    cut = declared.post_process({"cls": np.zeros((2, 5)), "seg": np.zeros((2, 5))})
    assert cut["cls"].shape == (2, 5) and [len(s) for s in cut["seg"]] == [3, 5]
    with pytest.raises(ValueError, match=r"output 'seg' was padded to 5 rows"):
        declared.post_process({"seg": np.zeros((2, 4))})


def test_groups_resume_through_a_generator_and_fingerprint_their_settings():
    pre = PadPreprocessor(groups=DEPTHS)
    config = pre.get_config()
    assert config["groups"] == [
        {"batch": ["fine"], "labels": ["seg"]},
        {"batch": ["coarse"], "labels": []},
    ]
    dg = DataGenerator(
        data={"fine": FINE, "coarse": COARSE}, labels={"seg": SEG}, batch_size=2, preprocessor=pre
    )
    x, _, weights = dg.get()
    assert x["coarse"].shape == (2, 2, 3) and weights.shape == (2, 9)
