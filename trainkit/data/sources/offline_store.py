"""The offline store that `write_store` writes: its file format, checking it, and serving it.

A store is a folder (format version 2, described in full in docs/store.md):

* `chunk-00000.bin`, `chunk-00001.bin`, ...: `chunk_size` stored batches each. A chunk
  file is `MAGIC` (8 bytes, its last byte the format version), the length of its header
  (8 bytes, little-endian), the SHA-256 of every byte after these first 48 (32 bytes), the
  header (canonical JSON: the chunk's own index, the SHA-256 of the store's inputs, the
  slice structure, the leaf dtypes, and per batch its name and per slice its
  `describe_slice()` and each leaf's offset and shape), zeros up to a multiple of 64
  bytes, then every leaf's C-ordered bytes, each at an offset that is a multiple of 64.
  A chunk vouches for itself: its digest, index and inputs are checked before a writer
  reuses it. Nothing in it depends on the time or on how many processes computed it.
* `manifest.json`: what the store was written from (source fingerprint, content
  fingerprint, preprocessor configuration, epoch, `chunk_size`), counts, leaf shapes and
  dtypes, each chunk's size and SHA-256, and its own SHA-256 (`manifest_sha256`, of the
  canonical JSON of every other field). It is written last: a folder without it is an
  unfinished store.
* `progress.json`, while `write_store` runs: the inputs being written, so that running
  it again finishes the same store and refuses other inputs.

Checking (`StoreSource`): at construction the manifest is read, validated (types, counts,
chunk names) and checked against its own digest, and every chunk's presence, kind
(a regular file, never a link) and size are checked; when a chunk is first read its
SHA-256 is compared with the manifest's and its header's index and inputs with the
chunk's place and the store's. Any damage raises `StoreDamagedError` naming the file;
nothing damaged is served.

Serving: `StoreSource` has one "set" per chunk and one "row" per stored batch; reading a
row returns a `StoredBatch` (its slices), reading the chunk file whole when the row is in
another chunk than the last one read (one chunk in memory at a time).
`StorePreprocessor` serves a stored batch's slices one by one, each through the read-time
preprocessor when one was given (drawn from the slice's rng key; it must not slice), and
`keys=` serves a subset of a stored dict x's members (the others are never decoded).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainkit._validation import closest, describe
from trainkit.checkpoints.atomic import atomic_file
from trainkit.checkpoints.checkpoint_dirs import CheckpointWriteError
from trainkit.data.preprocessors.base import (
    Preprocessor,
    check_initialized,
    serve_slice,
    start_batch,
)
from trainkit.data.sources.formats import unreadable

FORMAT = "trainkit-offline-store"
FORMAT_VERSION = 2
MAGIC = b"TKSTORE\x02"
_OLD_MAGIC = b"TKSTORE\x01"  # format 1: no digest or inputs inside the chunk
MANIFEST = "manifest.json"
PROGRESS = "progress.json"
ALIGN = 64
PREFIX = len(MAGIC) + 8 + 32  # magic, header length, SHA-256 of the rest of the file
CHUNK_FILE = re.compile(r"^chunk-(\d{5,})\.bin$")
# Temporary files of a store's own writes: atomic_file's `.{name}.XXXXXXXX.tmp`, and
# format 1's `.{name}.tmp`.
TEMPORARY = re.compile(r"^\.(chunk-\d{5,}\.bin|manifest\.json|progress\.json)(\.[^/]*)?\.tmp$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

_INCOMPLETE = (
    "{folder!r} is an unfinished offline store: it has no manifest.json, which write_store "
    "writes last, so the writer was stopped before it finished. Run write_store(datagen, "
    "{folder!r}, chunk_size=...) again with the same generator: it finishes the store "
    "without recomputing the chunks already written (each is checked first)."
)
_NO_MANIFEST = (
    "{folder!r} holds chunk files of an offline store but neither manifest.json nor "
    "progress.json: its manifest was deleted (or the writer's progress file). Run "
    "write_store(datagen, {folder!r}, chunk_size=...) again with the generator that wrote "
    "it: each chunk is checked against that generator's inputs before it is reused, and "
    "the manifest is written again."
)
_OLD_FORMAT = (
    "{path!r} belongs to an offline store of format version 1, written by an earlier "
    "trainkit. This trainkit reads version {version}, whose chunks and manifest carry their "
    "own SHA-256 so that damage is found before anything is served; version 1 stores are "
    "not read. Write the store again with write_store (into a new folder, or delete this "
    "one first). Received: version=1"
)
_FIX_FOREIGN = (
    "A folder holding manifest.json is read as an offline store: if this is a folder of "
    "set files, move manifest.json out of it; if it is a store, its manifest was damaged: "
    "write the store again."
)
_FIX_DAMAGED = (
    "Nothing damaged was served. Write the store again with write_store (into a new "
    "folder, or delete this one first), or restore the folder from a copy."
)


class StoreDamagedError(ValueError):
    """A file of an offline store is missing, damaged or foreign; nothing of it was served.

    Attributes:
        folder: the store's folder.
        path: the damaged file.
        problem: what is wrong with it, one sentence.
    """

    def __init__(self, folder: str, path: str, problem: str, fix: str | None = None) -> None:
        self.folder, self.path, self.problem, self.fix = folder, path, problem, fix
        super().__init__(
            f"Offline store {folder!r} is damaged: {path!r} {problem}. {fix or _FIX_DAMAGED}"
        )

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across processes
        return type(self), (self.folder, self.path, self.problem, self.fix)


class StoreWriteError(OSError):
    """`write_store` could not write a file; nothing partial was left."""


def chunk_name(index: int) -> str:
    return f"chunk-{index:05d}.bin"


def is_store(path: Any) -> bool:
    """Whether `path` is a folder that `write_store` wrote (or began to write).

    A folder holding `manifest.json`, `progress.json`, or chunk files (a store whose
    manifest was deleted: recognised, so that it is refused as such).
    """
    if not isinstance(path, (str, os.PathLike)):
        return False
    folder = os.fspath(path)
    if not isinstance(folder, str) or not os.path.isdir(folder):
        return False
    if any(os.path.lexists(os.path.join(folder, name)) for name in (MANIFEST, PROGRESS)):
        return True
    try:
        with os.scandir(folder) as entries:
            return any(CHUNK_FILE.match(entry.name) for entry in entries)
    except OSError:
        return False


def dumps(value: Any) -> bytes:
    """Canonical JSON bytes: the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def inputs_digest(inputs: Any) -> str:
    """The SHA-256 of a store's inputs, recorded in each of its chunks."""
    return hashlib.sha256(dumps(inputs)).hexdigest()


