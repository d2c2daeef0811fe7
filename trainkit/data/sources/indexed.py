"""Sources over objects that read by index: a `keras.utils.PyDataset`, or any object with
`__len__` and `__getitem__(i)` (Grain's random-access protocol, a PyTorch map-style set).

* A **PyDataset** is read batch by batch: item `i` is batch `i`, served as set `str(i)`, so
  the generator shuffles, shards, splits and resumes its batches like any other sets.
  Batch sizes are read from the first and the last batch (Keras' convention: every batch
  but the last is full); a batch of another size is an error when it is read.
* Any other **random-access source** is read sample by sample: item `i` is sample `i`;
  sets are `batch_size`-sample ranges, as for an array.

An item is `x` or `(x, y)`; `x` and `y` may be arrays or a dict or tuple of arrays (the
model's inputs or outputs). Data and labels are read through one `IndexedItems`, which
keeps the last read, so reading a batch's data and then its labels calls `__getitem__`
once per item. Exact resume needs `__getitem__(i)` to return the same item for the same
`i` whatever was read before (no hidden random state).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from trainkit.data.sources.arrays import equal_sets
from trainkit.data.sources.base import Source, check_numeric, offsets_of
from trainkit.data.sources.structured import StructuredSource, map_members, member_items

# Objects with `__len__`/`__getitem__` that are not random-access sources of samples.
_NOT_SOURCES = ("pandas", "polars", "tensorflow")


def is_py_dataset(value: Any) -> bool:
    """A `keras.utils.PyDataset` (or subclass), recognised without importing Keras."""
    return any(
        cls.__name__ == "PyDataset" and cls.__module__.startswith("keras")
        for cls in type(value).__mro__
    )


def is_random_access(value: Any) -> bool:
    """An object read by index (`__len__` and `__getitem__`) that is not an array-like."""
    if isinstance(value, (str, bytes, list, tuple, dict, np.ndarray)):
        return False
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return False  # tensors and array-likes: converted with np.asarray instead
    module = type(value).__module__ or ""
    if module.startswith(_NOT_SOURCES):
        return False
    return callable(getattr(value, "__len__", None)) and callable(
        getattr(value, "__getitem__", None)
    )


def py_dataset_batch_size(py_dataset: Any, name: str) -> int:
    """The number of samples in batch 0 of a PyDataset (read once)."""
    if len(py_dataset) == 0:
        raise ValueError(f"`{name}` is an empty PyDataset (len 0): it holds no batches.")
    item = py_dataset[0]
    x = item[0] if isinstance(item, (tuple, list)) else item
    first = member_items(x)[0][1] if _is_structure(x) else x
    return _rows(np.asarray(first), f"`{name}` PyDataset {type(py_dataset).__name__}", 0)


class IndexedItems:
    """The items of a PyDataset (`batched=True`) or a random-access source, as rows.

    Args:
        items: the object read by index.
        batched: item `i` is a batch of samples (PyDataset), else one sample.
        set_size: rows per set when not batched.
        description: where the samples come from, for messages.

    Raises:
        ValueError, TypeError: no items, an item that is not `x` or `(x, y)`, samples of
            strings or objects (each message names the item).
    """

    def __init__(self, items: Any, *, batched: bool, set_size: int, description: str) -> None:
        self.items, self.batched, self.description = items, batched, description
        count = len(items)
        if count == 0:
            raise ValueError(f"{description} is empty (len 0): it holds no samples.")
        first = self._load(0)
        self.has_labels = len(first) == 2
        self.template = first  # structure, trailing shapes and dtypes of every item
        if batched:
            full = _rows(first[0], description, 0)
            last = full if count == 1 else _rows(self._load(count - 1)[0], description, count - 1)
            self.set_sizes = [full] * (count - 1) + [last]
        else:
            self.set_sizes = equal_sets(count, set_size)
        self.offsets = offsets_of(self.set_sizes)
        self._lock = threading.Lock()
        self._last: tuple[Any, Any] = (None, None)  # (key, rows) of the last read

    def __len__(self) -> int:
        return self.offsets[-1] + self.set_sizes[-1]

    def _load(self, index: int) -> tuple[Any, ...]:
        """Item `index` as `(x,)` or `(x, y)` of NumPy arrays, checked against item 0."""
        item = self.items[index]
        if isinstance(item, list):
            item = tuple(item)
        if isinstance(item, tuple) and len(item) == 3:
            raise ValueError(
                f"Item {index} of {self.description} is (x, y, sample_weight); trainkit "
                "reads x and y from it. Return (x, y) and have a preprocessor's process() "
                "return (x, y, sample_weight), or weigh classes with `class_weights=`."
            )
        if not isinstance(item, tuple) or len(item) not in (1, 2):
            item = (item,)
        parts = tuple(map_members(part, np.asarray) if _is_structure(part) else np.asarray(part)
                      for part in item)  # fmt: skip
        if hasattr(self, "template"):
            self._check_like_first(index, parts)
        else:
            for part in parts:
                for name, array in _leaves(part):
                    check_numeric(f"Item 0 of {self.description}{name}", array.dtype)
        return parts

    def _check_like_first(self, index: int, parts: tuple[Any, ...]) -> None:
        if len(parts) != len(self.template):
            raise ValueError(
                f"Item {index} of {self.description} has {len(parts)} part(s) and item 0 "
                f"{len(self.template)}: every item must be x, or every item (x, y)."
            )
        for part, first in zip(parts, self.template):
            got, want = _leaves(part), _leaves(first)
            if [n for n, _ in got] != [n for n, _ in want]:
                raise ValueError(
                    f"Item {index} of {self.description} holds members "
                    f"{[n for n, _ in got]}, item 0 {[n for n, _ in want]}: every item "
                    "needs the same structure."
                )
            for (name, array), (_, reference) in zip(got, want):
                skip = 1 if self.batched else 0
                if array.shape[skip:] != reference.shape[skip:] or array.dtype != reference.dtype:
                    raise ValueError(
                        f"Item {index} of {self.description}{name} holds shape "
                        f"{array.shape} {array.dtype}, item 0 {reference.shape} "
                        f"{reference.dtype}: every item needs the same sample shape and dtype."
                    )

    def read(self, start: int, stop: int) -> tuple[Any, ...]:
        """Rows `[start, stop)` as `(x,)` or `(x, y)`."""
        return self._cached(("read", start, stop), lambda: self._gather(np.arange(start, stop)))

    def take(self, indices: np.ndarray) -> tuple[Any, ...]:
        """Rows at `indices`, in the given order."""
        key = ("take", np.asarray(indices, np.int64).tobytes())
        return self._cached(key, lambda: self._gather(np.asarray(indices, np.int64)))

    def _cached(self, key: Any, compute: Any) -> tuple[Any, ...]:
        with self._lock:
            if self._last[0] == key:
                return self._last[1]
            rows = compute()
            self._last = (key, rows)
            return rows

    def _gather(self, indices: np.ndarray) -> tuple[Any, ...]:
        if len(indices) == 0:
            return _map_parts(self.template, lambda a: (a if self.batched else a[None])[:0])
        if not self.batched:
            loaded = [self._load(int(i)) for i in indices]
            return _stack(self.template, loaded, np.stack)
        sets = np.searchsorted(self.offsets, indices, side="right") - 1
        batches = {int(k): self._batch(int(k)) for k in np.unique(sets)}
        pieces, start = [], 0
        while start < len(indices):  # runs of consecutive rows of one batch: one slice each
            end = start + 1
            while (
                end < len(indices)
                and sets[end] == sets[start]
                and indices[end] == indices[end - 1] + 1
            ):
                end += 1
            first = int(indices[start] - self.offsets[sets[start]])
            rows = slice(first, first + end - start)
            pieces.append(_map_parts(batches[int(sets[start])], lambda a, r=rows: a[r]))
            start = end
        return _stack(self.template, pieces, np.concatenate)

    def _batch(self, index: int) -> tuple[Any, ...]:
        parts = self._load(index)
        for part in parts:
            for name, array in _leaves(part):
                if len(array) != self.set_sizes[index]:
                    raise ValueError(
                        f"Batch {index} of {self.description}{name} holds {len(array)} "
                        f"samples, but batch 0 holds {self.set_sizes[0]}: trainkit reads a "
                        "PyDataset's batch sizes from its first and last batch (every batch "
                        "but the last full, as Keras expects). Make every batch but the last "
                        "the same size."
                    )
        return parts

    def fingerprint(self) -> dict[str, Any]:
        return {
            "type": type(self.items).__name__,
            "batched": self.batched,
            "num_items": len(self.items),
            "set_sizes": [self.set_sizes[0], self.set_sizes[-1]],
        }

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_lock": None, "_last": (None, None)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _lock=threading.Lock())


class IndexedSource:
    """One array member of an `IndexedItems` (the data, the labels, or one input of them)."""

    def __init__(self, items: IndexedItems, part: int, member: str | None, role: str) -> None:
        self._items, self._part, self._member = items, part, member
        reference = _pick(items.template[part], member)
        self.set_sizes = list(items.set_sizes)
        self.set_nums = [str(k) for k in range(len(self.set_sizes))]
        skip = 1 if items.batched else 0
        self.sample_shape = tuple(int(d) for d in reference.shape[skip:])
        self.dtype = check_numeric(items.description, reference.dtype)
        where = "" if member is None else f" member {member!r}"
        self.description = f"{items.description} ({role}{where})"

    def __len__(self) -> int:
        return len(self._items)

    def read(self, start: int, stop: int) -> np.ndarray:
        return _pick(self._items.read(start, stop)[self._part], self._member)

    def take(self, indices: np.ndarray) -> np.ndarray:
        return _pick(self._items.take(indices)[self._part], self._member)

    def fingerprint(self) -> dict[str, Any]:
        return {
            **self._items.fingerprint(),
            "part": self._part,
            "member": self._member,
            "sample_shape": list(self.sample_shape),
            "dtype": self.dtype.str,
        }


def open_indexed(value: Any, role: str, set_size: int) -> tuple[Source, Source | None]:
    """The data source of a PyDataset or random-access `value`, and its labels (or None)."""
    batched = is_py_dataset(value)
    kind = "PyDataset" if batched else "random-access source"
    description = f"`{role}=` {kind} {type(value).__name__}"
    items = IndexedItems(value, batched=batched, set_size=set_size, description=description)
    roles = ("data", "labels")
    sources = [_part_source(items, part, roles[part]) for part in range(len(items.template))]
    return sources[0], (sources[1] if len(sources) == 2 else None)


def _part_source(items: IndexedItems, part: int, role: str) -> Source:
    template = items.template[part]
    if not _is_structure(template):
        return IndexedSource(items, part, None, role)
    names = [name for name, _ in member_items(template)]
    built = [IndexedSource(items, part, name, role) for name in names]
    if isinstance(template, dict):
        return StructuredSource(dict(zip(template, built)), role)
    return StructuredSource(tuple(built), role)


def _is_structure(value: Any) -> bool:
    return isinstance(value, (dict, tuple))


def _leaves(part: Any) -> list[tuple[str, np.ndarray]]:
    if _is_structure(part):
        return [(f" member {name!r}", value) for name, value in member_items(part)]
    return [("", part)]


def _pick(part: Any, member: str | None) -> np.ndarray:
    if member is None:
        return part
    return part[member] if isinstance(part, dict) else part[int(member)]


def _map_parts(parts: tuple[Any, ...], function: Any) -> tuple[Any, ...]:
    return tuple(map_members(p, function) if _is_structure(p) else function(p) for p in parts)


def _stack(template: tuple[Any, ...], loaded: list[tuple[Any, ...]], join: Any) -> tuple:
    """Items (or row pieces) joined along a new or the first axis, part by part."""
    joined = []
    for index, first in enumerate(template):
        if _is_structure(first):
            names = [name for name, _ in member_items(first)]
            arrays = {n: join([_pick(item[index], n) for item in loaded]) for n in names}
            joined.append(arrays if isinstance(first, dict) else tuple(arrays[n] for n in names))
        else:
            joined.append(join([item[index] for item in loaded]))
    return tuple(joined)


def _rows(x: Any, description: str, index: int) -> int:
    leaves = _leaves(x)
    sizes = {len(array) if array.ndim else 0 for _, array in leaves}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(
            f"Batch {index} of {description} is not a batch of samples: its arrays hold "
            f"{sorted(sizes)} rows (a PyDataset's item is a batch, shaped (batch, ...))."
        )
    return sizes.pop()
