"""The epoch plan: names, coverage, remainders, shuffling and sharding."""

import subprocess
import sys

import numpy as np
import pytest

from trainkit.data.plan import PlanSettings, SetInfo, epoch_plan, letters


def sets_of(*sizes):
    out, offset = [], 0
    for k, size in enumerate(sizes, start=1):
        out.append(SetInfo(str(k), offset, size))
        offset += size
    return out


def names(sets, epoch=0, **settings):
    return [batch.set_name for batch in epoch_plan(sets, PlanSettings(**settings), epoch)]


@pytest.mark.parametrize(
    ("sizes", "batch_size", "expected"),
    [
        ((4, 4, 4), 4, ["1", "2", "3"]),
        ((4, 4, 4, 4), 8, ["1+2", "3+4"]),
        ((4, 4, 4), 8, ["1+2", "3"]),
        ((4, 4), 2, ["1-a", "1-b", "2-a", "2-b"]),
        ((6,), 3, ["1-a", "1-b"]),
        ((5, 5), 3, ["1[0:3]", "1[3:5]+2[0:1]", "2[1:4]", "2[4:5]"]),
        ((4, 4, 1), 4, ["1", "2", "3"]),
    ],
)
def test_batch_names_describe_the_sets_they_come_from(sizes, batch_size, expected):
    assert names(sets_of(*sizes), batch_size=batch_size) == expected


def test_split_names_continue_past_z_with_double_letters():
    assert [letters(j) for j in (0, 25, 26, 27, 51, 52)] == ["a", "z", "aa", "ab", "az", "ba"]
    plan_names = names(sets_of(30), batch_size=1)
    assert plan_names[25:28] == ["1-z", "1-aa", "1-ab"]


def test_every_batch_is_full_except_the_last_and_drop_remainder_drops_it():
    sets = sets_of(10, 10, 3)
    sizes = [b.size for b in epoch_plan(sets, PlanSettings(batch_size=4), 0)]
    assert sizes == [4, 4, 4, 4, 4, 3]
    dropped = [b.size for b in epoch_plan(sets, PlanSettings(batch_size=4, drop_remainder=True), 0)]
    assert dropped == [4, 4, 4, 4, 4]


def test_split_sets_do_not_leak_into_the_next_epoch():
    sets = sets_of(6, 6, 6)
    for epoch in range(3):
        plan = epoch_plan(sets, PlanSettings(batch_size=4, shuffle="sets", seed=3), epoch)
        rows = np.concatenate([b.rows() for b in plan])
        assert sorted(rows.tolist()) == list(range(18))


def test_shuffle_sets_reorders_every_epoch_including_the_first():
    sets = sets_of(*[2] * 12)
    unshuffled = names(sets, batch_size=2)
    first = names(sets, 0, batch_size=2, shuffle="sets", seed=5)
    second = names(sets, 1, batch_size=2, shuffle="sets", seed=5)
    assert first != unshuffled
    assert first != second
    assert sorted(first) == sorted(unshuffled)


def test_shuffle_samples_draws_a_new_permutation_each_epoch():
    sets = sets_of(10, 10)
    plan0 = epoch_plan(sets, PlanSettings(batch_size=5, shuffle="samples", seed=1), 0)
    plan1 = epoch_plan(sets, PlanSettings(batch_size=5, shuffle="samples", seed=1), 1)
    rows0 = np.concatenate([b.rows() for b in plan0])
    rows1 = np.concatenate([b.rows() for b in plan1])
    assert sorted(rows0.tolist()) == list(range(20))
    assert not np.array_equal(rows0, rows1)
    assert plan0[0].set_name == "shuffled[0:5]"


def test_plan_is_the_same_in_another_process():
    code = (
        "from trainkit.data.plan import *;"
        "s=[SetInfo(str(k), 7*k, 7) for k in range(5)];"
        "p=epoch_plan(s, PlanSettings(batch_size=3, shuffle='samples', seed=9), 4);"
        "print([b.rows().tolist() for b in p])"
    )
    here = [
        b.rows().tolist()
        for b in epoch_plan(
            [SetInfo(str(k), 7 * k, 7) for k in range(5)],
            PlanSettings(batch_size=3, shuffle="samples", seed=9),
            4,
        )
    ]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(here)


def test_shuffle_group_batches_permutes_the_pieces_of_a_split_set():
    sets = sets_of(8, 8)
    found = {
        tuple(names(sets, e, batch_size=2, shuffle_group_batches=True, seed=0)) for e in range(6)
    }
    assert len(found) > 1
    for plan_names in found:
        assert sorted(plan_names[:4]) == ["1-a", "1-b", "1-c", "1-d"]


