"""Evaluate mode's means as `model.evaluate` takes them: each metric by its own mass.

`model.evaluate` keeps one running mean per metric over every batch. What a batch adds
to it differs between metrics:

* the loss and the per-output losses, and `metrics=` (unweighted), count the batch's
  rows;
* `weighted_metrics=` count the batch's weight mass, `sum_rows mean_steps(w)`: per-sample
  weights `(n,)` count `sum(w)`; per-point weights `(n, t)` (a padding mask) count
  `sum(w) / t`, the batch's real points over its padded length.

Averaging every metric by rows, as one weight per batch does, gives a weighted metric
that is not `model.evaluate`'s when batches differ in weight mass (clouds of 2 and 10
points, padded per batch). Validation therefore adds, beside each weighted metric's
value, its mass (`encode`), so that the means of both give the pooled value (`decode`):
`sum_b m_b v_b / sum_b m_b`, what `model.evaluate` reports on the same batches.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MASS_PREFIX = "__trainkit_mass__/"  # never logged: `decode` removes these entries


def weighted_metric_outputs(model: Any) -> dict[str, int]:
    """The logged names of the model's `weighted_metrics`, with each one's output index.

    Names follow Keras' `CompileMetrics.result()`: `<output>_<metric>`, and
    `weighted_<metric>` when the name is taken by an unweighted metric.
    """
    compiled = getattr(model, "_compile_metrics", None)
    if compiled is None or not getattr(compiled, "built", False):
        return {}
    taken: set[str] = set()
    for metrics in getattr(compiled, "_flat_metrics", None) or []:
        for metric in metrics.metrics if metrics else []:
            taken.add(_name(metric.name, metrics.output_name))
    found: dict[str, int] = {}
    weighted = getattr(compiled, "_flat_weighted_metrics", None) or []
    for index, metrics in enumerate(weighted):
        for metric in metrics.metrics if metrics else []:
            name = _name(metric.name, metrics.output_name)
            if name in taken:
                name = _name(f"weighted_{metric.name}", metrics.output_name)
            taken.add(name)
            found[name] = index
    return found


def _name(metric: str, output: str | None) -> str:
    return f"{output}_{metric}" if output else metric


def weight_mass(weights: Any) -> float:
    """`sum_rows mean_steps(w)`: what a batch adds to a weighted mean's count in Keras."""
    w = np.asarray(weights, np.float64)
    if w.ndim == 0:
        return float(w)
    return float(w.reshape(len(w), -1).mean(axis=1).sum()) if w.size else 0.0


def metric_masses(model: Any, logs: dict[str, float], weights: Any) -> dict[str, float]:
    """Each weighted metric's mass in this slice (`weights` as passed to the step)."""
    if weights is None:
        return {}
    outputs = weighted_metric_outputs(model)
    if not outputs:
        return {}
    names = getattr(model._compile_metrics, "_resolved_output_names", None)
    per_output = _per_output(names, weights, 1 + max(outputs.values()))
    return {name: weight_mass(per_output[i]) for name, i in outputs.items() if name in logs}


def _per_output(names: list[str] | None, weights: Any, count: int) -> list[Any]:
    """The weights in the order Keras' metrics take them (`CompileMetrics._flatten_y`),
    one array repeated for every output when one is given."""
    if isinstance(weights, dict):
        flat = [weights[name] for name in (names or sorted(weights))]
    elif isinstance(weights, (list, tuple)):
        flat = list(weights)
    else:
        flat = [weights]
    return flat + [flat[0]] * (count - len(flat))


def encode(logs: dict[str, float], masses: dict[str, float], rows: float) -> dict[str, float]:
    """Logs to add to a row-weighted mean (weight `rows`) so that `decode` gives each
    weighted metric's mass-weighted mean."""
    if not masses or not rows:
        return logs
    encoded = dict(logs)
    for name, mass in masses.items():
        encoded[name] = logs[name] * mass / rows
        encoded[MASS_PREFIX + name] = mass / rows
    return encoded


def decode(means: dict[str, float]) -> dict[str, float]:
    """The metric values of means of `encode`d logs (the mass entries removed)."""
    decoded = {name: value for name, value in means.items() if not name.startswith(MASS_PREFIX)}
    for name, value in means.items():
        if name.startswith(MASS_PREFIX):
            metric = name[len(MASS_PREFIX) :]
            decoded[metric] = decoded[metric] / value if value else 0.0
    return decoded
