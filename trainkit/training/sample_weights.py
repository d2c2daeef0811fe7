"""Sample weights of a slice: class weights times the slice's position weight.

The weight the step receives for sample j of slice i (of `S` slices in its batch) is

    w[j] = class_weight(label_j) * slice_weight(i)

* `class_weight(label)` is `class_weights.get(c, 1.0)` for the sample's class `c`,
  read as Keras reads it (`keras` `class_weight=`): one-hot labels `(n, k)` with
  `k > 1` give `argmax`; binary or sparse labels `(n,)` / `(n, 1)` are rounded to int.
  Classes missing from the dict weigh 1.0.
* `slice_weight(i)` with `loss_weighted_slices_range=(a, b)` is
  `np.linspace(a, b, S)[i]`: `a + (b - a) * i / (S - 1)`, so `a` for the first slice
  and `b` for the last; a batch of one slice gets `a`. Without the option it is 1.

When neither option is set the step gets no sample weights at all (Keras' unweighted
path), so the numbers equal those of an unweighted `model.fit`.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

_CLASS_WEIGHTS_TYPE = (
    "`{name}` must be a dict mapping class indices (int) to weights (float >= 0), "
    "e.g. {{0: 1.0, 1: 5.0}}, or None. Received: {name}={value!r}"
)


def check_class_weights(name: str, value: Any) -> dict[int, float] | None:
    """None, or a `{class: weight}` dict with int keys and finite weights >= 0."""
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        raise TypeError(_CLASS_WEIGHTS_TYPE.format(name=name, value=value))
    checked: dict[int, float] = {}
    for key, weight in value.items():
        if not isinstance(key, numbers.Integral) or isinstance(key, bool) or key < 0:
            raise TypeError(_CLASS_WEIGHTS_TYPE.format(name=name, value=value))
        if not isinstance(weight, numbers.Real) or isinstance(weight, bool):
            raise TypeError(_CLASS_WEIGHTS_TYPE.format(name=name, value=value))
        if not np.isfinite(float(weight)) or weight < 0:
            raise ValueError(
                f"`{name}` weights must be finite and >= 0. Received: {name}={value!r}"
            )
        checked[int(key)] = float(weight)
    return checked


def check_weight_range(name: str, value: Any) -> tuple[float, float] | None:
    """None, or a pair `(first, last)` of finite floats >= 0, not both 0."""
    if value is None:
        return None
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)
    ):
        raise TypeError(
            f"`{name}` must be a pair (first, last) of weights, e.g. (0.5, 1.5), or None. "
            f"Received: {name}={value!r}"
        )
    first, last = float(value[0]), float(value[1])
    if not (np.isfinite(first) and np.isfinite(last)) or min(first, last) < 0 or first == last == 0:
        raise ValueError(
            f"`{name}` weights must be finite, >= 0 and not both 0. Received: {name}={value!r}"
        )
    return first, last


def slice_weight(weight_range: tuple[float, float] | None, slice_idx: int, slices: int) -> float:
    """`np.linspace(first, last, slices)[slice_idx]`; 1.0 without a range."""
    if weight_range is None:
        return 1.0
    first, last = weight_range
    if slices <= 1:
        return first
    return first + (last - first) * slice_idx / (slices - 1)


def class_indices(labels: Any) -> np.ndarray:
    """Each sample's class as Keras' `class_weight` reads it (see module docstring)."""
    y = np.asarray(labels)
    if y.ndim > 1 and y.shape[-1] != 1:
        y = y.argmax(axis=-1)
    elif y.ndim > 1:
        y = y[..., 0]
    if y.ndim != 1:
        raise ValueError(
            "Class weights need one class per sample: labels of shape (n,), (n, 1) or "
            f"one-hot (n, k). Received: labels of shape {np.shape(labels)}"
        )
    return np.rint(y).astype(np.int64)


def class_weight_vector(class_weights: dict[int, float], labels: Any) -> np.ndarray:
    """Per-sample weights `class_weights.get(class, 1.0)`, as float32."""
    classes = class_indices(labels)
    table = np.ones(max(max(class_weights), int(classes.max(initial=0))) + 1, np.float32)
    for key, weight in class_weights.items():
        table[key] = weight
    if classes.size and classes.min() < 0:
        raise ValueError(
            f"Class weights need class indices >= 0. Received: a label of {classes.min()}"
        )
    return table[classes]


def sample_weights(
    labels: Any,
    num: int,
    class_weights: dict[int, float] | None,
    weight_range: tuple[float, float] | None,
    slice_idx: int,
    slices: int,
) -> np.ndarray | None:
    """The slice's sample weights (module docstring), or None when both options are off."""
    if class_weights is None and weight_range is None:
        return None
    if class_weights is not None:
        if labels is None:
            raise ValueError(
                "Class weights need labels, but the generator serves none (y is None)."
            )
        weights = class_weight_vector(class_weights, labels)
    else:
        weights = np.ones(num, np.float32)
    return weights * np.float32(slice_weight(weight_range, slice_idx, slices))


def slice_sample_weights(
    datagen: Any,
    x: Any,
    labels: Any,
    class_weights: dict[int, float] | None,
    weight_range: tuple[float, float] | None,
) -> np.ndarray | None:
    """`sample_weights` for the generator's current slice."""
    if class_weights is None and weight_range is None:
        return None
    from trainkit.training.steps import num_samples

    return sample_weights(
        labels, num_samples(x), class_weights, weight_range,
        int(datagen.slice_idx), int(datagen.slices_per_batch),
    )  # fmt: skip
