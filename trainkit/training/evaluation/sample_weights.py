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

A preprocessor may serve weights of its own, `(x, y, sample_weight)` (per sample
`(n,)`, or per timestep `(n, t)` such as a padding mask); they multiply the weights
above: `w[j] = served[j] * class_weight(label_j) * slice_weight(i)`. With per-timestep
weights the classes are read per timestep too when the labels are per timestep
(`(n, t)` sparse, `(n, t, 1)`, or one-hot `(n, t, k)`): `w[j, s] = served[j, s] *
class_weight(label_js) * slice_weight(i)`; per-sample labels broadcast over the timesteps.

Several outputs: `class_weights` is either one `{class: weight}` dict, applied to every
output's labels, or `{output_name: {class: weight}}`, naming the outputs to weigh
(outputs left out get class weight 1). The step then receives one weight array per
output, in the labels' structure (a dict by output name, or a tuple in output order), as
Keras takes `sample_weight` for several outputs. Served weights may be one array (every
output) or that structure.

When no option is set and the preprocessor serves no weights, the step gets no sample
weights at all (Keras' unweighted path), so the numbers equal those of an unweighted
`model.fit`.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

_CLASS_WEIGHTS_TYPE = (
    "`{name}` must be a dict mapping class indices (int) to weights (float >= 0), "
    "e.g. {{0: 1.0, 1: 5.0}}, for a model with several outputs optionally one such dict "
    "per output name, e.g. {{'out1': {{0: 1.0, 1: 5.0}}}}, or None. "
    "Received: {name}={value!r}"
)

ClassWeights = dict[int, float]
# `{class: weight}` for every output, or `{output_name: {class: weight}}`.
AnyClassWeights = dict[int, float] | dict[str, dict[int, float]]


def check_class_weights(name: str, value: Any) -> AnyClassWeights | None:
    """None, a `{class: weight}` dict (int keys, finite weights >= 0), or one per output.

    Output names are checked against the model before training (`preflight`).
    """
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        raise TypeError(_CLASS_WEIGHTS_TYPE.format(name=name, value=value))
    if all(isinstance(key, str) for key in value):
        if not all(isinstance(table, dict) for table in value.values()):
            raise TypeError(_CLASS_WEIGHTS_TYPE.format(name=name, value=value))
        return {key: _check_table(name, table, value) for key, table in value.items()}
    return _check_table(name, value, value)


def is_per_output(class_weights: Any) -> bool:
    """`{output_name: {class: weight}}` rather than one `{class: weight}`."""
    return isinstance(class_weights, dict) and any(isinstance(k, str) for k in class_weights)


def _check_table(name: str, value: Any, given: Any) -> dict[int, float]:
    if not isinstance(value, dict) or not value:
        raise TypeError(_CLASS_WEIGHTS_TYPE.format(name=name, value=given))
    checked: dict[int, float] = {}
    for key, weight in value.items():
        if not isinstance(key, numbers.Integral) or isinstance(key, bool) or key < 0:
            raise TypeError(_CLASS_WEIGHTS_TYPE.format(name=name, value=given))
        if not isinstance(weight, numbers.Real) or isinstance(weight, bool):
            raise TypeError(_CLASS_WEIGHTS_TYPE.format(name=name, value=given))
        if not np.isfinite(float(weight)) or weight < 0:
            raise ValueError(
                f"`{name}` weights must be finite and >= 0. Received: {name}={given!r}"
            )
        checked[int(key)] = float(weight)
    return checked


def check_weight_range(name: str, value: Any) -> Any:
    """None, or a pair `(first, last)` of finite floats >= 0, not both 0.

    `pred_weighted_slices_range` also takes `'last'` (each sample scored on its batch's
    last slice only, `prediction.LAST_SLICE`).
    """
    if value is None:
        return None
    if name == "pred_weighted_slices_range" and value == "last":
        return "last"
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)
    ):
        raise TypeError(
            f"`{name}` must be a pair (first, last) of weights, e.g. (0.5, 1.5), "
            + ("'last', " if name == "pred_weighted_slices_range" else "")
            + f"or None. Received: {name}={value!r}"
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


def class_indices(labels: Any, per_timestep: bool = False) -> np.ndarray:
    """Each sample's class as Keras' `class_weight` reads it (see module docstring).

    `per_timestep`: labels `(n, t)`, `(n, t, 1)` or one-hot `(n, t, k)` give `(n, t)`.
    """
    y = np.asarray(labels)
    if per_timestep:
        if y.ndim == 3:
            y = y[..., 0] if y.shape[-1] == 1 else y.argmax(axis=-1)
        return np.rint(y).astype(np.int64)
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


def class_weight_vector(
    class_weights: dict[int, float], labels: Any, per_timestep: bool = False
) -> np.ndarray:
    """Per-sample (or per-timestep) weights `class_weights.get(class, 1.0)`, as float32."""
    classes = class_indices(labels, per_timestep)
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
    class_weights: AnyClassWeights | None,
    weight_range: tuple[float, float] | None,
    slice_idx: int,
    slices: int,
    served: Any = None,
    names: list[str] | None = None,
) -> Any:
    """The slice's sample weights (module docstring), or None when nothing weighs.

    Args:
        labels: the slice's labels (an array, or a dict/tuple per output).
        num: the slice's samples.
        served: the weights the preprocessor served, or None.
        names: the model's output names when it has several, else None.
    """
    if class_weights is None and weight_range is None:
        return served
    factor = np.float32(slice_weight(weight_range, slice_idx, slices))
    if class_weights is None:
        if served is None:
            return np.ones(num, np.float32) * factor
        return _map(lambda w: np.asarray(w, np.float32) * factor, served)
    if labels is None:
        raise ValueError("Class weights need labels, but the generator serves none (y is None).")
    if names is None and not is_per_output(class_weights):
        return _weigh(labels, class_weights, served, num) * factor  # type: ignore[arg-type]
    return _per_output(labels, class_weights, served, num, names, factor)


