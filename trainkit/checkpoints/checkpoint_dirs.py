"""Checkpoint directories: written aside, renamed into place, verified, found, pruned, read.

A checkpoint `ckpt-{iters_fit:09d}-{counter}` holds `model.keras` (for people and
`keras.models.load_model`), `arrays.npz` (every value needed to continue bitwise),
`state.json`, and `manifest.json`: the name, size and SHA-256 digest of every other file.
The manifest is written last inside the temporary folder, so its presence marks a
complete checkpoint; reading a checkpoint checks every file against it, so a truncated,
bit-flipped, missing or swapped-in file is reported as damage instead of being loaded.
A crash at any instant leaves at worst a `.tmp-*` folder, which is ignored and removed on
the next start. A damaged `ckpt-*` folder is never removed.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

CHECKPOINT_PREFIX = "ckpt-"
STATE_FILE = "state.json"
ARRAYS_FILE = "arrays.npz"
MODEL_FILE = "model.keras"
MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1
_TMP_PREFIX = ".tmp-"
_NAME = re.compile(rf"^{CHECKPOINT_PREFIX}(\d+)-(\d+)$")
_REQUIRED = (STATE_FILE, ARRAYS_FILE)
_CHUNK = 1 << 20
_NO_MANIFEST = (
    f"no {MANIFEST_FILE} (the checkpoint was written by a trainkit without manifests, or "
    "its manifest was removed)"
)
_WRITE_FAILED = (
    "Could not write checkpoint {path!r}: {cause}. The previous checkpoints are intact and "
    "nothing partial was left; {fix}, then call train() again. Received: {cause}"
)
_FIX_OS = "free disk space, raise the file-size limit (ulimit -f) or fix the folder's permissions"
_FIX_VALUE = "make every saved value JSON-serializable (a callback's state_dict() included)"


class CheckpointWriteError(OSError):
    """A checkpoint could not be written; the previous checkpoints are intact."""


class CheckpointDamagedError(ValueError):
    """A checkpoint's files do not match its manifest, or cannot be read.

    Attributes:
        path: the checkpoint folder.
        problems: what is wrong, one sentence each.
    """

    def __init__(self, path: str, problems: Iterable[str]):
        self.path = path
        self.problems = list(problems)
        super().__init__(f"Checkpoint {path!r} is damaged: {'; '.join(self.problems)}.")


# ------------------------------------------------------------------ finding


def checkpoint_iters(path: str) -> int | None:
    """The `iters_fit` in a checkpoint folder's name; None for another name."""
    match = _NAME.match(os.path.basename(os.path.normpath(path)))
    return int(match.group(1)) if match else None


def _checkpoint_names(run_dir: str) -> list[str]:
    if not os.path.isdir(run_dir):
        return []
    names = [n for n in os.listdir(run_dir) if _NAME.match(n)]
    return sorted(names, key=lambda n: tuple(int(g) for g in _NAME.match(n).groups()))  # type: ignore[union-attr]


def checkpoint_folders(run_dir: str) -> list[str]:
    """Paths of every `ckpt-*` folder, damaged ones included, oldest first."""
    paths = [os.path.join(run_dir, n) for n in _checkpoint_names(run_dir)]
    return [p for p in paths if os.path.isdir(p)]


def complete_checkpoints(run_dir: str) -> list[str]:
    """Paths of complete checkpoints, oldest first.

    Complete: a manifest lists `state.json` and `arrays.npz`, and every file it lists is
    present with its recorded size. Digests are not computed (cheap enough for every
    prune); `verify_checkpoint` and `read_checkpoint` compute them.
    """
    return [p for p in checkpoint_folders(run_dir) if not verify_checkpoint(p, digests=False)]


def latest_checkpoint(run_dir: str) -> str | None:
    """The newest checkpoint whose files all match their manifest; None if there is none."""
    for path in reversed(checkpoint_folders(run_dir)):
        if not verify_checkpoint(path):
            return path
    return None


def clean_incomplete(run_dir: str) -> list[str]:
    """Remove `.tmp-*` folders (left by a kill mid-write); return them.

    A `ckpt-*` folder is never removed here, however damaged: it was complete once, and
    a person may want to look at it.
    """
    removed: list[str] = []
    if not os.path.isdir(run_dir):
        return removed
    for name in os.listdir(run_dir):
        path = os.path.join(run_dir, name)
        if name.startswith(_TMP_PREFIX) and os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


