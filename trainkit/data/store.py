"""`write_store`: compute a generator's slices once and keep them in an offline store.

Use it when the preprocessor is expensive: the store is written once (`process()` calls
spread over worker processes) and `DataGenerator(data_path=folder)` serves the stored
slices every epoch, one chunk in memory at a time. The folder layout and the chunk file
format are described in `trainkit.data.sources.store`.

Determinism: the hooks (`on_batch_load`, `update_state`) run in this process in plan
order, workers only compute `process()`, and one writer writes chunk after chunk in
index order, so the bytes do not depend on `workers`. Safety: each chunk is written to a
temporary name and renamed when complete, and the manifest is written last; a writer that
was stopped leaves `progress.json`, and running `write_store` again with the same inputs
finishes the store, computing only the chunks not yet written (the hooks of the finished
ones run again, to reach the same preprocessor state).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import pickle
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

from trainkit._validation import check_bool, check_int, describe
from trainkit.data import prefetch as prefetch_lib
from trainkit.data.plan import SLICE_STREAM
from trainkit.data.preprocessors.base import Preprocessor, check_slice
from trainkit.data.sources import gather
from trainkit.data.sources.store import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    PROGRESS,
    chunk_name,
    dumps,
    encode_chunk,
    leaf_names,
    read_header,
    write_atomic,
)
from trainkit.data.state import differences

if TYPE_CHECKING:
    from trainkit.data.generator import DataGenerator

Chunk = list[dict[str, Any]]  # per batch: set_name, pieces, slices (or Futures of them)


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
        ValueError: `out` holds other files, or a store (finished or not) of other inputs;
            the message names what differs.
        TypeError: bad arguments, slices that are not numeric arrays, or a preprocessor
            that does not pickle with `workers > 1`.

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
    folder = os.fspath(out)
    inputs = _inputs(datagen, chunk_size)
    if _begin(folder, inputs):
        return folder  # already finished with these inputs
    pre = copy.deepcopy(datagen.preprocessor)
    pre.reset_state()
    if workers > 1:
        _check_picklable(pre, workers)
    plan = datagen.plan(datagen.epoch)
    count = -(-len(plan) // chunk_size)
    done = {k for k in range(count) if os.path.exists(os.path.join(folder, chunk_name(k)))}
    bar = _Bar(count, len(done)) if progress else None
    owner = f"write_store(..., workers={workers})"  # what worker_pool's errors name
    pool = prefetch_lib.worker_pool(workers, owner) if workers > 1 and len(done) < count else None
    try:
        _write_chunks(folder, _walk(datagen, pre, chunk_size, done, pool), bar, pool is not None)
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


def _inputs(datagen: DataGenerator, chunk_size: int) -> dict[str, Any]:
    """What decides the bytes of the store (compared when a store is finished)."""
    fingerprint = json.loads(json.dumps(datagen.fingerprint()))  # as JSON reads it back
    return {"generator": fingerprint, "epoch": datagen.epoch, "chunk_size": chunk_size}


def _begin(folder: str, inputs: dict[str, Any]) -> bool:
    """Prepare `folder` for writing; True when it already holds this finished store."""
    manifest, progress = os.path.join(folder, MANIFEST), os.path.join(folder, PROGRESS)
    for path, what in ((manifest, "a store"), (progress, "an unfinished store")):
        if os.path.exists(path):
            with open(path, "rb") as file:
                saved = json.load(file)["inputs"]
            _check_same(folder, what, saved, inputs)
            return path == manifest
    if os.path.exists(folder) and os.listdir(folder):
        raise ValueError(
            f"`out` must be a new or empty folder, or a store write_store began; {folder!r} "
            f"holds other files ({sorted(os.listdir(folder))[:5]}). Pick another folder. "
            f"Received: out={folder!r}"
        )
    os.makedirs(folder, exist_ok=True)
    write_atomic(progress, dumps({"format": FORMAT, "version": FORMAT_VERSION, "inputs": inputs}))
    return False


def _check_same(folder: str, what: str, saved: Any, inputs: dict[str, Any]) -> None:
    diffs = differences(saved, inputs)
    if diffs:
        raise ValueError(
            f"{folder!r} holds {what} written from other inputs than these: "
            + "; ".join(d.replace("this generator has", "now") for d in diffs)
            + ". Write to another folder (or delete this one), or pass the same generator, "
            "preprocessor configuration and chunk_size."
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

    Every batch is begun and walked with the hooks, as the generator walks it; only the
    `process()` calls of finished chunks are skipped.
    """
    plan = datagen.plan(datagen.epoch)
    for chunk in range(-(-len(plan) // chunk_size)):
        batches: Chunk = []
        for index in range(chunk * chunk_size, min(len(plan), (chunk + 1) * chunk_size)):
            batch = plan[index]
            arrays = gather(datagen.source, batch), gather(datagen.labels_source, batch)
            prefetch_lib.begin_batch(pre, *arrays, None)
            slices = []
            while True:
                if chunk not in done:
                    key = (datagen.seed, SLICE_STREAM, datagen.epoch, index, pre.slice_idx)
                    slices.append(_compute(pre, arrays, key, pool))
                pre.update_state()
                if pre.batch_exhausted:
                    break
            pre.batch_loaded = False
            pieces = [list(piece) for piece in batch.pieces]
            batches.append({"set_name": batch.set_name, "pieces": pieces, "slices": slices})
        if chunk not in done:
            yield chunk, batches


def _compute(pre: Preprocessor, arrays: tuple[Any, Any], key: tuple[int, ...], pool: Any) -> Any:
    if pool is not None:
        return pool.submit(prefetch_lib.process_in_worker, pickle.dumps(pre), arrays, key)
    pre.set_rng_key(key)
    return check_slice(pre, pre.process(*arrays)), pre.describe_slice()


def _write_chunks(
    folder: str, chunks: Iterator[tuple[int, Chunk]], bar: _Bar | None, overlap: bool
) -> None:
    """Write the chunks in order; with workers, each once the next one is submitted, so
    that the workers stay busy while it is written."""
    pending: tuple[int, Chunk] | None = None
    for item in chunks:
        if pending is not None:
            _write_chunk(folder, *pending, bar)
        pending = item
        if not overlap:
            _write_chunk(folder, *pending, bar)
            pending = None
    if pending is not None:
        _write_chunk(folder, *pending, bar)


def _write_chunk(folder: str, index: int, batches: Chunk, bar: _Bar | None) -> None:
    for batch in batches:
        batch["slices"] = [s.result() if isinstance(s, Future) else s for s in batch["slices"]]
    write_atomic(os.path.join(folder, chunk_name(index)), encode_chunk(index, batches))
    if bar is not None:
        bar.advance()


def _manifest(folder: str, inputs: dict[str, Any], datagen: DataGenerator, count: int) -> bytes:
    """The manifest, from the chunk files' headers (also those of an earlier run)."""
    chunks, names, layouts, shapes = [], [], [], []
    slice_counts: set[int] = set()
    for index in range(count):
        path = os.path.join(folder, chunk_name(index))
        with open(path, "rb") as file:
            data = file.read()
        header, _ = read_header(data, path)
        layouts.append((header["structure"], header["dtypes"]))
        batches = header["batches"]
        for batch in batches:
            names.append([batch["set_name"], batch["pieces"]])
            slice_counts.add(len(batch["slices"]))
            shapes += [[shape for _, shape in stored["leaves"]] for stored in batch["slices"]]
        entry = {"file": chunk_name(index), "size": len(data), "batches": len(batches)}
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
    return dumps(
        {
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
    )


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
