"""Pure helpers for DataGenerator state dicts and fingerprints (versioned, JSON-serializable).

`DataGenerator.state_dict()`, `load_state_dict()` and `fingerprint()` build on these; nothing
here reads or writes a generator.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from trainkit._validation import describe

STATE_VERSION = 1
_LIST_LIMIT = 64  # longer lists are stored as a digest to keep state dicts small


def compact(values: list[Any]) -> Any:
    """`values` as a list, or a short digest of them when there are many."""
    if len(values) <= _LIST_LIMIT:
        return list(values)
    digest = hashlib.sha1(json.dumps(values).encode()).hexdigest()[:16]
    return f"{len(values)} items, sha1 {digest}"


def source_print(source: Any) -> dict[str, Any] | None:
    """A source's cheap identity: its sets, their sizes, and its own fingerprint."""
    if source is None:
        return None
    return {
        "set_nums": compact(source.set_nums),
        "set_sizes": compact(source.set_sizes),
        **source.fingerprint(),
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
    if isinstance(saved, list) and isinstance(current, list) and len(saved) == len(current):
        return [
            d
            for k, (a, b) in enumerate(zip(saved, current))
            for d in differences(a, b, f"{path}[{k}]")
        ]
    if saved != current:
        return [f"{path}: saved {saved!r}, this generator has {current!r}"]
    return []


def check_loadable(state: Any, fingerprint: dict[str, Any]) -> None:
    """ValueError unless `state` is a state dict of this version taken with `fingerprint`."""
    if not isinstance(state, dict) or "version" not in state:
        keys = sorted(map(str, state))[:12] if isinstance(state, dict) else None
        received = f"a dict with keys {keys}" if keys is not None else describe(state)
        raise ValueError(
            "Not a DataGenerator state dict (no 'version' key): pass what "
            f"DataGenerator.state_dict() returned. Received: state={received}"
        )
    if state["version"] != STATE_VERSION:
        raise ValueError(
            f"DataGenerator state version {state['version']!r} is not supported; this trainkit "
            f"reads version {STATE_VERSION}."
        )
    # JSON turns tuples into lists; compare in that form.
    current = json.loads(json.dumps(fingerprint))
    diffs = differences(state["fingerprint"], current)
    if diffs:
        raise ValueError(
            "This state dict was taken from other data or settings and cannot be loaded: "
            + "; ".join(diffs)
            + ". Build the DataGenerator with the same data and settings."
        )