# ------------------------------------------------------------------ writing


def _next_name(run_dir: str, iters_fit: int) -> str:
    counter = 1 + max((int(_NAME.match(n).group(2)) for n in _checkpoint_names(run_dir)), default=0)  # type: ignore[union-attr]
    return f"{CHECKPOINT_PREFIX}{iters_fit:09d}-{counter}"


@dataclass
class PendingCheckpoint:
    """A checkpoint begun by `begin_checkpoint`: its temporary folder and final path."""

    run_dir: str
    name: str
    tmp: str
    final: str


def write_checkpoint(
    run_dir: str,
    *,
    iters_fit: int,
    arrays: dict[str, np.ndarray],
    state: dict[str, Any],
    save_model: Callable[[str], None] | None = None,
) -> str:
    """Write a checkpoint aside and rename it into place; return its path.

    Files are written into `.tmp-<name>`: the model, `arrays.npz`, `state.json`, then
    `manifest.json` (sizes and SHA-256 digests of the others); the folder is then renamed.
    The same as `begin_checkpoint` followed by `finish_checkpoint`.

    Raises:
        CheckpointWriteError: anything failed while writing (a full disk, a file-size
            limit, a value JSON cannot store), naming the checkpoint and the cause; the
            `.tmp-*` folder is removed and the previous checkpoints are untouched.
    """
    pending = begin_checkpoint(run_dir, iters_fit=iters_fit, save_model=save_model)
    return finish_checkpoint(pending, arrays=arrays, state=state)


def begin_checkpoint(
    run_dir: str, *, iters_fit: int, save_model: Callable[[str], None] | None = None
) -> PendingCheckpoint:
    """Create the checkpoint's `.tmp-<name>` folder and save the model into it.

    `save_model` (Keras' `model.save`) reads the model's live variables, so this runs
    where nothing trains the model meanwhile: on the training thread.

    Raises:
        CheckpointWriteError: as `write_checkpoint`; nothing is left behind.
    """
    name = _next_name(run_dir, iters_fit)
    pending = PendingCheckpoint(
        run_dir, name, os.path.join(run_dir, f"{_TMP_PREFIX}{name}"), os.path.join(run_dir, name)
    )
    with _removed_on_error(pending, created=False):
        os.makedirs(pending.tmp)
    with _removed_on_error(pending, created=True):
        if save_model is not None:
            save_model(os.path.join(pending.tmp, MODEL_FILE))
    return pending


def finish_checkpoint(
    pending: PendingCheckpoint, *, arrays: dict[str, np.ndarray], state: dict[str, Any]
) -> str:
    """Write `arrays.npz`, `state.json`, the manifest last, and rename the folder into place.

    Reads only `arrays` and `state` (host copies), never the model: it may run in a
    background thread while training goes on.

    Raises:
        CheckpointWriteError: as `write_checkpoint`; the `.tmp-*` folder is removed.
    """
    with _removed_on_error(pending, created=True):
        _write_npz(os.path.join(pending.tmp, ARRAYS_FILE), arrays)
        _write_json(os.path.join(pending.tmp, STATE_FILE), state)
        _write_manifest(pending.tmp, pending.name)
        _fsync_dir(pending.tmp)
        os.rename(pending.tmp, pending.final)
    with _removed_on_error(pending, created=False):  # renamed: nothing to remove
        _fsync_dir(pending.run_dir)
    return pending.final


@contextmanager
def _removed_on_error(pending: PendingCheckpoint, *, created: bool) -> Iterator[None]:
    """Remove the temporary folder (if `created`) on any error; raise CheckpointWriteError."""
    try:
        yield
    except Exception as error:
        if created:
            shutil.rmtree(pending.tmp, ignore_errors=True)
        cause = f"{type(error).__name__}: {error}"
        fix = _FIX_OS if isinstance(error, OSError) else _FIX_VALUE
        raise CheckpointWriteError(
            _WRITE_FAILED.format(path=pending.final, cause=cause, fix=fix)
        ) from error
    except BaseException:  # KeyboardInterrupt, SystemExit: leave nothing half-written
        if created:
            shutil.rmtree(pending.tmp, ignore_errors=True)
        raise


