"""The offline store that `write_store` writes: its file format, and serving it.

A store is a folder:

* `chunk-00000.bin`, `chunk-00001.bin`, ...: `chunk_size` stored batches each. A chunk
  file is `MAGIC`, the length of its header (8 bytes, little-endian), the header (JSON:
  the slice structure, the leaf dtypes, and per batch its name and per slice its
  `describe_slice()` and each leaf's offset and shape), zeros up to a multiple of 64
  bytes, then every leaf's C-ordered bytes, each at an offset that is a multiple of 64.
  Nothing in it depends on the time or on how many processes computed it.
* `manifest.json`: what the store was written from (source fingerprint, preprocessor
  configuration, epoch, `chunk_size`), counts, leaf shapes and dtypes, and each chunk's
  size and SHA-256. It is written last: a folder without it is an unfinished store.
* `progress.json`, while `write_store` runs: the inputs being written, so that running
  it again finishes the same store and refuses other inputs.

Serving: `StoreSource` has one "set" per chunk and one "row" per stored batch; reading a
row returns a `StoredBatch` (its slices), reading the chunk file whole when the row is in
another chunk than the last one read (one chunk in memory at a time).
`StorePreprocessor` serves a stored batch's slices one by one.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainkit.data.preprocessors.base import Preprocessor

FORMAT = "trainkit-offline-store"
FORMAT_VERSION = 1
MAGIC = b"TKSTORE\x01"
MANIFEST = "manifest.json"
PROGRESS = "progress.json"
ALIGN = 64

_INCOMPLETE = (
    "{folder!r} is an unfinished offline store: it has no manifest.json, which write_store "
    "writes last, so the writer was stopped before it finished. Run write_store(datagen, "
    "{folder!r}, chunk_size=...) again with the same generator: it finishes the store "
    "without recomputing the chunks already written."
)


def chunk_name(index: int) -> str:
    return f"chunk-{index:05d}.bin"


def is_store(path: Any) -> bool:
    """Whether `path` is a folder that `write_store` wrote (or began to write)."""
    if not isinstance(path, (str, os.PathLike)) or not os.path.isdir(path):
        return False
    return any(os.path.exists(os.path.join(path, name)) for name in (MANIFEST, PROGRESS))


def dumps(value: Any) -> bytes:
    """Canonical JSON bytes: the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


# ------------------------------------------------------------------ slice structure
def flatten(value: Any, leaves: list[np.ndarray]) -> Any:
    """The structure of `value` as JSON (leaves numbered in order), appending its arrays."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {"dict": [[str(key), flatten(item, leaves)] for key, item in value.items()]}
    if isinstance(value, (tuple, list)) and not _is_ragged(value):
        kind = "tuple" if isinstance(value, tuple) else "list"
        return {kind: [flatten(item, leaves) for item in value]}
    array = np.asarray(value)
    if array.dtype.kind not in "biufc":
        raise TypeError(
            "write_store stores numeric arrays, but a slice holds "
            f"{type(value).__name__} of dtype {array.dtype.str}: a list of arrays of "
            "different lengths cannot be stored. Make the slices dense first (e.g. with "
            f"PadPreprocessor). Received: a {type(value).__name__}"
        )
    leaves.append(np.ascontiguousarray(array))
    return {"leaf": len(leaves) - 1}


def _is_ragged(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], np.ndarray)


def unflatten(spec: Any, leaves: list[np.ndarray]) -> Any:
    """The value `flatten` described, built from `leaves`."""
    if spec is None:
        return None
    if "leaf" in spec:
        return leaves[spec["leaf"]]
    if "dict" in spec:
        return {key: unflatten(item, leaves) for key, item in spec["dict"]}
    items = [unflatten(item, leaves) for item in spec.get("tuple", spec.get("list"))]
    return tuple(items) if "tuple" in spec else items


def leaf_names(spec: Any, path: str = "") -> list[str]:
    """Readable names of the leaves of `spec`, in leaf order (`x.points`, `y`, ...)."""
    if spec is None:
        return []
    if "leaf" in spec:
        return [path]
    if "dict" in spec:
        items = [(key, item) for key, item in spec["dict"]]
    else:
        items = list(enumerate(spec.get("tuple", spec.get("list"))))
    names: list[str] = []
    for key, item in items:
        names += leaf_names(item, f"{path}.{key}" if path else str(key))
    return names


# ------------------------------------------------------------------ chunk files
def encode_chunk(index: int, batches: list[dict[str, Any]]) -> bytes:
    """The bytes of chunk `index`.

    Args:
        batches: per batch `{'set_name', 'pieces', 'slices': [(slice, description)]}`.

    Raises:
        ValueError: the slices do not all have the same structure and leaf dtypes.
    """
    layout: tuple[Any, list[str]] | None = None
    parts: list[bytes] = []
    size = 0
    header_batches = []
    for batch in batches:
        slices = []
        for number, (value, description) in enumerate(batch["slices"]):
            leaves: list[np.ndarray] = []
            spec = flatten(_named(value), leaves)
            dtypes = [leaf.dtype.str for leaf in leaves]
            if layout is None:
                layout = (spec, dtypes)
            elif layout != (spec, dtypes):
                raise ValueError(_changed_layout(batch["set_name"], number, layout, spec, dtypes))
            placed = []
            for leaf in leaves:
                data = leaf.tobytes()
                placed.append([size, list(leaf.shape)])
                padding = -len(data) % ALIGN
                parts += [data, b"\0" * padding]
                size += len(data) + padding
            slices.append({"description": description, "leaves": placed})
        header_batches.append(
            {"set_name": batch["set_name"], "pieces": batch["pieces"], "slices": slices}
        )
    assert layout is not None
    header = dumps(
        {"chunk": index, "structure": layout[0], "dtypes": layout[1], "batches": header_batches}
    )
    head = MAGIC + len(header).to_bytes(8, "little") + header
    head += b"\0" * (-len(head) % ALIGN)
    return head + b"".join(parts)


def _named(value: tuple[Any, ...]) -> dict[str, Any]:
    """A slice `(x, y[, sample_weight])` as a dict, so leaf names read `x.points`."""
    return dict(zip(("x", "y", "sample_weight"), value))


def _changed_layout(set_name: str, number: int, layout: Any, spec: Any, dtypes: Any) -> str:
    return (
        f"Slice {number} of batch {set_name!r} has another structure or dtypes than the "
        "slices before it, and a store holds slices of one structure. "
        f"Expected: leaves {leaf_names(layout[0])} of dtypes {layout[1]}. "
        f"Received: leaves {leaf_names(spec)} of dtypes {dtypes}"
    )


def read_header(data: bytes | memoryview, path: str) -> tuple[dict[str, Any], int]:
    """The header of a chunk's bytes and where its data begins."""
    if bytes(data[: len(MAGIC)]) != MAGIC:
        raise ValueError(f"{path!r} is not a chunk of a trainkit offline store (wrong magic).")
    length = int.from_bytes(data[len(MAGIC) : len(MAGIC) + 8], "little")
    start = len(MAGIC) + 8
    header = json.loads(bytes(data[start : start + length]))
    end = start + length
    return header, end + (-end % ALIGN)


