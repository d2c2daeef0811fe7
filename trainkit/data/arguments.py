"""Checks of the DataGenerator's arguments: shuffle, shard, seed, set selection.

Each returns the value the generator keeps, or raises `ValueError`/`TypeError` naming
the argument, what is expected and what was received.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trainkit._validation import check_int, describe, is_int
from trainkit.data.plan import SetInfo
from trainkit.data.sources import Source, offsets_of

# Seeds are stored in state dicts and handed to NumPy and TensorFlow: keep them int64.
MAX_SEED = 2**63 - 1

_SHUFFLE_MODES = {False: None, True: "sets", "sets": "sets", "samples": "samples"}


def check_seed(seed: Any) -> int:
    return check_int("seed", seed, maximum=MAX_SEED)


def check_shuffle(shuffle: Any) -> str | None:
    if isinstance(shuffle, (bool, str)) and shuffle in _SHUFFLE_MODES:
        return _SHUFFLE_MODES[shuffle]
    raise ValueError(
        "`shuffle` must be False, True (same as 'sets'), 'sets' or 'samples'. "
        f"Received: shuffle={describe(shuffle)}"
    )


def check_shard(shard: Any, batch_size: int) -> tuple[int, int] | None:
    if shard is None:
        return None
    valid = (
        isinstance(shard, (tuple, list))
        and len(shard) == 2
        and all(is_int(v) for v in shard)
        and 0 <= shard[0] < shard[1]
    )
    if not valid:
        raise ValueError(
            "`shard` must be (index, count) with 0 <= index < count, e.g. (0, 2). "
            f"Received: shard={describe(shard)}"
        )
    if batch_size % shard[1]:
        raise ValueError(
            f"`batch_size` is the global batch and must be divisible by the shard count "
            f"{shard[1]}. Received: batch_size={batch_size}, shard={tuple(shard)}"
        )
    return int(shard[0]), int(shard[1])


def check_aligned(source: Source, labels_source: Source | None) -> None:
    if labels_source is not None and len(labels_source) != len(source):
        raise ValueError(
            f"Data and labels hold different numbers of samples: {source.description} has "
            f"{len(source)}, {labels_source.description} has {len(labels_source)}. Pass labels "
            "with one row per sample."
        )


def select_sets(source: Source, set_nums: Sequence[Any] | None) -> list[SetInfo]:
    offsets = offsets_of(source.set_sizes)
    infos = {
        num: SetInfo(num, off, size)
        for num, off, size in zip(source.set_nums, offsets, source.set_sizes)
    }
    if set_nums is None:
        return list(infos.values())
    if isinstance(set_nums, (str, bytes)) or not isinstance(set_nums, Sequence) or not set_nums:
        raise TypeError(
            "`set_nums` must be a non-empty list of set numbers. "
            f"Received: set_nums={describe(set_nums)}"
        )
    by_value = {int(num): num for num in infos if num.isdigit()}
    chosen = []
    for num in set_nums:
        key = str(num) if str(num) in infos else by_value.get(int(num)) if is_int(num) else None
        if key is None:
            raise ValueError(
                f"`set_nums` names set {num!r}, which {source.description} does not have. "
                f"Available sets: {_preview(source.set_nums)}. "
                f"Received: set_nums={describe(list(set_nums))}"
            )
        chosen.append(infos[key])
    if len({info.set_num for info in chosen}) != len(chosen):
        raise ValueError(
            f"`set_nums` lists a set twice. Received: set_nums={describe(list(set_nums))}"
        )
    return chosen


def _preview(items: list[str], limit: int = 12) -> str:
    shown = ", ".join(repr(i) for i in items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")
