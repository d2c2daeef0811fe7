"""Stable descriptions of setting values: the same text in every process.

A run folder's name and a checkpoint's recorded settings must not depend on where an
object happens to live in memory: `repr(Adam(4e-4))` holds an address, so a run named
or compared by it could never be resumed in a new process. Values are described by
what they are instead: functions and classes by their qualified names, objects with
`get_config()` (Keras optimizers, layers, losses, initializers) by class name and
config, other objects by class name.
"""

from __future__ import annotations

import contextlib
import numbers
from typing import Any

import numpy as np

_DEPTH_LIMIT = 8  # configs nest (an optimizer holding a schedule); deeper is a class name


def qualified_name(value: Any) -> str:
    """`module.QualName` of a function or class (`'keras.activations.relu'`)."""
    module = getattr(value, "__module__", None) or ""
    name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
    name = name or type(value).__qualname__
    return f"{module}.{name}" if module and module != "builtins" else name


def describe(value: Any, _depth: int = 0) -> Any:
    """A JSON value that describes `value` the same way in every process.

    Plain JSON values are kept (tuples become lists, dict keys strings, NumPy scalars
    Python numbers); a function or class becomes `{'callable': 'module.name'}`; an
    object with `get_config()` becomes `{'class': 'module.Name', 'config': {...}}`; any
    other object `{'class': 'module.Name'}`. The `name` in a config is left out.

    Example: `describe({'optimizer': keras.optimizers.Adam(4e-4), 'act': keras.activations.relu})`
    gives `{'optimizer': {'class': 'keras.src.optimizers.adam.Adam', 'config': {...}},
    'act': {'callable': 'keras.src.activations.activations.relu'}}`.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (numbers.Integral, np.integer)):
        return int(value)
    if isinstance(value, (numbers.Real, np.floating)):
        return float(value)
    if _depth > _DEPTH_LIMIT:
        return {"class": qualified_name(type(value))}
    if isinstance(value, dict):
        return {str(key): describe(item, _depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [describe(item, _depth + 1) for item in value]
    if isinstance(value, np.ndarray):
        return {"class": "numpy.ndarray", "shape": list(value.shape), "dtype": str(value.dtype)}
    if _is_named_callable(value):
        return {"callable": qualified_name(value)}
    described: dict[str, Any] = {"class": qualified_name(type(value))}
    get_config = getattr(value, "get_config", None)
    if callable(get_config):
        with contextlib.suppress(Exception):  # a config that cannot be read is left out
            config = dict(get_config())
            # Keras numbers default names per process ('adam', 'adam_1', ...); a name
            # changes nothing that is trained, so it is left out.
            config.pop("name", None)
            described["config"] = describe(config, _depth + 1)
    return described


def _is_named_callable(value: Any) -> bool:
    """A function, method or class (instances have no `__qualname__` of their own)."""
    return isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__"))


def short_name(value: Any) -> str:
    """A short, address-free label for a run folder's name (`'Adam'`, `'relu'`, `'0.001'`)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (numbers.Integral, np.integer)):
        return str(int(value))
    if isinstance(value, (numbers.Real, np.floating)):
        return f"{float(value):.3g}"
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return "x".join(short_name(item) for item in value)
    if isinstance(value, dict):
        return "x".join(f"{key}{short_name(item)}" for key, item in value.items())
    if _is_named_callable(value):
        return str(getattr(value, "__name__", type(value).__name__))
    return type(value).__name__