def write_atomic(path: str, data: bytes) -> None:
    """Replace `path` with `data`: a fresh temporary file beside it, fsynced, then renamed.

    The run folders' safe write (`trainkit.checkpoints.atomic.atomic_file`): the temporary
    file is created exclusively under a random name, so an existing file or a planted
    symlink is never written through, and a link at `path` is replaced, its target left
    alone.

    Raises:
        StoreWriteError: the write failed; `path` is as it was, no temporary file is left.
    """
    try:
        with atomic_file(path, "wb", durable=True) as file:
            file.write(data)
    except CheckpointWriteError as error:
        cause = error.__cause__ if error.__cause__ is not None else error
        raise StoreWriteError(
            f"Could not write {path!r}: {cause}. Nothing partial was left, and the chunks "
            "already written are kept; free disk space, raise the file-size limit (ulimit "
            "-f) or fix the folder's permissions, then run write_store again: it finishes "
            "the store."
        ) from error


def read_file(folder: str, path: str, fix: str | None = None) -> tuple[bytearray, os.stat_result]:
    """The bytes of the regular file `path` of a store, never through a symlink.

    `fix`: what a `StoreDamagedError` says to do (default: write the store again).

    Raises:
        StoreDamagedError: the file is missing, a symlink, not a regular file, or shrank
            while it was read.
        PermissionError: it cannot be read for lack of permission.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        raise StoreDamagedError(folder, path, "is missing", fix) from None
    except OSError as error:
        if error.errno == errno.ELOOP or os.path.islink(path):
            raise StoreDamagedError(
                folder,
                path,
                "is a symbolic link; a store's files are regular files inside its folder, "
                "never read through links (a link may point at another chunk or store)",
                fix,
            ) from None
        if isinstance(error, PermissionError):
            raise unreadable(path) from error
        raise StoreDamagedError(folder, path, f"cannot be read ({error})", fix) from error
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise StoreDamagedError(folder, path, "is not a regular file", fix)
        data = bytearray(info.st_size)
        view, done = memoryview(data), 0
        while done < len(data):
            got = os.readv(descriptor, [view[done:]])
            if got == 0:
                raise StoreDamagedError(
                    folder, path, f"shrank while it was read (to {done} of {len(data)} bytes)", fix
                )
            done += got
        return data, info
    finally:
        os.close(descriptor)


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
    try:
        array = np.asarray(value)
    except ValueError as error:  # NumPy: "inhomogeneous shape" of a ragged list
        raise TypeError(_RAGGED.format(kind=type(value).__name__)) from error
    if array.dtype.kind not in "biufc":
        raise TypeError(
            "write_store stores numeric arrays, but a slice holds "
            f"{type(value).__name__} of dtype {array.dtype.str}: a list of arrays of "
            "different lengths cannot be stored. Make the slices dense first (e.g. with "
            f"PadPreprocessor). Received: a {type(value).__name__}"
        )
    leaves.append(np.ascontiguousarray(array))
    return {"leaf": len(leaves) - 1}


_RAGGED = (
    "write_store stores numeric arrays, but a slice holds a {kind} of arrays of different "
    "shapes: ragged samples cannot be stored. Make the slices dense first, e.g. "
    "with PadPreprocessor (it pads to one length and returns the padding mask as "
    "sample_weight), or return a tuple of arrays. Received: a ragged {kind}"
)


def _is_ragged(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], np.ndarray)


def unflatten(spec: Any, leaves: list[np.ndarray | None]) -> Any:
    """The value `flatten` described, built from `leaves` (a None leaf stays None)."""
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
def encode_chunk(index: int, batches: list[dict[str, Any]], inputs: str) -> bytes:
    """The bytes of chunk `index` of the store whose inputs digest to `inputs`.

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
        {
            "chunk": index,
            "inputs": inputs,
            "structure": layout[0],
            "dtypes": layout[1],
            "batches": header_batches,
        }
    )
    body = header + b"\0" * (-(PREFIX + len(header)) % ALIGN) + b"".join(parts)
    digest = hashlib.sha256(body).digest()
    return MAGIC + len(header).to_bytes(8, "little") + digest + body


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


