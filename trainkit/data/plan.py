"""The epoch plan: which samples each batch of an epoch holds, computed from settings alone.

The plan is a pure function of `(seed, epoch, sets, batch_size, shuffle options, shard)`,
so any process computes the same plan and the data cursor reduces to
`(epoch, batch index, slice_idx)`.

How batches are cut: sets are put in order (shuffled per epoch with `shuffle='sets'`),
their samples are laid end to end, and the stream is cut every `batch_size` samples.
Every batch therefore holds exactly `batch_size` samples except possibly the last one of
the epoch, which `drop_remainder=True` drops. Nothing crosses into the next epoch. When
the last set is shorter than the others (the remainder of an array source or of
`write_sets`), it stays last when sets are shuffled, so the other batches stay aligned
with whole sets.

Batch names (`set_name`) describe the pieces a batch is made of, joined by `'+'`:
a whole set is its `set_num` (`'7'`, `'1+2'`); the j-th `batch_size` fraction of a set
whose size is a multiple of `batch_size` is `'<set_num>-<letter>'` (`'1-a'`, ...,
`'1-z'`, `'1-aa'`); any other piece is `'<set_num>[start:stop]'`. With
`shuffle='samples'` a batch is a run of positions of the epoch's permutation:
`'shuffled[0:32]'`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

# Tags keep the random streams used for different purposes independent.
_SET_ORDER, _SAMPLE_ORDER, _GROUP_SAMPLES, _GROUP_BATCHES, _BATCH_SAMPLES = range(5)
SLICE_STREAM = 100
SAMPLE_STREAM = 101  # appended to a slice's key, then a sample's row: Preprocessor.sample_rngs


class GlobalRows(NamedTuple):
    """Where the samples of a shard sit in their global batch: rows `[start, stop)` of `size`.

    A batch served whole is `GlobalRows(0, size, size)`.
    """

    start: int
    stop: int
    size: int


class SetInfo(NamedTuple):
    """One set as the plan sees it: its name, first global row, and sample count."""

    set_num: str
    offset: int
    size: int


Pieces = tuple[tuple[str, int, int], ...]


class Batch:
    """One batch of an epoch plan.

    Attributes:
        set_name: readable name of the samples it holds (see module docstring).
        ranges: global row ranges `(start, stop)` in serving order, or `()` when the
            batch is an arbitrary selection given by `indices`.
        indices: global row indices in serving order, or None when `ranges` says it all.
        pieces: `(set_num, start, stop)` per set piece, rows local to the set (for people;
            for an arbitrary selection, the smallest range of each set that holds its rows).
        set_nums: the sets the batch draws from, in serving order.
        global_rows: for a shard (`shard_batch`), which rows of the global batch it holds;
            None for a batch served whole.
    """

    __slots__ = ("_pieces", "_sets", "global_rows", "indices", "ranges", "set_name")

    def __init__(
        self,
        set_name: str,
        ranges: tuple[tuple[int, int], ...],
        indices: np.ndarray | None,
        pieces: Pieces | None,
        sets: list[SetInfo] | None = None,
        global_rows: GlobalRows | None = None,
    ) -> None:
        self.set_name = set_name
        self.ranges = ranges
        self.indices = indices
        self._pieces = pieces
        self._sets = sets  # to work out `pieces` of an arbitrary selection on demand
        self.global_rows = global_rows

    def __repr__(self) -> str:
        return f"Batch({self.set_name!r}, size={self.size})"

    @property
    def pieces(self) -> Pieces:
        if self._pieces is None:
            assert self.indices is not None and self._sets is not None
            self._pieces = _pieces_of(self.indices, self._sets)
        return self._pieces

    @property
    def size(self) -> int:
        if self.indices is not None:
            return len(self.indices)
        if len(self.ranges) == 1:  # the usual batch: one range
            return self.ranges[0][1] - self.ranges[0][0]
        return sum(stop - start for start, stop in self.ranges)

    @property
    def set_nums(self) -> list[str]:
        return list(dict.fromkeys(piece[0] for piece in self.pieces))

    def rows(self) -> np.ndarray:
        """All global row indices of the batch, in serving order."""
        if self.indices is not None:
            return self.indices
        return np.concatenate([np.arange(a, b) for a, b in self.ranges]).astype(np.int64)


@dataclass(frozen=True)
class PlanSettings:
    """Everything besides the epoch that decides the plan."""

    batch_size: int
    seed: int = 0
    shuffle: str | None = None  # None, 'sets' or 'samples'
    drop_remainder: bool = False
    shuffle_group_batches: bool = False
    shuffle_group_samples: bool = False
    shard: tuple[int, int] | None = None


def letters(j: int) -> str:
    """0 -> 'a', 25 -> 'z', 26 -> 'aa', 27 -> 'ab' (bijective base 26)."""
    out = ""
    j += 1
    while j:
        j, rem = divmod(j - 1, 26)
        out = chr(ord("a") + rem) + out
    return out


def rng_for(seed: int, tag: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, tag, *keys])


def slice_key(seed: int, epoch: int, batch_index: int, slice_idx: int) -> tuple[int, ...]:
    """The rng key of one slice: whoever computes the slice, it draws the same numbers."""
    return (seed, SLICE_STREAM, epoch, batch_index, slice_idx)


def epoch_plan(sets: list[SetInfo], settings: PlanSettings, epoch: int) -> list[Batch]:
    """The ordered batches of `epoch`. Pure: same inputs, same plan."""
    if settings.shuffle == "samples":
        batches = _sample_shuffled_plan(sets, settings, epoch)
    else:
        batches = _set_ordered_plan(sets, settings, epoch)
    if settings.drop_remainder and batches and batches[-1].size < settings.batch_size:
        batches.pop()
    if settings.shard is not None:
        index, count = settings.shard
        batches = [shard_batch(batch, index, count) for batch in batches]
    return batches


def _set_ordered_plan(sets: list[SetInfo], settings: PlanSettings, epoch: int) -> list[Batch]:
    order = list(range(len(sets)))
    if settings.shuffle == "sets":
        # A short last set (the remainder of an array or of write_sets) stays last, so that
        # the other batches stay aligned with whole sets.
        shuffled = len(sets) - 1 if _has_short_tail(sets) else len(sets)
        permutation = rng_for(settings.seed, _SET_ORDER, epoch).permutation(shuffled)
        order = [int(k) for k in permutation] + order[shuffled:]
    cut = _cut_stream([sets[k] for k in order], settings.batch_size)
    if settings.shuffle_group_batches:
        cut = _shuffle_split_runs(cut, settings, epoch)
    return [_make_batch(pieces, sets, settings, epoch, number) for number, pieces in enumerate(cut)]


def _has_short_tail(sets: list[SetInfo]) -> bool:
    return len(sets) > 1 and sets[-1].size < max(info.size for info in sets[:-1])


def _cut_stream(ordered: list[SetInfo], batch_size: int) -> list[list[tuple[SetInfo, int, int]]]:
    """Lay the sets end to end and cut every `batch_size` samples."""
    batches: list[list[tuple[SetInfo, int, int]]] = []
    current: list[tuple[SetInfo, int, int]] = []
    room = batch_size
    for info in ordered:
        start = 0
        while start < info.size:
            stop = min(info.size, start + room)
            current.append((info, start, stop))
            room -= stop - start
            start = stop
            if room == 0:
                batches.append(current)
                current, room = [], batch_size
    if current:
        batches.append(current)
    return batches


_Cut = list[tuple[SetInfo, int, int]]


def _shuffle_split_runs(cut: list[_Cut], settings: PlanSettings, epoch: int) -> list[_Cut]:
    """Shuffle the order of consecutive batches cut from one and the same set."""
    out: list[_Cut] = []
    run: list[_Cut] = []

    def flush() -> None:
        if len(run) > 1:
            info = run[0][0][0]
            rng = rng_for(settings.seed, _GROUP_BATCHES, epoch, int(info.offset))
            out.extend(run[int(k)] for k in rng.permutation(len(run)))
        else:
            out.extend(run)
        run.clear()

    for pieces in cut:
        single_set = len(pieces) == 1
        if run and not (single_set and pieces[0][0] == run[0][0][0]):
            flush()
        if single_set:
            run.append(pieces)
        else:
            out.append(pieces)
    flush()
    return out


def _piece_name(info: SetInfo, start: int, stop: int, batch_size: int) -> str:
    if start == 0 and stop == info.size:
        return info.set_num
    aligned = info.size % batch_size == 0 and start % batch_size == 0
    if aligned and stop - start == batch_size:
        return f"{info.set_num}-{letters(start // batch_size)}"
    return f"{info.set_num}[{start}:{stop}]"


def _make_batch(pieces, sets, settings: PlanSettings, epoch: int, number: int) -> Batch:
    if len(pieces) == 1 and not settings.shuffle_group_samples:  # the common case, fast
        info, a, b = pieces[0]
        name = _piece_name(info, a, b, settings.batch_size)
        return Batch(name, ((info.offset + a, info.offset + b),), None, ((info.set_num, a, b),))
    name = "+".join(_piece_name(info, a, b, settings.batch_size) for info, a, b in pieces)
    local = tuple((info.set_num, a, b) for info, a, b in pieces)
    if not settings.shuffle_group_samples:
        return Batch(
            name, _merge_ranges([(i.offset + a, i.offset + b) for i, a, b in pieces]), None, local
        )
    parts = []
    for info, a, b in pieces:
        # One permutation per set and epoch, so the split pieces of a set partition it.
        perm = rng_for(settings.seed, _GROUP_SAMPLES, epoch, info.offset).permutation(info.size)
        parts.append(info.offset + perm[a:b])
    indices = np.concatenate(parts).astype(np.int64)
    if len(pieces) > 1:
        indices = rng_for(settings.seed, _BATCH_SAMPLES, epoch, number).permutation(indices)
    return Batch(name, (), indices, local)


def _merge_ranges(ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for start, stop in ranges:
        if merged and merged[-1][1] == start:
            merged[-1] = (merged[-1][0], stop)
        else:
            merged.append((start, stop))
    return tuple(merged)


def _sample_shuffled_plan(sets: list[SetInfo], settings: PlanSettings, epoch: int) -> list[Batch]:
    all_rows = np.concatenate([np.arange(i.offset, i.offset + i.size) for i in sets]).astype(
        np.int64
    )
    perm = all_rows[rng_for(settings.seed, _SAMPLE_ORDER, epoch).permutation(len(all_rows))]
    batches = []
    for a in range(0, len(perm), settings.batch_size):
        indices = perm[a : a + settings.batch_size]
        batches.append(Batch(f"shuffled[{a}:{a + len(indices)}]", (), indices, None, sets))
    return batches


def _pieces_of(indices: np.ndarray, sets: list[SetInfo]) -> Pieces:
    """Per-set summary of an arbitrary selection: `(set_num, min row, max row + 1)`."""
    starts = np.array([info.offset for info in sets])
    order = np.argsort(starts, kind="stable")  # chosen sets may come in any order
    owner = order[np.searchsorted(starts[order], indices, side="right") - 1]
    pieces = []
    for k in dict.fromkeys(owner.tolist()):
        rows = indices[owner == k] - sets[k].offset
        pieces.append((sets[k].set_num, int(rows.min()), int(rows.max()) + 1))
    return tuple(pieces)


def shard_batch(batch: Batch, index: int, count: int) -> Batch:
    """Rows `[index*b//count, (index+1)*b//count)` of a global batch of `b` rows.

    The shard knows which rows they are (`global_rows`): a preprocessor keys its draws
    for each sample on the sample's row in the global batch, so that the shards of a
    batch draw together what the whole batch draws.
    """
    size = batch.size
    lo, hi = index * size // count, (index + 1) * size // count
    rows = GlobalRows(lo, hi, size)
    if batch.indices is not None:
        return Batch(batch.set_name, (), batch.indices[lo:hi], batch._pieces, batch._sets, rows)
    ranges, position = [], 0
    for start, stop in batch.ranges:
        a = max(start, start + lo - position)
        b = min(stop, start + hi - position)
        if a < b:
            ranges.append((a, b))
        position += stop - start
    return Batch(batch.set_name, tuple(ranges), None, batch._pieces, batch._sets, rows)


def store_plan(
    chunks: list[SetInfo], seed: int, shuffle: bool, epoch: int, names: list[tuple[str, Pieces]]
) -> list[Batch]:
    """The ordered batches of an offline store for `epoch`: one per stored batch.

    Chunks are the sets (one row per stored batch); with `shuffle`, the chunk order and
    the batch order inside each chunk are drawn from `(seed, epoch)`, so a chunk is read
    once per epoch. Each batch keeps the name and pieces it had when it was stored.
    """
    settings = PlanSettings(
        batch_size=1,
        seed=seed,
        shuffle="sets" if shuffle else None,
        shuffle_group_batches=shuffle,
    )
    out = []
    for batch in epoch_plan(chunks, settings, epoch):
        row = batch.ranges[0][0]
        set_name, pieces = names[row]
        out.append(Batch(set_name, batch.ranges, None, pieces))
    return out