def write_atomic(path: str, data: bytes) -> None:
    """Write `data` to a temporary name beside `path`, then rename it onto `path`."""
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp")
    try:
        with open(tmp, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# ------------------------------------------------------------------ serving
@dataclass
class StoredBatch:
    """One stored batch: its slices `(x, y[, sample_weight])` and their descriptions."""

    slices: list[tuple[Any, ...]]
    descriptions: list[dict[str, Any]]


class StoreSource:
    """An offline store as a source: one set per chunk, one row per stored batch.

    Args:
        folder: the store's folder.

    Raises:
        ValueError: the store is unfinished (no manifest) or its format is unknown.
    """

    def __init__(self, folder: str) -> None:
        self.folder = os.fspath(folder)
        path = os.path.join(self.folder, MANIFEST)
        if not os.path.exists(path):
            raise ValueError(_INCOMPLETE.format(folder=self.folder))
        with open(path, "rb") as file:
            raw = file.read()
        manifest = json.loads(raw)
        if manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"{path!r} is not a manifest this trainkit reads (format {FORMAT!r} version "
                f"{FORMAT_VERSION}). Received: format={manifest.get('format')!r}, "
                f"version={manifest.get('version')!r}"
            )
        self.manifest = manifest
        self.digest = hashlib.sha256(raw).hexdigest()
        self.set_nums = [str(k) for k in range(len(manifest["chunks"]))]
        self.set_sizes = [chunk["batches"] for chunk in manifest["chunks"]]
        self.sample_shape: tuple[int, ...] = ()
        self.dtype = np.dtype(object)
        self.description = f"offline store {self.folder!r}"
        self.batch_size: int = manifest["batch_size"]
        # Each stored batch's name and pieces, as the generator that wrote it had them.
        self.names = [
            (name, tuple((str(num), int(a), int(b)) for num, a, b in pieces))
            for name, pieces in manifest["names"]
        ]
        self._starts = np.cumsum([0, *self.set_sizes])
        self._lock = threading.Lock()
        self._chunk: tuple[int, dict[str, Any], memoryview, int] | None = None

    def __len__(self) -> int:
        return int(self._starts[-1])

    def read(self, start: int, stop: int) -> StoredBatch:
        """Stored batch `start` (a store is read one batch at a time: `stop == start + 1`)."""
        if stop != start + 1:
            raise ValueError(
                f"A store serves one stored batch at a time. Received: [{start}, {stop})"
            )
        chunk = int(np.searchsorted(self._starts, start, side="right")) - 1
        with self._lock:
            header, data, begin = self._load(chunk)
            batch = header["batches"][start - int(self._starts[chunk])]
            dtypes = [np.dtype(d) for d in header["dtypes"]]
            slices, descriptions = [], []
            for stored in batch["slices"]:
                leaves = [
                    _leaf(data, begin + offset, shape, dtype)
                    for (offset, shape), dtype in zip(stored["leaves"], dtypes)
                ]
                named = unflatten(header["structure"], leaves)
                slices.append(tuple(named.values()))
                descriptions.append(stored["description"])
        return StoredBatch(slices, descriptions)

    def take(self, indices: np.ndarray) -> StoredBatch:
        if len(indices) != 1:
            raise ValueError(f"A store serves one stored batch at a time. Received: {indices!r}")
        return self.read(int(indices[0]), int(indices[0]) + 1)

    def fingerprint(self) -> dict[str, Any]:
        return {"store": self.digest}

    def _load(self, chunk: int) -> tuple[dict[str, Any], memoryview, int]:
        if self._chunk is None or self._chunk[0] != chunk:
            self._chunk = None  # drop the last chunk before reading the next
            entry = self.manifest["chunks"][chunk]
            path = os.path.join(self.folder, entry["file"])
            data = bytearray(os.path.getsize(path))
            with open(path, "rb") as file:
                file.readinto(data)
            if len(data) != entry["size"]:
                raise ValueError(
                    f"{path!r} holds {len(data)} bytes, the manifest says {entry['size']}: the "
                    "store was changed after write_store finished. Write it again."
                )
            view = memoryview(data)
            header, begin = read_header(view, path)
            self._chunk = (chunk, header, view, begin)
        return self._chunk[1], self._chunk[2], self._chunk[3]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_lock"], state["_chunk"] = None, None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