def decode_chunk(
    data: bytes | bytearray | memoryview,
    folder: str,
    path: str,
    *,
    index: int,
    inputs: str,
    check_digest: bool = True,
    fix: str | None = None,
) -> tuple[dict[str, Any], int]:
    """The header of chunk `index`'s bytes and where its data begins, checked.

    Checks the magic, the SHA-256 recorded in the chunk (unless `check_digest` is False:
    the caller compared the whole file with the manifest's digest), the header's JSON and
    types, that it is chunk `index` of the store whose inputs digest to `inputs`, and that
    every leaf lies inside the file.

    Raises:
        StoreDamagedError: naming `path` and what is wrong (`fix` says what to do).
    """

    def damaged(problem: str) -> StoreDamagedError:
        return StoreDamagedError(folder, path, problem, fix)

    view = memoryview(data)
    if len(view) < PREFIX:
        raise damaged(f"holds {len(view)} bytes, too few for a chunk (truncated)")
    magic = bytes(view[: len(MAGIC)])
    if magic == _OLD_MAGIC:
        raise damaged(
            "is a chunk of store format version 1, written by an earlier trainkit; this "
            f"trainkit reads version {FORMAT_VERSION}"
        )
    if magic != MAGIC:
        raise damaged(f"does not begin with the chunk magic {MAGIC!r}: it is not a chunk")
    if check_digest and hashlib.sha256(view[PREFIX:]).digest() != bytes(
        view[len(MAGIC) + 8 : PREFIX]
    ):
        raise damaged(
            "does not match the SHA-256 recorded in it: its bytes changed after it was "
            "written (a flipped bit, a truncation or an edit)"
        )
    length = int.from_bytes(view[len(MAGIC) : len(MAGIC) + 8], "little")
    end = PREFIX + length
    if end > len(view):
        raise damaged(f"records a header of {length} bytes, beyond the end of the file")
    try:
        header = json.loads(bytes(view[PREFIX:end]))
    except (ValueError, UnicodeDecodeError) as error:
        raise damaged(f"holds a header that is not valid JSON ({error})") from None
    begin = end + (-end % ALIGN)
    problem = _header_problem(header, len(view) - begin)
    if problem is not None:
        raise damaged(f"holds a header that {problem}")
    if header["chunk"] != index:
        raise damaged(
            f"holds chunk {header['chunk']} of its store, not chunk {index}: chunk files "
            "were renamed, swapped or copied over one another"
        )
    if header["inputs"] != inputs:
        raise damaged(
            "is a chunk of another store (written from other inputs), copied or linked in"
        )
    return header, begin


def _header_problem(header: Any, data_size: int) -> str | None:
    """What is wrong with a chunk header's shape and types, or None."""
    if not isinstance(header, dict):
        return "is not a JSON object"
    for key, kind in (("chunk", int), ("inputs", str), ("dtypes", list), ("batches", list)):
        if not isinstance(header.get(key), kind) or isinstance(header.get(key), bool):
            return f"has no {key!r} of type {kind.__name__}"
    try:
        dtypes = [np.dtype(d) for d in header["dtypes"]]
    except (TypeError, ValueError):
        return f"has dtypes {header['dtypes']!r} that NumPy does not read"
    count = _spec_problem(header.get("structure"), len(dtypes))
    if isinstance(count, str):
        return count
    for batch in header["batches"]:
        if not isinstance(batch, dict) or not isinstance(batch.get("slices"), list):
            return "has a batch without a list of slices"
        for stored in batch["slices"]:
            leaves = stored.get("leaves") if isinstance(stored, dict) else None
            if not isinstance(leaves, list) or len(leaves) != len(dtypes):
                return "has a slice whose leaves do not match its dtypes"
            for leaf, dtype in zip(leaves, dtypes):
                if not (isinstance(leaf, list) and len(leaf) == 2 and _is_count(leaf[0])):
                    return f"has a leaf place {leaf!r} that is not [offset, shape]"
                shape = leaf[1]
                if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
                    return f"has a leaf shape {shape!r} that is not a list of sizes"
                nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                if leaf[0] + nbytes > data_size:
                    return "places a leaf beyond the end of the file (truncated)"
    return None


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _spec_problem(spec: Any, leaves: int, top: bool = True) -> int | str:
    """The number of leaves `spec` describes (each `{'leaf': k}` once, k < `leaves`), or a
    problem. The top level is the slice: a dict of `x`, `y` and maybe `sample_weight`."""
    seen: list[int] = []

    def walk(node: Any) -> str | None:
        if node is None:
            return None
        if not isinstance(node, dict) or len(node) != 1:
            return f"has a structure node {node!r} that is not one of leaf/dict/tuple/list"
        kind, value = next(iter(node.items()))
        if kind == "leaf":
            if not _is_count(value) or value >= leaves or value != len(seen):
                return f"numbers a leaf {value!r} out of order"
            seen.append(value)
            return None
        if kind == "dict":
            if not isinstance(value, list):
                return "has a dict node that is not a list of [key, value]"
            for item in value:
                if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
                    return "has a dict node that is not a list of [key, value]"
                problem = walk(item[1])
                if problem:
                    return problem
            return None
        if kind in ("tuple", "list") and isinstance(value, list):
            for item in value:
                problem = walk(item)
                if problem:
                    return problem
            return None
        return f"has a structure node of kind {kind!r}"

    if top:
        keys = [item[0] for item in spec["dict"]] if _is_slice_spec(spec) else None
        if keys not in (["x", "y"], ["x", "y", "sample_weight"]):
            return "has a structure that is not a slice (x, y[, sample_weight])"
    problem = walk(spec)
    if problem:
        return problem
    if len(seen) != leaves:
        return f"describes {len(seen)} leaves for {leaves} dtypes"
    return len(seen)


