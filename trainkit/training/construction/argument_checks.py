"""`TrainGenerator`'s own arguments, checked when the trainer is built.

The model, the generators (with a hint where `model.fit` habits pass arrays, a tuple,
a `tf.data.Dataset` or a `PyDataset`), the names of the run's files, the seed and the run
folders: types and ranges, with errors that say what was received and what is expected.
`explicit_arguments` records which keywords the caller passed, so that on resume a
passed argument beats the saved value. The other checks of construction sit beside this
module (see `trainkit.training.construction`).
"""

from __future__ import annotations

import functools
import os
from typing import Any

from trainkit._validation import check_int, describe
from trainkit.data.sources.indexed import is_py_dataset, py_dataset_batch_size


def check_model(model: Any) -> None:
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: model={model!r}")
    if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", True):
        raise ValueError(
            "`model` must be compiled: call model.compile(optimizer, loss, metrics) "
            f"before building the TrainGenerator. Received: model={model.name!r}"
        )


_TUPLE_AS_DATAGEN = (
    " A tuple of arrays is the model.fit habit; trainkit serves them through a generator: "
    "TrainGenerator(model, DataGenerator(data=x, labels=y, batch_size=...))."
)
_TF_DATASET_AS_DATAGEN = (
    " A tf.data.Dataset cannot resume exactly: it has no random access (batch i is reached "
    "only by iterating through the batches before it), so trainkit can neither serve the "
    "batches of its epoch plan (shuffled, sharded) nor restart mid-epoch. Give trainkit "
    "what the dataset reads instead: arrays or files, DataGenerator(data=x, labels=y, "
    "batch_size=...), or an object with __len__ and __getitem__ (a keras.utils.PyDataset, "
    "or one sample per index) as DataGenerator(data=source, batch_size=...); put the "
    "dataset's map() augmentation in a trainkit Preprocessor."
)
_PY_DATASET_AS_DATAGEN = (
    " Wrap the PyDataset in a DataGenerator, which serves its batch i as set str(i) and "
    "resumes exactly: TrainGenerator(model, DataGenerator(data=py_dataset, "
    "batch_size=<its batch size>))."
)


def check_datagen(name: str, datagen: Any, required: bool) -> None:
    if datagen is None and not required:
        return
    needed = ("get", "update_state", "on_epoch_end", "state_dict")
    if not all(callable(getattr(datagen, attr, None)) for attr in needed):
        raise TypeError(
            f"`{name}` must be a trainkit.DataGenerator (or follow its protocol: "
            f"{', '.join(needed)}).{_datagen_hint(datagen)} Received: {name}={describe(datagen)}"
        )


def _datagen_hint(datagen: Any) -> str:
    """How to turn what was passed as `datagen` into a DataGenerator."""
    if hasattr(datagen, "shape") and hasattr(datagen, "dtype"):
        return (
            " TrainGenerator takes generators, not arrays (the model.fit habit): wrap "
            "them, e.g. TrainGenerator(model, DataGenerator(data=x, labels=y, "
            "batch_size=32), DataGenerator(data=x_val, labels=y_val))."
        )
    if isinstance(datagen, (tuple, list)) and len(datagen) in (2, 3):
        return _TUPLE_AS_DATAGEN
    if any(cls.__name__.endswith("DatasetV2") or cls.__name__ == "DatasetV1"
           for cls in type(datagen).__mro__):  # fmt: skip
        return _TF_DATASET_AS_DATAGEN
    if is_py_dataset(datagen):
        return _PY_DATASET_AS_DATAGEN
    return ""


def as_datagen(name: str, datagen: Any) -> Any:
    """`datagen`, or a DataGenerator over it when it is a `keras.utils.PyDataset`.

    The PyDataset's batch i is set str(i) and its first batch's size is the batch size,
    so the wrapped generator serves its batches as they are, in order, resuming exactly.
    """
    if datagen is None or not is_py_dataset(datagen):
        return datagen
    from trainkit.data import DataGenerator

    return DataGenerator(data=datagen, batch_size=py_dataset_batch_size(datagen, name))


def check_names(max_checkpoints: Any, model_configs: Any, model_base_name: Any) -> None:
    check_int("max_checkpoints", max_checkpoints, minimum=1)
    if model_configs is not None and not isinstance(model_configs, dict):
        raise TypeError(
            "`model_configs` must be a dict or None. "
            f"Received: model_configs={describe(model_configs)}"
        )
    if not isinstance(model_base_name, str) or not model_base_name:
        raise TypeError(
            "`model_base_name` must be a non-empty str. "
            f"Received: model_base_name={model_base_name!r}"
        )


def check_seed(seed: Any) -> int | None:
    """None, or an int that `keras.utils.set_random_seed` takes (NumPy's limit: < 2**32)."""
    return None if seed is None else check_int("seed", seed, minimum=0, maximum=2**32 - 1)


def explicit_arguments(init: Any) -> Any:
    """Record which keyword arguments the caller passed (`self._explicit`).

    On resume an explicitly passed argument beats the saved value, which beats the
    default; defaults alone cannot tell "passed" from "not passed".
    """

    @functools.wraps(init)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        self._explicit = set(kwargs)
        init(self, *args, **kwargs)

    return wrapper


def check_run_args(logs_dir: Any, best_models_dir: Any, resume: Any) -> None:
    for name, value in (("logs_dir", logs_dir), ("best_models_dir", best_models_dir)):
        _check_folder(name, value)
    if not isinstance(resume, (bool, str, os.PathLike)):
        raise TypeError(
            "`resume` must be False, True (the newest run in logs_dir) or the path of a run or "
            f"checkpoint folder. Received: resume={resume!r}"
        )
    if resume is not False and logs_dir is None:
        raise ValueError(
            "`resume` needs `logs_dir`: checkpoints live in run folders under it. "
            f"Received: resume={resume!r}, logs_dir=None"
        )


def _check_folder(name: str, value: Any) -> None:
    """None, or a path that is a folder or can become one (nothing is created here)."""
    if value is None:
        return
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"`{name}` must be a folder path or None. Received: {name}={value!r}")
    path = os.fspath(value)
    if not path:
        raise ValueError(
            f"`{name}` must name a folder; an empty string names none. Pass a path such as "
            f"'logs', or None for no run folder. Received: {name}={value!r}"
        )
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(
            f"`{name}` is a file, not a folder: runs are folders inside it. Pass a folder "
            f"path (it is created if missing). Received: {name}={value!r}"
        )
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ValueError(
            f"`{name}` cannot be created: {parent!r} is a file, not a folder. "
            f"Received: {name}={value!r}"
        )