def _write_npz(path: str, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as file:
        np.savez(file, **arrays)  # type: ignore[arg-type]
        file.flush()
        os.fsync(file.fileno())


# state.json is strict JSON (no NaN/Infinity tokens, which strict parsers refuse): a
# non-finite float is written as {"$float": "nan" | "inf" | "-inf"}, the one encoding,
# and read back as the float. Files written before hold NaN/Infinity tokens, which
# Python's parser still reads.
NONFINITE_KEY = "$float"


def encode_nonfinite(value: Any) -> Any:
    """`value` with every non-finite float replaced by `{"$float": "nan"|"inf"|"-inf"}`."""
    if isinstance(value, float):
        return value if math.isfinite(value) else {NONFINITE_KEY: str(value)}
    if isinstance(value, dict):
        return {key: encode_nonfinite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_nonfinite(item) for item in value]
    return value


def decode_nonfinite(record: dict[str, Any]) -> Any:
    """`json.loads` object hook: `{"$float": "inf"}` back to the float."""
    if len(record) == 1 and record.get(NONFINITE_KEY) in ("nan", "inf", "-inf"):
        return float(record[NONFINITE_KEY])
    return record


def dumps_state(state: dict[str, Any]) -> str:
    """`state` as strict JSON, non-finite floats encoded (see `encode_nonfinite`)."""
    return json.dumps(encode_nonfinite(state), indent=1, allow_nan=False)


def loads_state(text: str) -> Any:
    """Parse what `dumps_state` wrote (and older files with NaN/Infinity tokens)."""
    return json.loads(text, object_hook=decode_nonfinite)


def _write_json(path: str, state: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as file:
        file.write(dumps_state(state))
        file.flush()
        os.fsync(file.fileno())


def _write_manifest(folder: str, name: str) -> None:
    """Record every file of `folder`; written to a fresh name, then renamed into place."""
    files = {}
    for entry in sorted(os.listdir(folder)):
        path = os.path.join(folder, entry)
        if os.path.isfile(path) and not os.path.islink(path):
            files[entry] = {"size": os.path.getsize(path), "sha256": _sha256(path)}
    manifest = {"version": MANIFEST_VERSION, "checkpoint": name, "files": files}
    part = os.path.join(folder, f"{MANIFEST_FILE}.part")
    with open(part, "x", encoding="utf-8") as file:
        json.dump(manifest, file, indent=1)
        file.flush()
        os.fsync(file.fileno())
    os.replace(part, os.path.join(folder, MANIFEST_FILE))


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# ------------------------------------------------------------------ verifying, reading


def _read_manifest(path: str) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """`(files, problems)` of a checkpoint's manifest."""
    manifest_path = os.path.join(path, MANIFEST_FILE)
    if not os.path.isfile(manifest_path):
        return {}, [_NO_MANIFEST]
    try:
        with open(manifest_path, "rb") as file:
            manifest = json.loads(file.read().decode("utf-8"))
        files = manifest["files"]
        for entry, record in files.items():
            if os.path.basename(entry) != entry or entry.startswith("."):
                raise ValueError(f"it lists a file outside the checkpoint ({entry!r})")
            if not isinstance(record["size"], int) or not isinstance(record["sha256"], str):
                raise ValueError(f"the record of {entry} has no int size and str sha256")
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        return {}, [f"{MANIFEST_FILE} cannot be read ({type(error).__name__}: {error})"]
    problems = []
    if manifest.get("checkpoint") != os.path.basename(os.path.normpath(path)):
        problems.append(f"{MANIFEST_FILE} belongs to checkpoint {manifest.get('checkpoint')!r}")
    problems += [f"{MANIFEST_FILE} lists no {name}" for name in _REQUIRED if name not in files]
    return files, problems


def _check_file(
    path: str, record: dict[str, Any], *, digest: bool, keep: bool
) -> tuple[bytes | None, str | None]:
    """`(bytes or None, problem or None)` of one file against its manifest record."""
    name = os.path.basename(path)
    if not os.path.isfile(path):
        return None, f"{name} is missing"
    size = os.path.getsize(path)
    if size != record["size"]:
        return None, f"{name} has {size} bytes where the manifest records {record['size']}"
    if not digest:
        return None, None
    data = None
    if keep:
        with open(path, "rb") as file:
            data = file.read()
        found = hashlib.sha256(data).hexdigest()
    else:
        found = _sha256(path)
    if found != record["sha256"]:
        return None, f"{name} does not match its SHA-256 digest in the manifest (its bytes changed)"
    return data, None


def verify_checkpoint(path: str, *, digests: bool = True) -> list[str]:
    """What is wrong with a checkpoint's files, one sentence each; empty when intact.

    Checks that `manifest.json` is there and readable, names this checkpoint and lists
    `state.json` and `arrays.npz`, and that every file it lists is present with its size
    and (with `digests`) its SHA-256 digest. `read_checkpoint` also parses the files.
    """
    files, problems = _read_manifest(path)
    for name, record in files.items():
        _, problem = _check_file(os.path.join(path, name), record, digest=digests, keep=False)
        problems += [problem] if problem else []
    return problems


def read_checkpoint(path: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """`(arrays, state)` of a checkpoint, every file checked against its manifest.

    Raises:
        FileNotFoundError: `path` is not a folder.
        CheckpointDamagedError: a file is missing, truncated, changed or from another
            checkpoint, or `state.json`/`arrays.npz` cannot be parsed; names each problem.
    """
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"{path!r} is not a checkpoint folder. Pass a run folder or a "
            f"'{CHECKPOINT_PREFIX}*' folder. Received: path={path!r}"
        )
    files, problems = _read_manifest(path)
    contents: dict[str, bytes] = {}
    for name, record in files.items():
        keep = name in _REQUIRED
        data, problem = _check_file(os.path.join(path, name), record, digest=True, keep=keep)
        problems += [problem] if problem else []
        if data is not None:
            contents[name] = data
    if problems:
        raise CheckpointDamagedError(path, problems)
    return _parse_arrays(path, contents[ARRAYS_FILE]), _parse_state(path, contents[STATE_FILE])


def _parse_state(path: str, data: bytes) -> dict[str, Any]:
    try:
        state = loads_state(data.decode("utf-8"))
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
        raise CheckpointDamagedError(path, [f"{STATE_FILE} cannot be parsed ({error})"]) from error
    if not isinstance(state, dict):
        problem = f"{STATE_FILE} holds a {type(state).__name__}, not an object"
        raise CheckpointDamagedError(path, [problem])
    return state


def _parse_arrays(path: str, data: bytes) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as loaded:
            return {key: loaded[key] for key in loaded.files}
    except Exception as error:  # BadZipFile, zlib.error, ValueError, EOFError, ...
        problem = f"{ARRAYS_FILE} cannot be read ({type(error).__name__}: {error})"
        raise CheckpointDamagedError(path, [problem]) from error


# ------------------------------------------------------------------ pruning


def prune_checkpoints(run_dir: str, keep: int, protect: Iterable[str] = ()) -> list[str]:
    """Delete the oldest complete checkpoints beyond `keep`, never the newest or `protect`.

    A damaged checkpoint is never deleted and does not count as a good one: a folder
    that is not complete (see `complete_checkpoints`) is not counted; each checkpoint due
    for deletion is verified first (digests) and, if damaged, left in place uncounted.
    """
    done = complete_checkpoints(run_dir)
    protected = {os.path.abspath(p) for p in protect}
    if done:
        protected.add(os.path.abspath(done[-1]))
    removable = [p for p in done if os.path.abspath(p) not in protected]
    removed = []
    for path in removable[: max(len(done) - keep, 0)]:
        if not verify_checkpoint(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def is_checkpoint_folder(path: str) -> bool:
    """A folder named like a checkpoint, or holding a manifest or `state.json` (even damaged)."""
    if not os.path.isdir(path):
        return False
    marks = (MANIFEST_FILE, STATE_FILE)
    named = checkpoint_iters(path) is not None
    return named or any(os.path.isfile(os.path.join(path, mark)) for mark in marks)