def _is_slice_spec(spec: Any) -> bool:
    return (
        isinstance(spec, dict)
        and isinstance(spec.get("dict"), list)
        and all(isinstance(item, list) and len(item) == 2 for item in spec["dict"])
    )


# ------------------------------------------------------------------ the manifest
def check_format(saved: Any, path: str, fix: str) -> None:
    """ValueError unless `saved` (a parsed manifest.json or progress.json) is of this format.

    Args:
        fix: what to do when the file is not a store's at all.
    """
    what = os.path.basename(path)
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        if not isinstance(saved, dict):
            found = f"a JSON {type(saved).__name__}"
        elif "format" not in saved:
            found = "a JSON object without a 'format' field"
        else:
            found = f"format {saved['format']!r}"
        raise ValueError(
            f"{path!r} is not the {what} of a trainkit offline store: it holds {found}, not "
            f"format {FORMAT!r}. {fix} Received: {what} holding {found}"
        )
    version = saved.get("version")
    if version == 1:
        raise ValueError(_OLD_FORMAT.format(path=path, version=FORMAT_VERSION))
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{path!r} records store format version {version!r}; this trainkit reads version "
            f"{FORMAT_VERSION}. A newer trainkit wrote it (read it with that one), or the file "
            f"is damaged (write the store again). Received: version={version!r}"
        )


def read_manifest(folder: str, fix: str | None = None) -> tuple[dict[str, Any], bytes]:
    """The manifest of the store `folder`, validated, and its bytes.

    Args:
        fix: what to do when `manifest.json` is not a store's at all (a default for
            a folder read by DataGenerator).

    Raises:
        StoreDamagedError: it is a link, not JSON, lacks a field or holds one of the wrong
            type, names a file that is not the chunk expected, has counts that do not add
            up, or does not match its own SHA-256.
        ValueError: it is not a store manifest, or of another format version.
    """
    path = os.path.join(folder, MANIFEST)
    data, _ = read_file(folder, path)
    raw = bytes(data)
    try:
        manifest = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise StoreDamagedError(
            folder, path, f"is not valid JSON ({error}): it was truncated or damaged"
        ) from None
    check_format(manifest, path, fix or _FIX_FOREIGN)
    problem = manifest_problem(manifest)
    if problem is not None:
        raise StoreDamagedError(folder, path, problem)
    body = {key: value for key, value in manifest.items() if key != "manifest_sha256"}
    if (
        hashlib.sha256(dumps(body)).hexdigest() != manifest["manifest_sha256"]
        or dumps(manifest) != raw
    ):
        raise StoreDamagedError(
            folder,
            path,
            "does not match the SHA-256 recorded in it (manifest_sha256): it was edited or "
            "damaged after write_store wrote it",
        )
    return manifest, raw


def _is_hex64(value: Any) -> bool:
    return isinstance(value, str) and bool(_HEX64.match(value))