def _leaf(data: memoryview, offset: int, shape: list[int], dtype: np.dtype) -> np.ndarray:
    count = int(np.prod(shape, dtype=np.int64))
    # A copy, so that the chunk is freed when the next one is read.
    return np.frombuffer(data, dtype, count, offset).reshape(shape).copy()


class StorePreprocessor(Preprocessor):
    """Serves the slices of stored batches as they were stored (internal, final).

    Args:
        slices_per_batch: the slice count of every stored batch when they all have the
            same, else None (read-only views then cannot tell their length).
    """

    def __init__(self, slices_per_batch: int | None) -> None:
        super().__init__()
        self._count = slices_per_batch
        self._description: dict[str, Any] = {}

    def on_batch_load(self, batch: StoredBatch, labels: Any) -> None:
        self.slices_per_batch = len(batch.slices)

    def process(self, batch: StoredBatch, labels: Any) -> tuple[Any, ...]:
        self._description = batch.descriptions[self.slice_idx]
        return batch.slices[self.slice_idx]

    def describe_slice(self) -> dict[str, Any]:
        return dict(self._description)

    def count_slices(self, sample_shape: tuple[int, ...]) -> int | None:
        return self._count

    def get_config(self) -> dict[str, Any]:
        return {"class": "StorePreprocessor"}


# Arguments a DataGenerator serving a store refuses, with the value that means "not given".
_NOT_WITH_A_STORE = {
    "labels_path": None, "data": None, "labels": None, "preprocessor": None,
    "superbatch": False, "drop_remainder": False, "shuffle_group_batches": False,
    "shuffle_group_samples": False, "loader": None, "labels_loader": None, "shard": None,
    "data_key": None, "labels_key": None,
}  # fmt: skip


def check_store_arguments(folder: str, shuffle: str | None, **received: Any) -> None:
    """ValueError naming the arguments that do not apply to serving the store `folder`.

    A store holds finished slices: the preprocessor, labels and batching were applied
    when it was written, and `shuffle='samples'` would have to split stored batches.
    """
    given = [name for name, value in received.items() if value is not _NOT_WITH_A_STORE[name]]
    if given:
        raise ValueError(
            f"data_path={folder!r} is an offline store: it holds finished slices (labels, "
            "sample weights and the preprocessor's work included), served as they were "
            f"written, so {', '.join(f'`{name}`' for name in given)} cannot be passed with "
            "it. Pass them to the DataGenerator given to write_store instead. Received: "
            + ", ".join(f"{name}={type(received[name]).__name__}" for name in given)
        )
    if shuffle == "samples":
        raise ValueError(
            f"data_path={folder!r} is an offline store, whose batches are stored whole: "
            "shuffle=True (or 'sets') shuffles the chunk order and the batch order inside "
            "each chunk every epoch; a new sample permutation would need the store to be "
            "written again. Received: shuffle='samples'"
        )