def test_shuffle_group_samples_keeps_each_split_piece_inside_its_set():
    sets = sets_of(8, 8)
    plan = epoch_plan(sets, PlanSettings(batch_size=4, shuffle_group_samples=True, seed=2), 0)
    assert sorted(np.concatenate([plan[0].rows(), plan[1].rows()]).tolist()) == list(range(8))
    assert sorted(np.concatenate([plan[2].rows(), plan[3].rows()]).tolist()) == list(range(8, 16))
    assert plan[0].rows().tolist() != list(range(4))


def test_shards_split_each_global_batch_into_contiguous_row_ranges():
    sets = sets_of(8, 8)
    global_plan = epoch_plan(sets, PlanSettings(batch_size=8), 0)
    for index in range(4):
        shard_plan = epoch_plan(sets, PlanSettings(batch_size=8, shard=(index, 4)), 0)
        for whole, part in zip(global_plan, shard_plan):
            assert part.rows().tolist() == whole.rows().tolist()[2 * index : 2 * index + 2]
            assert part.set_name == whole.set_name


def test_a_short_last_set_stays_last_when_sets_are_shuffled():
    sets = sets_of(4, 4, 4, 4, 1)
    for epoch in range(5):
        plan_names = names(sets, epoch, batch_size=4, shuffle="sets", seed=epoch)
        assert plan_names[-1] == "5"
        assert sorted(plan_names[:-1]) == ["1", "2", "3", "4"]


def test_shuffled_sets_of_equal_size_move_the_last_set_too():
    sets = sets_of(4, 4, 4, 4)
    positions = {
        names(sets, epoch, batch_size=4, shuffle="sets", seed=1).index("4") for epoch in range(8)
    }
    assert positions != {3}  # no short tail: the last set is shuffled like the others


def test_drop_remainder_keeps_a_full_last_batch():
    sets = sets_of(4, 4, 4)
    plan = epoch_plan(sets, PlanSettings(batch_size=4, drop_remainder=True), 0)
    assert [b.set_name for b in plan] == ["1", "2", "3"]
    plan = epoch_plan(sets, PlanSettings(batch_size=6, drop_remainder=True), 0)
    assert [b.size for b in plan] == [6, 6]
    plan = epoch_plan(sets, PlanSettings(batch_size=6, shuffle="samples", drop_remainder=True), 0)
    assert [b.size for b in plan] == [6, 6]


def test_shards_of_a_short_last_batch_split_its_rows_between_them():
    sets = sets_of(4, 4, 3)  # batches of 4, 4 and a short last one of 3 rows (8, 9, 10)
    rows = [
        [b.rows().tolist() for b in epoch_plan(sets, PlanSettings(batch_size=4, shard=(k, 2)), 0)]
        for k in range(2)
    ]
    assert rows[0] == [[0, 1], [4, 5], [8]]
    assert rows[1] == [[2, 3], [6, 7], [9, 10]]
    three = [epoch_plan(sets, PlanSettings(batch_size=4, shard=(k, 3)), 0)[-1] for k in range(3)]
    assert [b.rows().tolist() for b in three] == [[8], [9], [10]]
    assert {b.set_name for b in three} == {"3"}
    shuffled = [
        epoch_plan(sets, PlanSettings(batch_size=4, shuffle="samples", seed=2, shard=(k, 2)), 0)
        for k in range(2)
    ]
    last = epoch_plan(sets, PlanSettings(batch_size=4, shuffle="samples", seed=2), 0)[-1]
    assert len(last.rows()) == 3
    assert shuffled[0][-1].rows().tolist() + shuffled[1][-1].rows().tolist() == last.rows().tolist()


@pytest.mark.parametrize(
    "options",
    [{}, {"shuffle": True}, {"shuffle_group_batches": True}, {"shuffle_group_samples": True}],
    ids=["unshuffled", "sets", "group-batches", "group-samples"],
)
def test_each_epoch_serves_its_own_plan_the_same_one_only_when_nothing_shuffles(tmp_path, options):
    from trainkit import DataGenerator

    for k in range(3):  # sets of 16 rows, split into 4 batches each
        np.save(tmp_path / f"{k}.npy", np.arange(16, dtype=np.float32)[:, None] + 100 * k)
    datagen = DataGenerator(str(tmp_path), batch_size=4, seed=1, **options)
    served = []
    for epoch in range(3):
        served.append([x[:, 0].tolist() for x, _ in datagen])
        assert datagen.epoch == epoch
    assert (served[0] == served[1] == served[2]) is (not options)