def _is_int(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _field(
    mapping: dict[str, Any], key: str, expected: str, ok: Any, where: str = ""
) -> str | None:
    if key not in mapping:
        return f"has no field {where}{key!r} (it is incomplete)"
    value = mapping[key]
    if not ok(value):
        return f"holds {where}{key}={_shown(value)} (a {_json_kind(value)}); expected {expected}"
    return None


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _json_kind(value: Any) -> str:
    kinds = {bool: "boolean", int: "number", float: "number", str: "string", list: "list"}
    return "JSON " + kinds.get(type(value), "object" if isinstance(value, dict) else "null")


def manifest_problem(manifest: dict[str, Any]) -> str | None:
    """What is wrong with a parsed manifest's fields, types and counts, or None."""
    checks = [
        ("inputs", "an object", lambda v: isinstance(v, dict)),
        ("batch_size", "an integer >= 1", lambda v: _is_int(v, 1)),
        ("leaves", "a list", lambda v: isinstance(v, list)),
        ("batches", "an integer >= 1", lambda v: _is_int(v, 1)),
        ("slices", "an integer >= 1", lambda v: _is_int(v, 1)),
        ("slices_per_batch", "null or an integer >= 1", lambda v: v is None or _is_int(v, 1)),
        ("chunks", "a non-empty list", lambda v: isinstance(v, list) and bool(v)),
        ("names", "a list", lambda v: isinstance(v, list)),
        ("manifest_sha256", "64 hex digits", _is_hex64),
        ("structure", "an object", lambda v: isinstance(v, dict)),
    ]  # fmt: skip
    for key, expected, ok in checks:
        problem = _field(manifest, key, expected, ok)
        if problem is not None:
            return problem
    for number, leaf in enumerate(manifest["leaves"]):
        if not (
            isinstance(leaf, dict)
            and isinstance(leaf.get("name"), str)
            and isinstance(leaf.get("dtype"), str)
            and isinstance(leaf.get("shape"), list)
            and all(d is None or _is_int(d, 0) for d in leaf["shape"])
        ):
            return f"holds leaves[{number}]={_shown(leaf)}; expected a name, dtype and shape"
        try:
            kind = np.dtype(leaf["dtype"]).kind
        except (TypeError, ValueError):
            kind = None
        if kind is None or kind not in "biufc":
            return f"holds leaves[{number}].dtype={leaf['dtype']!r}, not a numeric NumPy dtype"
    counted = _spec_problem(manifest["structure"], len(manifest["leaves"]))
    if isinstance(counted, str):
        return f"holds a structure that {counted.removeprefix('has a structure that ')}"
    for index, entry in enumerate(manifest["chunks"]):
        where = f"chunks[{index}]"
        if not isinstance(entry, dict):
            return f"holds {where}={_shown(entry)}; expected an object"
        if entry.get("file") != chunk_name(index):
            return (
                f"names {_shown(entry.get('file'))} as chunk {index}; a store's chunk "
                f"{index} is {chunk_name(index)!r} inside its folder (a manifest never names "
                "files elsewhere)"
            )
        for key, expected, ok in (
            ("size", f"a byte count >= {PREFIX}", lambda v: _is_int(v, PREFIX)),
            ("batches", "an integer >= 1", lambda v: _is_int(v, 1)),
            ("slices", "an integer >= 1", lambda v: _is_int(v, 1)),
            ("sha256", "64 hex digits", _is_hex64),
        ):
            problem = _field(entry, key, expected, ok, where=f"{where}.")
            if problem is not None:
                return problem
    chunks = manifest["chunks"]
    if sum(entry["batches"] for entry in chunks) != manifest["batches"]:
        return "counts batches that do not add up over its chunks"
    if sum(entry["slices"] for entry in chunks) != manifest["slices"]:
        return "counts slices that do not add up over its chunks"
    if len(manifest["names"]) != manifest["batches"]:
        return f"names {len(manifest['names'])} batches, but counts {manifest['batches']}"
    for number, item in enumerate(manifest["names"]):
        if not (
            isinstance(item, list)
            and len(item) == 2
            and isinstance(item[0], str)
            and isinstance(item[1], list)
            and item[1]
            and all(
                isinstance(p, list)
                and len(p) == 3
                and isinstance(p[0], str)
                and _is_int(p[1], 0)
                and _is_int(p[2], 0)
                for p in item[1]
            )
        ):
            return f"holds names[{number}]={_shown(item)}; expected [name, pieces]"
    return None


# ------------------------------------------------------------------ serving
@dataclass
class StoredBatch:
    """One stored batch: its slices `(x, y[, sample_weight])` and their descriptions."""

    slices: list[tuple[Any, ...]]
    descriptions: list[dict[str, Any]]


class StoreSource:
    """An offline store as a source: one set per chunk, one row per stored batch.

    Checked as a checkpoint is: at construction the manifest (see `read_manifest`) and
    every chunk's presence, kind and size; when a chunk is first read, its SHA-256 against
    the manifest's and its own index and inputs against its place in this store. A chunk
    is verified again when read later only if its file changed since (another inode,
    size or modification time).

    Args:
        folder: the store's folder.
        keys: the members of a structured (dict) `x` to serve, in this order; None serves
            every member. The other members' bytes are checked with their chunk but never
            decoded.

    Raises:
        ValueError: the store is unfinished (no manifest) or of another format, or `keys`
            names a member the store does not hold (the message lists the stored ones).
        StoreDamagedError: (a ValueError) the manifest or a chunk is damaged, missing,
            foreign or a link; the message names the file.
    """

    def __init__(self, folder: str, keys: Any = None) -> None:
        self.folder = os.fspath(folder)
        if not os.path.lexists(os.path.join(self.folder, MANIFEST)):
            if os.path.lexists(os.path.join(self.folder, PROGRESS)):
                raise ValueError(_INCOMPLETE.format(folder=self.folder))
            raise ValueError(_NO_MANIFEST.format(folder=self.folder))
        manifest, raw = read_manifest(self.folder)
        self.manifest = manifest
        self.digest = hashlib.sha256(raw).hexdigest()
        self._inputs = inputs_digest(manifest["inputs"])
        for entry in manifest["chunks"]:
            _check_present(self.folder, entry)
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
        self.keys = check_member_keys(self.folder, manifest["structure"], keys)
        self._decoded = _decoded_leaves(manifest["structure"], self.keys)
        self._lock = threading.Lock()
        self._chunk: tuple[int, dict[str, Any], memoryview, int] | None = None
        # chunk -> (device, inode, size, mtime) of the file when its digest was checked
        self._verified: dict[int, tuple[int, int, int, int]] = {}

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
                    _leaf(data, begin + offset, shape, dtype) if decoded else None
                    for (offset, shape), dtype, decoded in zip(
                        stored["leaves"], dtypes, self._decoded
                    )
                ]
                named = unflatten(header["structure"], leaves)
                if self.keys is not None:
                    named["x"] = {key: named["x"][key] for key in self.keys}
                slices.append(tuple(named.values()))
                descriptions.append(stored["description"])
        return StoredBatch(slices, descriptions)

    def take(self, indices: np.ndarray) -> StoredBatch:
        if len(indices) != 1:
            raise ValueError(f"A store serves one stored batch at a time. Received: {indices!r}")
        return self.read(int(indices[0]), int(indices[0]) + 1)

    def fingerprint(self) -> dict[str, Any]:
        if self.keys is None:
            return {"store": self.digest}
        return {"store": self.digest, "keys": list(self.keys)}

    def _load(self, chunk: int) -> tuple[dict[str, Any], memoryview, int]:
        if self._chunk is None or self._chunk[0] != chunk:
            self._chunk = None  # drop the last chunk before reading the next
            entry = self.manifest["chunks"][chunk]
            path = os.path.join(self.folder, entry["file"])
            data, info = read_file(self.folder, path)
            if len(data) != entry["size"]:
                raise StoreDamagedError(self.folder, path, _size_problem(len(data), entry))
            identity = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
            verify = self._verified.get(chunk) != identity
            if verify and hashlib.sha256(data).hexdigest() != entry["sha256"]:
                # Name what is wrong when the chunk can tell (swapped, foreign, flipped).
                decode_chunk(data, self.folder, path, index=chunk, inputs=self._inputs)
                raise StoreDamagedError(
                    self.folder,
                    path,
                    "does not match the SHA-256 the manifest records for it: it was replaced "
                    "or changed after write_store finished",
                )
            header, begin = decode_chunk(
                data, self.folder, path, index=chunk, inputs=self._inputs, check_digest=False
            )
            if verify:
                self._check_matches_manifest(header, entry, path)
                self._verified[chunk] = identity
            self._chunk = (chunk, header, memoryview(data), begin)
        return self._chunk[1], self._chunk[2], self._chunk[3]

    def _check_matches_manifest(
        self, header: dict[str, Any], entry: dict[str, Any], path: str
    ) -> None:
        manifest = self.manifest
        dtypes = [leaf["dtype"] for leaf in manifest["leaves"]]
        slices = sum(len(batch["slices"]) for batch in header["batches"])
        if (
            header["structure"] != manifest["structure"]
            or header["dtypes"] != dtypes
            or len(header["batches"]) != entry["batches"]
            or slices != entry["slices"]
        ):
            raise StoreDamagedError(
                self.folder,
                path,
                "holds another structure, dtypes or count of batches and slices than the "
                "manifest records",
            )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_lock"], state["_chunk"] = None, None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


