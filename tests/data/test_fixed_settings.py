"""Data-affecting settings are fixed at construction: assignments are refused, not ignored.

They decide the plan and the fingerprint a state dict is checked against, so an
assignment that changed the attribute alone would change nothing that is served (the
plan, `len()`, the order) while the generator claimed otherwise. `prefetch` changes
nothing that is served: it can be assigned and takes effect.
"""

import numpy as np
import pytest

from trainkit import DataGenerator, TimeseriesPreprocessor


def make(**settings):
    x = np.arange(100 * 3, dtype="float32").reshape(100, 3)
    return DataGenerator(data=x, labels=np.arange(100), batch_size=20, **settings)


@pytest.mark.parametrize(
    ("name", "value", "argument"),
    [
        ("batch_size", 25, "batch_size=..."),
        ("shuffle", True, "shuffle=..."),
        ("drop_remainder", True, "drop_remainder=..."),
        ("seed", 3, "seed=..."),
        ("shuffle_group_batches", True, "shuffle_group_batches=..."),
        ("shuffle_group_samples", True, "shuffle_group_samples=..."),
        ("superbatch", True, "superbatch=..."),
        ("shard", (0, 2), "shard=..."),
        ("preprocessor", TimeseriesPreprocessor(1), "preprocessor=..."),
        ("set_nums_original", ["1"], "set_nums=..."),
        ("source", None, "data_path=... or data=..."),
        ("prefetch_workers", 2, "prefetch_workers=..."),
    ],
)
def test_assigning_a_data_affecting_setting_is_refused_naming_the_argument(name, value, argument):
    dg = make()
    before = (len(dg), [b.set_name for b in dg.plan(0)], dg.fingerprint())
    with pytest.raises(AttributeError, match=rf"`{name}` changes what is served.*{argument}"):
        setattr(dg, name, value)
    assert (len(dg), [b.set_name for b in dg.plan(0)], dg.fingerprint()) == before


@pytest.mark.parametrize("name", ["epoch", "batch_index", "all_data_exhausted"])
def test_assigning_the_cursor_is_refused_pointing_to_load_state_dict(name):
    dg = make()
    with pytest.raises(AttributeError, match=rf"`{name}` is part of the generator's cursor.*load_"):
        setattr(dg, name, 1)
    assert (dg.epoch, dg.batch_index, dg.all_data_exhausted) == (0, 0, False)


def test_prefetch_can_be_assigned_and_takes_effect():
    dg = make(shuffle=True)
    sync = [y.tolist() for _, y in make(shuffle=True, prefetch=0)]
    dg.get()
    dg.prefetch = 3
    assert dg.prefetch == 3
    served = [y.tolist() for _, y in dg]
    dg.prefetch = 0
    assert dg.prefetch == 0 and served == sync
    with pytest.raises(ValueError, match="prefetch"):
        dg.prefetch = -1


@pytest.mark.parametrize("name", ["shuffle_group_samples", "shuffle_group_batches"])
def test_a_state_taken_with_other_group_shuffling_is_refused(name):
    x = np.zeros((40, 2), dtype="float32")
    state = DataGenerator(data=x, batch_size=5, set_nums=None, **{name: True}).state_dict()
    with pytest.raises(ValueError, match=rf"{name}: saved True, this generator has False"):
        DataGenerator(data=x, batch_size=5).load_state_dict(state)
