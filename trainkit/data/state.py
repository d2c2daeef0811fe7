"""State dicts and fingerprints of a DataGenerator (versioned, JSON-serializable)."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainkit.data.generator import DataGenerator

STATE_VERSION = 1
_LIST_LIMIT = 64  # longer lists are stored as a digest to keep state dicts small


def _compact(values: list[Any]) -> Any:
    if len(values) <= _LIST_LIMIT:
        return list(values)
    digest = hashlib.sha1(json.dumps(values).encode()).hexdigest()[:16]
    return f"{len(values)} items, sha1 {digest}"


def _source_print(source: Any) -> dict[str, Any] | None:
    if source is None:
        return None
    return {
        "set_nums": _compact(source.set_nums),
        "set_sizes": _compact(source.set_sizes),
        **source.fingerprint(),
    }


def fingerprint(dg: DataGenerator) -> dict[str, Any]:
    settings = dg._settings
    return {
        "data": _source_print(dg.source),
        "labels": _source_print(dg.labels_source),
        "batch_size": settings.batch_size,
        "seed": settings.seed,
        "shuffle": settings.shuffle,
        "shuffle_group_batches": settings.shuffle_group_batches,
        "shuffle_group_samples": settings.shuffle_group_samples,
        "drop_remainder": settings.drop_remainder,
        "set_nums": _compact(dg.set_nums_original),
        "preprocessor": dg.preprocessor.get_config(),
        "shard_count": settings.shard[1] if settings.shard else None,
    }


def state_dict(dg: DataGenerator) -> dict[str, Any]:
    pre = dg.preprocessor
    return {
        "version": STATE_VERSION,
        "epoch": dg.epoch,
        "batch_index": dg.batch_index,
        "all_data_exhausted": dg.all_data_exhausted,
        "batch_loaded": pre.batch_loaded,
        "batch_exhausted": pre.batch_exhausted,
        "slice_idx": pre.slice_idx,
        "slices_per_batch": pre.slices_per_batch,
        "preprocessor": pre.state_dict(),
        "fingerprint": fingerprint(dg),
    }


def differences(saved: Any, current: Any, path: str = "") -> list[str]:
    """Readable list of where two nested fingerprints differ."""
    if isinstance(saved, dict) and isinstance(current, dict):
        out = []
        for key in sorted(set(saved) | set(current), key=str):
            out += differences(
                saved.get(key), current.get(key), f"{path}.{key}" if path else str(key)
            )
        return out
    if saved != current:
        return [f"{path}: saved {saved!r}, this generator has {current!r}"]
    return []


def load_state_dict(dg: DataGenerator, state: dict[str, Any]) -> None:
    if not isinstance(state, dict) or "version" not in state:
        raise ValueError(
            f"Not a DataGenerator state dict (no 'version' key). Received: {state!r:.200}"
        )
    if state["version"] != STATE_VERSION:
        raise ValueError(
            f"DataGenerator state version {state['version']!r} is not supported; this trainkit "
            f"reads version {STATE_VERSION}."
        )
    # JSON turns tuples into lists; compare in that form.
    current = json.loads(json.dumps(fingerprint(dg)))
    diffs = differences(state["fingerprint"], current)
    if diffs:
        raise ValueError(
            "This state dict was taken from other data or settings and cannot be loaded: "
            + "; ".join(diffs)
            + ". Build the DataGenerator with the same data and settings."
        )
    pre = dg.preprocessor
    pre.reset_state()
    dg.epoch = state["epoch"]
    dg._plan = dg.plan(dg.epoch)
    dg.batch_index = state["batch_index"]
    dg.all_data_exhausted = state["all_data_exhausted"]
    dg._batch = dg._slice = None
    pre.batch_loaded = state["batch_loaded"]
    pre.batch_exhausted = state["batch_exhausted"]
    pre.slice_idx = state["slice_idx"]
    pre.slices_per_batch = state["slices_per_batch"]
    pre.load_state_dict(state["preprocessor"])
    dg._pending_preprocessor_state = state["preprocessor"]