def _x_members(structure: dict[str, Any]) -> list[tuple[str, Any]] | None:
    """`(name, spec)` of each member of the stored `x` when it is a dict, else None."""
    x_spec = dict((key, item) for key, item in structure["dict"]).get("x")
    if not isinstance(x_spec, dict) or "dict" not in x_spec:
        return None
    return [(str(key), item) for key, item in x_spec["dict"]]


def check_member_keys(folder: str, structure: dict[str, Any], keys: Any) -> list[str] | None:
    """`keys` as a list of member names of the stored dict `x`, or None (every member).

    Raises:
        TypeError: `keys` is not a list or tuple of strings.
        ValueError: `x` is not a dict, `keys` is empty or repeats a name, or names a
            member the store does not hold (the message lists the stored ones).
    """
    if keys is None:
        return None
    if not isinstance(keys, (list, tuple)) or not all(isinstance(k, str) for k in keys):
        raise TypeError(
            "`keys` must be a list of the names of the stored x's members to serve, e.g. "
            f"keys=['tokens']. Received: keys={describe(keys)}"
        )
    members = _x_members(structure)
    if members is None:
        raise ValueError(
            f"keys= selects members of a store whose x is a dict, but the x of offline store "
            f"{folder!r} is not a dict: serve it without `keys`, or write the store from a "
            f"generator whose x is a dict. Received: keys={list(keys)!r}"
        )
    stored = [name for name, _ in members]
    unknown = [key for key in keys if key not in stored]
    if unknown:
        hint = closest(unknown[0], stored)
        suggestion = f" Did you mean {hint!r}?" if hint else ""
        raise ValueError(
            f"keys= names {unknown!r}, which offline store {folder!r} does not hold: its x "
            f"holds the members {stored!r}.{suggestion} Received: keys={list(keys)!r}"
        )
    if not keys or len(set(keys)) != len(keys):
        raise ValueError(
            "keys= must name at least one stored member of x, each once (the store's x "
            f"holds {stored!r}). Received: keys={list(keys)!r}"
        )
    return list(keys)


