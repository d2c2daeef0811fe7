"""The gradient-norm panel: the global and the largest per-variable norm over iters."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any


def global_norm(norms: Mapping[str, float]) -> float:
    """The norm of all gradients as one vector: sqrt of the sum of squared norms."""
    return math.sqrt(sum(float(value) ** 2 for value in norms.values()))


def draw_gradient_norms(ax: Any, records: Sequence[Mapping[str, Any]]) -> None:
    """Plot the global and the largest per-variable gradient norm of each record.

    Use it on records of `introspection.jsonl` (`trainkit.introspection.read_introspection`),
    on any matplotlib `Axes`. The y axis is logarithmic: norms span orders of magnitude.
    A record whose norms are not all finite is drawn as a crimson vertical line, since a
    log axis cannot show it; records without `gradient_norms` are skipped.

    Args:
        ax: the matplotlib `Axes` to draw on.
        records: dicts with `iter` (the x position) and `gradient_norms`
            (`{variable path: norm}`).

    Example:
        >>> fig = Figure(); ax = fig.subplots()
        >>> draw_gradient_norms(ax, read_introspection(tg.run_dir))
    """
    iters, totals, largest, bad = [], [], [], []
    for record in records:
        norms = record.get("gradient_norms")
        if not norms:
            continue
        total = global_norm(norms)
        if not math.isfinite(total):
            bad.append(record["iter"])
            continue
        iters.append(record["iter"])
        totals.append(total)
        largest.append(max(float(value) for value in norms.values()))
    ax.plot(iters, totals, color="tab:blue", marker=".", linewidth=1.4, label="global norm")
    ax.plot(iters, largest, color="tab:orange", marker=".", linewidth=1, label="largest variable")
    for k, x in enumerate(bad):
        label = "non-finite gradient" if k == 0 else None
        ax.axvline(x, color="crimson", linewidth=1, alpha=0.7, label=label)
    if totals:
        ax.set_yscale("log", nonpositive="mask")
    ax.set_xlabel("iters fit")
    ax.set_ylabel("gradient norm")
    ax.grid(alpha=0.3)
    if iters or bad:
        ax.legend(loc="best", fontsize=9, framealpha=0.85)
