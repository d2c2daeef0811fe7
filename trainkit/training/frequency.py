"""Frequencies: one-key dicts such as `{'epoch': 1}` or `{'iter': 100}`.

An action fires when its global counter (`iters_fit`, `batches_fit`, `epoch`,
`times_validated`) reaches a multiple of `n`, at most once per point in the loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trainkit._validation import check_int, closest

COUNTERS = {"iter": "iters_fit", "batch": "batches_fit", "epoch": "epoch", "val": "times_validated"}


@dataclass(frozen=True)
class Frequency:
    """A validated frequency: fire every `n` of `unit` (`'iter'|'batch'|'epoch'|'val'`)."""

    unit: str
    n: int

    def due(self, counter: int) -> bool:
        """True when `counter` (the unit's global counter) is a positive multiple of n."""
        return counter > 0 and counter % self.n == 0


def parse_frequency(name: str, value: Any, units: tuple[str, ...]) -> Frequency | None:
    """Validate a frequency argument; None means never.

    Raises:
        TypeError: `value` is not a dict or None.
        ValueError: not exactly one key, an unknown unit, or a non-positive count.
    """
    if value is None:
        return None
    example = f"{{{units[0]!r}: 1}}"
    if not isinstance(value, dict) or len(value) != 1:
        raise (ValueError if isinstance(value, dict) else TypeError)(
            f"`{name}` must be None or a dict with one key out of {list(units)}, "
            f"e.g. {example}. Received: {name}={value!r}"
        )
    ((unit, n),) = value.items()
    if unit not in units:
        hint = closest(str(unit), units)
        suggestion = f" Did you mean {hint!r}?" if hint else ""
        raise ValueError(
            f"`{name}` has an unknown unit {unit!r}.{suggestion} Valid units are "
            f"{list(units)}. Received: {name}={value!r}"
        )
    return Frequency(unit, check_int(f"{name}[{unit!r}]", n, minimum=1))