def _decoded_leaves(structure: dict[str, Any], keys: list[str] | None) -> list[bool]:
    """Per leaf (in leaf order), whether reading a slice decodes it."""
    count = len(leaf_names(structure))
    if keys is None:
        return [True] * count
    skipped: list[int] = []
    for name, spec in _x_members(structure) or []:
        if name not in keys:
            skipped += _leaf_numbers(spec)
    return [number not in skipped for number in range(count)]


def _leaf_numbers(spec: Any) -> list[int]:
    if spec is None:
        return []
    if "leaf" in spec:
        return [spec["leaf"]]
    items = (
        [item for _, item in spec["dict"]]
        if "dict" in spec
        else spec.get("tuple", spec.get("list"))
    )
    return [number for item in items for number in _leaf_numbers(item)]


def _check_present(folder: str, entry: dict[str, Any]) -> None:
    """StoreDamagedError unless the chunk file is a regular file of the recorded size."""
    path = os.path.join(folder, entry["file"])
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise StoreDamagedError(folder, path, "is missing") from None
    except OSError as error:
        raise StoreDamagedError(folder, path, f"cannot be read ({error})") from error
    if stat.S_ISLNK(info.st_mode):
        raise StoreDamagedError(
            folder,
            path,
            "is a symbolic link; a store's chunks are regular files inside its folder, never "
            "read through links (a link may point at another chunk or store)",
        )
    if not stat.S_ISREG(info.st_mode):
        raise StoreDamagedError(folder, path, "is not a regular file")
    if info.st_size != entry["size"]:
        raise StoreDamagedError(folder, path, _size_problem(info.st_size, entry))


def _size_problem(size: int, entry: dict[str, Any]) -> str:
    change = "truncated" if size < entry["size"] else "grown"
    return (
        f"holds {size} bytes, the manifest records {entry['size']}: it was {change} or "
        "replaced after write_store finished"
    )


def _leaf(data: memoryview, offset: int, shape: list[int], dtype: np.dtype) -> np.ndarray:
    count = int(np.prod(shape, dtype=np.int64))
    # A copy, so that the chunk is freed when the next one is read.
    return np.frombuffer(data, dtype, count, offset).reshape(shape).copy()


class StorePreprocessor(Preprocessor):
    """Serves the slices of stored batches, each optionally transformed (internal, final).

    Args:
        slices_per_batch: the slice count of every stored batch when they all have the
            same, else None (read-only views then cannot tell their length).
        preprocessor: a read-time preprocessor (`DataGenerator(data_path=store,
            preprocessor=...)`), or None. Each stored slice `(x, y)` reaches its
            `process()` as a batch of its own, with the rng of that slice (drawn from
            `(seed, epoch, batch, slice_idx)`), so every epoch serves differently
            augmented slices. It must not slice: a stored batch is served as the S
            slices it holds, so a preprocessor that sets `slices_per_batch` is refused.
    """

    def __init__(self, slices_per_batch: int | None, preprocessor: Preprocessor | None = None):
        super().__init__()
        self._count = slices_per_batch
        self._description: dict[str, Any] = {}
        self.read_time = preprocessor

    def on_batch_load(self, batch: StoredBatch, labels: Any) -> None:
        self.slices_per_batch = len(batch.slices)

    def process(self, batch: StoredBatch, labels: Any) -> tuple[Any, ...]:
        self._description = batch.descriptions[self.slice_idx]
        stored = batch.slices[self.slice_idx]
        if self.read_time is None:
            return stored
        return _transform(self.read_time, stored, self._rng_key)

    def describe_slice(self) -> dict[str, Any]:
        return dict(self._description)

    def count_slices(self, sample_shape: tuple[int, ...]) -> int | None:
        return self._count

    def for_prediction(self) -> StorePreprocessor:
        """The stored slices, through the read-time preprocessor's prediction form."""
        if self.read_time is None:
            return self
        return StorePreprocessor(self._count, self.read_time.for_prediction())

    def get_config(self) -> dict[str, Any]:
        if self.read_time is None:  # as before read-time preprocessors: old states load
            return {"class": "StorePreprocessor"}
        return {"class": "StorePreprocessor", "preprocessor": self.read_time.get_config()}

    def state_dict(self) -> dict[str, Any]:
        return {} if self.read_time is None else self.read_time.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.read_time is not None:
            self.read_time.load_state_dict(state)
        else:
            super().load_state_dict(state)


