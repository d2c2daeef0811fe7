"""`write_store`: compute a generator's slices once and keep them in an offline store.

Use it when the preprocessor is expensive: the store is written once (`process()` calls
spread over worker processes) and `DataGenerator(data_path=folder)` serves the stored
slices every epoch, one chunk in memory at a time. The folder layout and the chunk file
format are described in `trainkit.data.sources.offline_store` and docs/store.md.

Determinism: the hooks (`on_batch_load`, `update_state`) run in this process in plan
order, workers only compute `process()`, and one writer writes chunk after chunk in
index order, so the bytes do not depend on `workers`. Safety, as in run folders: one
writer at a time (the run folders' lock, `trainkit.checkpoints.lock.RunLock`, on the
store folder); each file is written by the run folders' safe write (a fresh temporary
file, never through a link, renamed into place), and the manifest is written last. A
writer that was stopped leaves `progress.json`, and running `write_store` again with the
same inputs finishes the store, computing only the chunks not yet written (the hooks of
the finished ones run again, to reach the same preprocessor state); the chunks it reuses
are checked (their own SHA-256, index and inputs) first, and every chunk is checked again
when the manifest certifies it.

Inputs: the generator's fingerprint, plus the content of in-memory arrays (SHA-256) and
the size and modification time of input files, so a store is never finished or reused
from changed data.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import hashlib
import json
import os
import pickle
import socket
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from trainkit._validation import check_bool, check_int, describe
from trainkit.checkpoints import lock as lock_lib
from trainkit.checkpoints.lock import LOCK_FILE, RunFolderLockedError, RunLock, describe_holder
from trainkit.data import prefetch as prefetch_lib
from trainkit.data.plan import Batch
from trainkit.data.preprocessors.base import Preprocessor
from trainkit.data.sources import gather
from trainkit.data.sources.arrays import ArraySource
from trainkit.data.sources.offline_store import (
    CHUNK_FILE,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    PROGRESS,
    TEMPORARY,
    StoreDamagedError,
    StoreSource,
    StoreWriteError,
    check_format,
    chunk_name,
    decode_chunk,
    dumps,
    encode_chunk,
    inputs_digest,
    leaf_names,
    read_file,
    read_manifest,
    write_atomic,
)
from trainkit.data.sources.sets import SetSource
from trainkit.data.sources.structured import RaggedSource, StructuredSource
from trainkit.data.state import differences
from trainkit.data.walk import SliceWalk, Step

if TYPE_CHECKING:
    from trainkit.data.generator import DataGenerator

Chunk = list[dict[str, Any]]  # per batch: set_name, pieces, slices (`_Served` until written)


def write_store(
    datagen: DataGenerator,
    out: str | os.PathLike[str],
    *,
    chunk_size: int,
    workers: int = 1,
    progress: bool = True,
) -> str:
    """Run `datagen` over one epoch and store every slice in `out`, `chunk_size` batches a file.

    The epoch is the generator's current one, walked on a copy of its preprocessor (the
    generator's cursor does not move). Slices keep their structure (dicts, tuples) and
    sample weights. Serve the store with `DataGenerator(data_path=out)`.

    Args:
        datagen: the DataGenerator whose slices to store.
        out: a folder to create (or an empty one, or one an unfinished `write_store` of the
            same inputs left: it is finished).
        chunk_size: stored batches per chunk file; serving holds one chunk in memory.
        workers: processes that run `process()` (1: in this process). The preprocessor
            must pickle when `workers > 1`.
        progress: print a progress line to stderr.

    Returns:
        `out`, as a str: `DataGenerator(data_path=write_store(dg, "store", chunk_size=64))`.

    Raises:
        ValueError: `out` is not a folder, holds other files, or a store (finished or
            not) of other inputs or another format; the message names what differs.
        StoreDamagedError: (a ValueError) a file of the store is damaged, foreign or a
            link: a chunk an unfinished store would reuse, or a finished store's manifest
            or chunk; the message names the file. Nothing damaged is reused or certified.
        StoreLockedError: another `write_store` is writing `out`.
        StoreWriteError: (an OSError) a file could not be written (disk full, ...).
        TypeError: bad arguments, slices that are not numeric arrays (ragged ones
            included), or a preprocessor that does not pickle with `workers > 1`.

    Example:
        >>> write_store(DataGenerator(data=x, labels=y, preprocessor=Slow()), "store",
        ...             chunk_size=32, progress=False)
        'store'
        >>> dg = DataGenerator("store", shuffle=True)
    """
    from trainkit.data.generator import DataGenerator

    if not isinstance(datagen, DataGenerator):
        raise TypeError(f"`datagen` must be a DataGenerator. Received: datagen={describe(datagen)}")
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    workers = check_int("workers", workers, minimum=1)
    progress = check_bool("progress", progress)
    folder = _check_out(out)
    inputs = _inputs(datagen, chunk_size)
    _state(folder, inputs)  # refuse other files and other inputs before creating anything
    with _writer_lock(folder):
        return _write(datagen, folder, inputs, chunk_size, workers, progress)


def _write(
    datagen: DataGenerator,
    folder: str,
    inputs: dict[str, Any],
    chunk_size: int,
    workers: int,
    progress: bool,
) -> str:
    """`write_store` once `folder` is checked and locked."""
    if _begin(folder, inputs):
        return folder  # already finished with these inputs
    pre = copy.deepcopy(datagen.preprocessor)
    pre.reset_state()
    if workers > 1:
        _check_picklable(pre, workers)
    plan = datagen.plan(datagen.epoch)
    count = -(-len(plan) // chunk_size)
    ident = inputs_digest(inputs)
    done = _reusable(folder, count, ident)
    bar = _Bar(count, len(done)) if progress else None
    owner = f"write_store(..., workers={workers})"  # what worker_pool's errors name
    pool = prefetch_lib.worker_pool(workers, owner) if workers > 1 and len(done) < count else None
    try:
        chunks = _walk(datagen, pre, chunk_size, done, pool)
        _write_chunks(folder, ident, chunks, bar, pool is not None)
    except prefetch_lib.BrokenProcessPool as error:
        raise prefetch_lib.lost_worker_error(owner, error) from error
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    write_atomic(os.path.join(folder, MANIFEST), _manifest(folder, inputs, datagen, count))
    os.remove(os.path.join(folder, PROGRESS))
    if bar is not None:
        bar.finish()
    return folder


def _check_out(out: Any) -> str:
    """`out` as a str path naming a folder (new or existing); TypeError/ValueError."""
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(
            "`out` must be a folder path (str or os.PathLike) for the store. "
            f"Received: out={describe(out)}"
        )
    folder = os.fspath(out)
    if not isinstance(folder, str):
        raise TypeError(f"`out` must be a str path, not bytes. Received: out={folder!r}")
    if not folder:
        raise ValueError(
            "`out` must name a folder for the store (e.g. 'store/'); an empty path names "
            "none. Received: out=''"
        )
    if os.path.lexists(folder) and not os.path.isdir(folder):
        kind = "a broken symbolic link" if not os.path.exists(folder) else "a file"
        raise ValueError(
            f"`out` must be a folder (new, empty, or a store write_store began), but "
            f"{folder!r} is {kind}. Pick another path. Received: out={folder!r}"
        )
    return folder


def _inputs(datagen: DataGenerator, chunk_size: int) -> dict[str, Any]:
    """What decides the bytes of the store (compared when a store is finished).

    The generator's fingerprint (counts, shapes, dtypes, file sizes, settings, the
    preprocessor's configuration), the epoch, `chunk_size`, and the content: the
    SHA-256 of in-memory arrays, the size and modification time of input files.
    """
    fingerprint = json.loads(json.dumps(datagen.fingerprint()))  # as JSON reads it back
    content = {
        "data": _content(datagen.source, "data"),
        "labels": _content(datagen.labels_source, "labels"),
    }
    return {
        "generator": fingerprint,
        "epoch": datagen.epoch,
        "chunk_size": chunk_size,
        "content": json.loads(json.dumps(content)),
    }


# ------------------------------------------------------------------ the content of inputs
def _content(source: Any, role: str) -> Any:
    """A source's content print: in-memory arrays hashed, files by size and mtime.

    `{'sha256', 'bytes'}` for arrays in memory, `{'files': {name: [size, mtime_ns]}}` for
    files (`.npy`/HDF5/`.npz`/CSV files, `np.memmap`, `h5py.Dataset`), a dict of members
    for structured sources, None for sources with no content of their own (a store: its
    fingerprint is its manifest's digest).
    """
    if source is None:
        return None
    if isinstance(source, StructuredSource):
        return {"members": {name: _content(member, role) for name, member in source.items()}}
    if isinstance(source, RaggedSource):
        return _hashed(source.arrays)
    if isinstance(source, ArraySource):
        array = source.array
        if source.path:
            return _files([source.path])
        if isinstance(array, np.memmap) and isinstance(array.filename, str):
            return _files([array.filename])
        if isinstance(array, np.ndarray):
            return _hashed([array])
        filename = getattr(getattr(array, "file", None), "filename", None)  # h5py.Dataset
        return _files([filename]) if isinstance(filename, str) else None
    if isinstance(source, SetSource):
        paths = [_file_of(stored.where) for stored in source.sets]
        return _files([path for path in paths if path is not None]) if any(paths) else None
    return None


def _hashed(arrays: list[np.ndarray]) -> dict[str, Any]:
    """The SHA-256 of the arrays' shapes, dtypes and bytes (about 1 GB/s), and their size."""
    digest = hashlib.sha256()
    total = 0
    for array in arrays:
        digest.update(f"{array.dtype.str}{array.shape};".encode())
        total += array.nbytes
        if array.flags.c_contiguous:
            digest.update(array.reshape(-1).view(np.uint8).data)
            continue
        rows = max(1, (1 << 24) // max(1, array[:1].nbytes))  # ~16 MB blocks
        for start in range(0, len(array), rows):
            block = np.ascontiguousarray(array[start : start + rows])
            digest.update(block.reshape(-1).view(np.uint8).data)
    return {"sha256": digest.hexdigest(), "bytes": total}


def _file_of(where: str) -> str | None:
    """The file a stored set is read from (`path` or `path['key']`), or None."""
    if os.path.isfile(where):
        return where
    if where.endswith("]") and "[" in where:
        path = where[: where.rindex("[")]
        if os.path.isfile(path):
            return path
    return None


def _files(paths: list[str]) -> dict[str, Any]:
    """`{'files': {name: [size, mtime_ns]}}`, named by base name (by path if two clash)."""
    unique = list(dict.fromkeys(os.path.abspath(path) for path in paths))
    short = [os.path.basename(path) for path in unique]
    names = short if len(set(short)) == len(short) else unique
    files = {}
    for name, path in zip(names, unique):
        info = os.stat(path)
        files[name] = [info.st_size, info.st_mtime_ns]
    return {"files": files}


def _content_changes(saved: Any, now: Any, where: str) -> list[str]:
    """Readable sentences naming what changed between two content prints."""
    if saved == now:
        return []
    if isinstance(saved, dict) and isinstance(now, dict):
        if "members" in saved and "members" in now:
            out = []
            for name in sorted(set(saved["members"]) | set(now["members"])):
                out += _content_changes(
                    saved["members"].get(name), now["members"].get(name), f"{where}[{name!r}]"
                )
            return out
        if "sha256" in saved and "sha256" in now:
            return [
                f"the content of the in-memory {where} changed (its SHA-256 differs: "
                f"saved {saved['sha256'][:12]}..., now {now['sha256'][:12]}...)"
            ]
        if "files" in saved and "files" in now:
            out = []
            for name in sorted(set(saved["files"]) | set(now["files"])):
                before, after = saved["files"].get(name), now["files"].get(name)
                if before == after:
                    continue
                if before is None or after is None:
                    state = "is new" if before is None else "is no longer read"
                    out.append(f"{where} file {name!r} {state}")
                    continue
                out.append(
                    f"{where} file {name!r} changed: size {before[0]} -> {after[0]} bytes, "
                    f"modified {_when(before[1])} -> {_when(after[1])}"
                )
            return out
    return [f"{where} content: saved {saved!r}, now {now!r}"]


def _when(mtime_ns: int) -> str:
    moment = datetime.datetime.fromtimestamp(mtime_ns / 1e9, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ------------------------------------------------------------------ the folder
def _state(folder: str, inputs: dict[str, Any]) -> str:
    """What `folder` holds for these inputs: 'new', 'finished' or 'unfinished'.

    Reads only. Raises for a folder holding other files, a foreign, garbage or old-format
    manifest.json or progress.json, a damaged finished store, or a store of other inputs.
    """
    if not os.path.lexists(folder):
        return "new"
    names = os.listdir(folder)
    other = sorted(name for name in names if not _owned(name))
    if other:
        raise ValueError(
            f"`out` must be a new or empty folder, or a store write_store began; {folder!r} "
            f"holds other files ({other[:5]}). Pick another folder. Received: out={folder!r}"
        )
    fix = (
        "`out` must be a new or empty folder, or a store write_store began: pick another "
        "folder, or delete this one."
    )
    manifest, progress = os.path.join(folder, MANIFEST), os.path.join(folder, PROGRESS)
    if os.path.lexists(manifest):
        try:
            saved, _ = read_manifest(folder, fix)
        except StoreDamagedError as error:
            raise StoreDamagedError(
                error.folder, error.path, error.problem, _FIX_FINISHED_DAMAGED
            ) from None
        _check_same(folder, "a store", saved["inputs"], inputs)
        return "finished"
    if os.path.lexists(progress):
        saved = _read_progress(folder, progress, fix)
        _check_same(folder, "an unfinished store", saved["inputs"], inputs)
        return "unfinished"
    return "unfinished" if any(CHUNK_FILE.match(name) for name in names) else "new"


_FIX_FINISHED_DAMAGED = (
    "It is not certified as finished any more: delete the folder and run write_store again "
    "(or restore the folder from a copy)."
)


def _owned(name: str) -> bool:
    """Whether a file name in a store folder is the store's own."""
    return (
        name in (MANIFEST, PROGRESS, LOCK_FILE)
        or bool(CHUNK_FILE.match(name))
        or bool(TEMPORARY.match(name))
    )


def _read_progress(folder: str, path: str, fix: str) -> dict[str, Any]:
    data, _ = read_file(folder, path)
    try:
        saved = json.loads(bytes(data))
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{path!r}, the progress file of an unfinished store, is damaged: it is not "
            f"valid JSON ({error}), so this store cannot be compared with these inputs. "
            "Delete progress.json and run write_store again: the chunks already written are "
            "checked against the inputs (each records them) before any is reused."
        ) from None
    check_format(saved, path, fix)
    if not isinstance(saved.get("inputs"), dict):
        raise ValueError(
            f"{path!r}, the progress file of an unfinished store, has no 'inputs' object. "
            "Delete progress.json and run write_store again: the chunks already written are "
            "checked against the inputs (each records them) before any is reused."
        )
    return saved


def _begin(folder: str, inputs: dict[str, Any]) -> bool:
    """Prepare the locked `folder` for writing; True when it holds this finished store.

    The checks of `_state` again (another writer may have finished or begun meanwhile),
    then: a finished store is opened (manifest and chunk presence and sizes checked); an
    unfinished one loses its temporary files; a new one gets `progress.json`.
    """
    state = _state(folder, inputs)
    if state == "finished":
        try:
            StoreSource(folder)
        except StoreDamagedError as error:
            raise StoreDamagedError(
                error.folder, error.path, error.problem, _FIX_FINISHED_DAMAGED
            ) from None
        if os.path.lexists(os.path.join(folder, PROGRESS)):  # stopped after the manifest
            os.remove(os.path.join(folder, PROGRESS))
        return True
    for name in os.listdir(folder):
        if TEMPORARY.match(name):  # a stopped writer's; removing a link leaves its target
            os.remove(os.path.join(folder, name))
    if state == "new" or not os.path.lexists(os.path.join(folder, PROGRESS)):
        progress = {"format": FORMAT, "version": FORMAT_VERSION, "inputs": inputs}
        write_atomic(os.path.join(folder, PROGRESS), dumps(progress))
    return False


def _check_same(folder: str, what: str, saved: Any, inputs: dict[str, Any]) -> None:
    saved = saved if isinstance(saved, dict) else {}
    rest = {key: value for key, value in saved.items() if key != "content"}
    diffs = [
        d.replace("this generator has", "now")
        for d in differences(rest, {k: v for k, v in inputs.items() if k != "content"})
    ]
    before, after = saved.get("content") or {}, inputs["content"]
    for role in ("data", "labels"):
        diffs += _content_changes(before.get(role), after.get(role), role)
    if diffs:
        raise ValueError(
            f"{folder!r} holds {what} written from other inputs than these: "
            + "; ".join(diffs)
            + ". Write to another folder (or delete this one), or pass the same generator, "
            "data, preprocessor configuration and chunk_size."
        )


class StoreLockedError(RunFolderLockedError):
    """Another `write_store` is writing the store folder; nothing in it was changed."""


@contextlib.contextmanager
def _writer_lock(folder: str) -> Iterator[None]:
    """Hold the run folders' single-writer lock (`RunLock`) on `folder` for a block.

    Creates `folder` if needed. The lock file `.lock` is removed when the block ends, so a
    finished store holds only its chunks and manifest; a writer that took the lock on a
    lock file removed meanwhile (its record is not this process's) tries again.
    """
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise StoreWriteError(
            f"Could not create the store folder {folder!r}: {error}. Fix the path or the "
            f"permissions of its parent. Received: out={folder!r}"
        ) from error
    for _ in range(5):
        lock = RunLock(folder)
        try:
            lock.acquire("write_store")
        except RunFolderLockedError as error:
            raise StoreLockedError(
                f"Cannot write store {folder!r}: another write_store is writing it "
                f"({describe_holder(error.holder)}). Two writers would write the same chunks "
                "and manifest at once. Wait for it to finish, or stop it (a killed writer "
                "releases the lock at once), then run write_store again: it finishes the "
                f"store. Received: out={folder!r}",
                folder,
                error.holder,
            ) from None
        except OSError as error:
            raise StoreWriteError(
                f"Could not take the store's lock file {lock.path!r}: {_cause(error)}. "
                "Make the folder writable (and remove the file if it is a symbolic link)."
            ) from error
        if lock_lib.fcntl is None or _holds(lock.path):  # without fcntl: no lock file
            break
        lock.release()  # a lock file removed by the writer before us: take the new one
    else:
        raise StoreLockedError(
            f"Cannot write store {folder!r}: its lock file keeps being replaced by other "
            f"writers. Run one write_store at a time. Received: out={folder!r}",
            folder,
            None,
        )
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.remove(lock.path)  # still ours: the lock is held until release
        lock.release()


def _cause(error: OSError) -> str:
    return os.strerror(error.errno) if error.errno else str(error)


def _holds(path: str) -> bool:
    """Whether the lock file now at `path` records this process (the one locked)."""
    try:
        data, _ = read_file(os.path.dirname(path), path)
        record = json.loads(bytes(data))
    except (ValueError, OSError):
        return False
    return (
        isinstance(record, dict)
        and record.get("pid") == os.getpid()
        and record.get("host") == socket.gethostname()
    )


def _reusable(folder: str, count: int, ident: str) -> set[int]:
    """The chunks already in `folder`, each checked before it is reused.

    Raises:
        StoreDamagedError: a chunk file is damaged, foreign, a link, or beyond `count`;
            the message names it and says to delete it (it is then computed again).
    """
    done = set()
    for name in sorted(os.listdir(folder)):
        match = CHUNK_FILE.match(name)
        if match is None:
            continue
        index, path = int(match.group(1)), os.path.join(folder, name)
        fix = _FIX_REUSED.format(path=path)
        if name != chunk_name(index) or index >= count:
            raise StoreDamagedError(
                folder, path, f"is not one of the {count} chunks these inputs give", fix
            )
        data, _ = read_file(folder, path, fix)
        decode_chunk(data, folder, path, index=index, inputs=ident, fix=fix)
        done.add(index)
    return done


_FIX_REUSED = (
    "Nothing was reused or certified. Delete {path!r} and run write_store again: it "
    "computes that chunk again."
)


def _check_picklable(pre: Preprocessor, workers: int) -> None:
    try:
        pickle.loads(pickle.dumps(pre))
    except Exception as error:
        name = type(pre).__name__
        raise TypeError(
            f"workers={workers} runs {name}.process() in worker processes, which receive the "
            f"preprocessor pickled, but {name} cannot be pickled: {error}. Keep only "
            "picklable attributes and define the class at module level, or pass workers=1."
        ) from error


def _walk(
    datagen: DataGenerator,
    pre: Preprocessor,
    chunk_size: int,
    done: set[int],
    pool: ProcessPoolExecutor | None,
) -> Iterator[tuple[int, Chunk]]:
    """The chunks not yet written, in order, their slices computed (or being computed).

    The epoch is walked by `walk.SliceWalk`, the one slice walk every server of slices
    uses, so the store holds exactly the slices the generator serves (a preprocessor that
    sets `slices_per_batch` in `process()` included, with workers too). The slices of
    finished chunks are walked with the hooks but not computed.
    """
    plan = datagen.plan(datagen.epoch)

    def read(batch: Batch) -> tuple[Any, Any]:
        return gather(datagen.source, batch), gather(datagen.labels_source, batch)

    walk = SliceWalk(pre, plan, read, seed=datagen.seed, epoch=datagen.epoch, pool=pool)
    for chunk in range(-(-len(plan) // chunk_size)):
        stop = min(len(plan), (chunk + 1) * chunk_size)
        batches: Chunk = []
        while walk.index < stop:
            first = walk.arrays is None  # the step begins its batch
            step = walk.next(compute=chunk not in done)
            if step is None:
                break
            if step.error is not None:
                raise step.error
            if first:
                batch = plan[step.batch_index]
                pieces = [list(piece) for piece in batch.pieces]
                batches.append({"set_name": batch.set_name, "pieces": pieces, "slices": []})
            if chunk not in done:
                batches[-1]["slices"].append(_Served(step))
        if chunk not in done:
            yield chunk, batches


class _Served:
    """One stored slice: `(slice, description)` once computed (a worker's, waited for)."""

    def __init__(self, step: Step) -> None:
        self.step = step

    def result(self) -> tuple[Any, dict[str, Any] | None]:
        return self.step.slice(), self.step.description


def _write_chunks(
    folder: str,
    ident: str,
    chunks: Iterator[tuple[int, Chunk]],
    bar: _Bar | None,
    overlap: bool,
) -> None:
    """Write the chunks in order; with workers, each once the next one is submitted, so
    that the workers stay busy while it is written."""
    pending: tuple[int, Chunk] | None = None
    for item in chunks:
        if pending is not None:
            _write_chunk(folder, ident, *pending, bar)
        pending = item
        if not overlap:
            _write_chunk(folder, ident, *pending, bar)
            pending = None
    if pending is not None:
        _write_chunk(folder, ident, *pending, bar)


def _write_chunk(folder: str, ident: str, index: int, batches: Chunk, bar: _Bar | None) -> None:
    for batch in batches:
        batch["slices"] = [served.result() for served in batch["slices"]]
    write_atomic(os.path.join(folder, chunk_name(index)), encode_chunk(index, batches, ident))
    if bar is not None:
        bar.advance()


def _manifest(folder: str, inputs: dict[str, Any], datagen: DataGenerator, count: int) -> bytes:
    """The manifest, from the chunk files as they are on disk (also those of an earlier
    run), each checked first: its own SHA-256, its index and its inputs."""
    chunks, names, layouts, shapes = [], [], [], []
    slice_counts: set[int] = set()
    ident = inputs_digest(inputs)
    for index in range(count):
        path = os.path.join(folder, chunk_name(index))
        fix = _FIX_REUSED.format(path=path)
        data, _ = read_file(folder, path, fix)
        header, _ = decode_chunk(data, folder, path, index=index, inputs=ident, fix=fix)
        layouts.append((header["structure"], header["dtypes"]))
        batches = header["batches"]
        for batch in batches:
            names.append([batch["set_name"], batch["pieces"]])
            slice_counts.add(len(batch["slices"]))
            shapes += [[shape for _, shape in stored["leaves"]] for stored in batch["slices"]]
        entry: dict[str, Any] = {"file": chunk_name(index), "size": len(data)}
        entry["batches"] = len(batches)
        entry["slices"] = sum(len(batch["slices"]) for batch in batches)
        entry["sha256"] = hashlib.sha256(data).hexdigest()
        chunks.append(entry)
    if any(layout != layouts[0] for layout in layouts):
        raise ValueError(
            f"The chunks in {folder!r} hold slices of different structures or dtypes; a "
            "store holds one. Make process() return the same structure for every slice."
        )
    structure, dtypes = layouts[0]
    leaves = [
        {"name": name, "dtype": dtype, "shape": _common_shape([s[k] for s in shapes])}
        for k, (name, dtype) in enumerate(zip(leaf_names(structure), dtypes))
    ]
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "inputs": inputs,
        "batch_size": datagen.batch_size,
        "structure": structure,
        "leaves": leaves,
        "batches": len(names),
        "slices": sum(entry["slices"] for entry in chunks),
        "slices_per_batch": slice_counts.pop() if len(slice_counts) == 1 else None,
        "chunks": chunks,
        "names": names,
    }
    manifest["manifest_sha256"] = hashlib.sha256(dumps(manifest)).hexdigest()
    return dumps(manifest)


def _common_shape(shapes: list[list[int]]) -> list[int | None]:
    """The leaf's shape, with None where slices differ (a last short batch, lengths)."""
    first = shapes[0]
    if any(len(shape) != len(first) for shape in shapes):
        return [None] * len(first)
    return [d if all(s[k] == d for s in shapes) else None for k, d in enumerate(first)]


class _Bar:
    """`write_store: chunk 3/10 [###-------] 12.5 chunks/s` on one line of stderr."""

    def __init__(self, total: int, done: int) -> None:
        self.total, self.done, self.start = total, done, time.perf_counter()
        self.first = done
        self.rewrite = sys.stderr.isatty()
        self._show()

    def advance(self) -> None:
        self.done += 1
        self._show()

    def finish(self) -> None:
        if self.rewrite:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def _show(self) -> None:
        width = 20
        filled = width * self.done // max(self.total, 1)
        elapsed = time.perf_counter() - self.start
        rate = (self.done - self.first) / elapsed if elapsed > 0 else 0.0
        line = (
            f"write_store: chunk {self.done}/{self.total} "
            f"[{'#' * filled}{'-' * (width - filled)}] {rate:.3g} chunks/s"
        )
        sys.stderr.write(("\r" + line) if self.rewrite else line + "\n")
        sys.stderr.flush()