def _map(function: Any, structure: Any) -> Any:
    if isinstance(structure, dict):
        return {key: function(value) for key, value in structure.items()}
    if isinstance(structure, (list, tuple)):
        return type(structure)(function(value) for value in structure)
    return function(structure)


def _weigh(labels: Any, table: dict[int, float] | None, served: Any, num: int) -> np.ndarray:
    """Served weights times class weights of one output's labels (float32)."""
    base = np.ones(num, np.float32) if served is None else np.asarray(served, np.float32)
    if table is None:
        return base
    per_timestep = base.ndim == 2 and np.ndim(labels) >= 2 and np.shape(labels)[:2] == base.shape
    weights = class_weight_vector(table, labels, per_timestep)
    if weights.ndim < base.ndim:
        weights = weights.reshape(weights.shape + (1,) * (base.ndim - weights.ndim))
    return base * weights


def _per_output(
    labels: Any, class_weights: Any, served: Any, num: int, names: list[str] | None, factor: Any
) -> Any:
    """One weight array per output, in the labels' structure."""
    from trainkit.training.slices.structure import output_items

    if names is None:
        raise ValueError(
            "Class weights per output name need a model with several named outputs. "
            f"Received: class_weights with keys {sorted(class_weights)}"
        )
    per_output = is_per_output(class_weights)
    weights = {}
    for index, (name, member) in enumerate(output_items(names, labels)):
        table = class_weights.get(name) if per_output else class_weights
        own = served
        if isinstance(served, dict):
            own = served.get(name)
        elif isinstance(served, (list, tuple)):
            own = served[index]
        try:
            weights[name] = _weigh(member, table, own, num) * factor
        except ValueError as error:
            raise ValueError(
                f"{error} (labels of output {name!r}). To weigh only some outputs, key "
                f"the class weights by output name: {{{name!r}: {{0: 1.0, 1: 2.0}}}}."
            ) from None
    if isinstance(labels, dict):
        return weights
    return tuple(weights[name] for name in names)  # type: ignore[index]


def slice_sample_weights(
    datagen: Any,
    x: Any,
    labels: Any,
    class_weights: AnyClassWeights | None,
    weight_range: tuple[float, float] | None,
    served: Any = None,
    names: list[str] | None = None,
) -> Any:
    """`sample_weights` for the generator's current slice (`served`: the preprocessor's)."""
    if class_weights is None and weight_range is None:
        return served
    from trainkit.training.slices.steps import num_samples

    return sample_weights(
        labels, num_samples(x), class_weights, weight_range,
        int(datagen.slice_idx), int(datagen.slices_per_batch), served, names,
    )  # fmt: skip