_SLICES_A_STORED_SLICE = (
    "{name} set slices_per_batch={count!r} in {where} on a stored slice, but a preprocessor "
    "given with an offline store (data_path=store) transforms each stored slice at "
    "read time and must not slice it again: the store serves each stored batch as the "
    "slices it was written with. Slice when writing the store (pass the slicing "
    "preprocessor to the DataGenerator given to write_store), and give the store only "
    "preprocessors that serve one slice per batch (augmenters, Chain of them). "
    "Received: slices_per_batch={count!r}"
)


def _transform(
    pre: Preprocessor, stored: tuple[Any, ...], key: tuple[int, ...] | None
) -> tuple[Any, ...]:
    """The stored slice through `pre`, drawn with the slice's rng `key`."""
    # The walk of base.py on a batch of one slice: load it, then serve slice 0.
    x, y = stored[0], stored[1]
    start_batch(pre, x, y)
    _check_one_slice(pre, "on_batch_load()")
    result = serve_slice(pre, x, y, key if key is not None else ())
    _check_one_slice(pre, "process()")
    if len(stored) == 3:
        if len(result) == 3:
            raise ValueError(
                f"{type(pre).__name__}.process() returned a sample_weight for a stored slice "
                "that carries its own (written by write_store): a read-time preprocessor "
                "keeps the stored weight. Return (x, y) from it. Received: a slice of 3"
            )
        result = (*result, stored[2])
    return result


def _check_one_slice(pre: Preprocessor, where: str) -> None:
    if pre.slices_per_batch != 1:
        raise ValueError(
            _SLICES_A_STORED_SLICE.format(
                name=type(pre).__name__, count=pre.slices_per_batch, where=where
            )
        )


def open_store(
    folder: str, preprocessor: Preprocessor | None, keys: Any
) -> tuple[StoreSource, StorePreprocessor]:
    """The source and preprocessor of `DataGenerator(data_path=folder, ...)` on a store.

    `keys` selects members of the stored dict `x` (`StoreSource`); `preprocessor` is
    applied to each stored slice at read time (`StorePreprocessor`). A preprocessor
    whose `count_slices()` tells, from the stored x's shapes, that it slices is refused
    here; one that sets `slices_per_batch` later is refused at its first slice.
    """
    source = StoreSource(folder, keys)
    if preprocessor is not None:
        check_initialized(preprocessor)
        sample_shape = _stored_sample_shape(source)
        if sample_shape is not None:
            preprocessor.check_sample_shape(sample_shape)
            count = preprocessor.count_slices(sample_shape)
            if count is not None and count != 1:
                name = type(preprocessor).__name__
                where = "count_slices()"
                raise ValueError(_SLICES_A_STORED_SLICE.format(name=name, count=count, where=where))
    return source, StorePreprocessor(source.manifest["slices_per_batch"], preprocessor)


def _stored_sample_shape(source: StoreSource) -> Any:
    """The sample shape of the served x (a tuple, or a dict of them), or None if unknown.

    Unknown when x is not one array or a dict of arrays, or a dimension varies between
    slices (the manifest records it as null).
    """
    shapes = {leaf["name"]: leaf["shape"] for leaf in source.manifest["leaves"]}
    members = _x_members(source.manifest["structure"])
    if members is None:
        found = {"x": shapes.get("x")}
    else:
        kept = source.keys if source.keys is not None else [name for name, _ in members]
        found = {name: shapes.get(f"x.{name}") for name in kept}
    known = {name: shape for name, shape in found.items() if shape and None not in shape}
    if len(known) != len(found):
        return None
    sample = {name: tuple(int(d) for d in shape[1:]) for name, shape in known.items()}
    return sample["x"] if members is None else sample


# Arguments a DataGenerator serving a store refuses, with the value that means "not given".
_NOT_WITH_A_STORE = {
    "labels_path": None, "data": None, "labels": None,
    "superbatch": False, "drop_remainder": False, "shuffle_group_batches": False,
    "shuffle_group_samples": False, "loader": None, "labels_loader": None, "shard": None,
    "data_key": None, "labels_key": None,
}  # fmt: skip


def check_store_arguments(folder: str, shuffle: str | None, **received: Any) -> None:
    """ValueError naming the arguments that do not apply to serving the store `folder`.

    A store holds finished slices: labels and batching were applied when it was written,
    and `shuffle='samples'` would have to split stored batches. (A `preprocessor` is
    allowed: it transforms each stored slice at read time.)
    """
    given = [name for name, value in received.items() if value is not _NOT_WITH_A_STORE[name]]
    if given:
        raise ValueError(
            f"data_path={folder!r} is an offline store: it holds finished slices (labels, "
            "sample weights and the slicing included), served as they were "
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


def check_keys_need_a_store(keys: Any) -> None:
    """ValueError when `keys=` is given for a source that is not an offline store."""
    if keys is not None:
        raise ValueError(
            "keys= selects members of an offline store's x (DataGenerator(data_path=store, "
            "keys=[...])). For other sources pass only the members to serve: "
            f"data={{'tokens': tokens}}. Received: keys={describe(keys)}"
        )
