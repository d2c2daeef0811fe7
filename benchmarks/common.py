"""What every benchmark shares: interleaved best-of rounds, result rows, one table.

Each `bench_*.py` that takes part in `run_all.py` exposes `rows(quick: bool) -> list[Row]`
and may still be run alone. Figures are compared within one run only: these machines are
shared and noisy, so every row carries a ratio against a baseline measured in the same
run, with rounds interleaved so that a slow moment hits every runner alike.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Row:
    """One line of the table.

    Attributes:
        bench: which benchmark (`'loader: directory'`, `'overlap'`, ...).
        runner: what was measured (`'DataGenerator prefetch=2'`).
        value: the measured figure (higher is better unless `unit` says otherwise).
        unit: what `value` counts (`'batches/s'`, `'MB'`).
        ratio: `value` against the bench's baseline in the same run (None for the baseline
            itself or where no ratio is meaningful).
        target: the target as text (`'>= 0.95x'`), or '' when none is set.
        met: whether the target is met (None without a target).
    """

    bench: str
    runner: str
    value: float
    unit: str
    ratio: float | None = None
    target: str = ""
    met: bool | None = None


def interleaved_best(
    runners: dict[Any, Callable[[], float]], rounds: int, warmup: int = 1, shuffle: bool = False
) -> dict[Any, float]:
    """Each runner's best rate over `rounds`, the runners interleaved round by round.

    A runner does one unit of work and returns how many items it processed; the rate is
    items per second. `warmup` untimed rounds run first (tracing, page cache). With
    `shuffle`, each round runs the runners in another order (seeded): in the train loop
    bench a runner that always followed the same one paid for what that one left behind
    (the runner after `train_on_batch` measured 5-8 % slower whichever it was). The
    loader benches keep their fixed order: there the order decides what the page cache
    holds, and their figures and notes are for that order.
    """
    for _ in range(warmup):
        for run in runners.values():
            run()
    best = dict.fromkeys(runners, 0.0)
    shuffler = random.Random(0)
    for _ in range(rounds):
        order = list(runners.items())
        if shuffle:
            shuffler.shuffle(order)
        for name, run in order:
            start = time.perf_counter()
            items = run()
            rate = items / (time.perf_counter() - start)
            best[name] = max(best[name], rate)
    return best


def ratio_rows(
    bench: str,
    rates: dict[str, float],
    baseline: str,
    unit: str,
    targets: dict[str, float] | None = None,
) -> list[Row]:
    """Rows for `rates`, each with its ratio to `rates[baseline]` and its target (a minimum)."""
    targets = targets or {}
    out = []
    for name, value in rates.items():
        ratio = None if name == baseline else value / rates[baseline]
        minimum = targets.get(name)
        out.append(
            Row(
                bench,
                name,
                value,
                unit,
                ratio,
                target="" if minimum is None else f">= {minimum:g}x",
                met=None if minimum is None or ratio is None else ratio >= minimum,
            )
        )
    return out


def one_more_epoch(trainer: Any) -> Callable[[], float]:
    """A runner that trains `trainer` one epoch further and returns the slices it fit."""

    def run_epoch() -> float:
        before = trainer.iters_fit
        trainer.epochs += 1
        trainer.train()
        return trainer.iters_fit - before

    return run_epoch


def table(rows: list[Row]) -> str:
    """The rows as one Markdown table."""
    lines = [
        "| benchmark | runner | value | × baseline | target | met |",
        "| --- | --- | ---: | ---: | --- | --- |",
    ]
    for row in rows:
        ratio = "baseline" if row.ratio is None else f"{row.ratio:.2f}"
        met = {None: "", True: "yes", False: "**no**"}[row.met]
        lines.append(
            f"| {row.bench} | {row.runner} | {row.value:,.1f} {row.unit} | {ratio} "
            f"| {row.target} | {met} |"
        )
    return "\n".join(lines)
