"""What a model with stateful layers needs of its generators: full batches.

A stateful layer keeps a state per row of a fixed batch size, so a generator that serves
a partial batch is refused before training (a partial validation batch is allowed with
`pad_val_batches=True`, which pads it), and states that are never reset are warned of.
"""

from __future__ import annotations

import warnings
from typing import Any

_PARTIAL_BATCH_WITH_STATEFUL = (
    "The model has stateful layers ({layers}), which need every batch to hold "
    "exactly batch_size={batch_size} samples, but `{name}` serves a partial batch of "
    "{size} samples. Build the generator with `drop_remainder=True` (or pick a "
    "batch_size that divides the number of samples){pad}. Received: {name}={datagen!r}"
)
_PAD_HINT = {"val_datagen": ", or pass `pad_val_batches=True` to score every sample"}
_STATEFUL_WITHOUT_RESET = (
    "The model has stateful layers ({layers}) and reset_statefuls=False: their states "
    "carry over from batch to batch and are never reset by the trainer. Pass "
    "`reset_statefuls=True` to reset them after the last slice of each batch."
)


def check_stateful_data(
    layers: list[Any],
    datagen: Any,
    val_datagen: Any,
    reset_statefuls: bool,
    pad_val_batches: bool = False,
) -> None:
    """Refuse partial batches for stateful models; warn when states are never reset.

    With `pad_val_batches=True` a partial validation batch is allowed (it is padded).
    """
    if not layers:
        return
    names = ", ".join(layer.name for layer in layers)
    for name, generator in (("datagen", datagen), ("val_datagen", val_datagen)):
        if name == "val_datagen" and pad_val_batches:
            continue  # padded to full batches (evaluation.padding)
        _refuse_partial_batches(names, name, generator, _PAD_HINT.get(name, ""))
    if not reset_statefuls:
        warnings.warn(_STATEFUL_WITHOUT_RESET.format(layers=names), stacklevel=4)


def check_stateful_pass(layers: list[Any], datagen: Any, pad_val_batches: bool) -> None:
    """`tg.evaluate(datagen)` / `tg.predict(datagen)`: full batches, or padding on."""
    if layers and not pad_val_batches:
        names = ", ".join(layer.name for layer in layers)
        _refuse_partial_batches(names, "datagen", datagen, _PAD_HINT["val_datagen"])


def _refuse_partial_batches(layers: str, name: str, generator: Any, pad_hint: str) -> None:
    """A stateful model needs every batch of `generator`'s epoch to be full."""
    if generator is None or not hasattr(generator, "plan"):
        return
    for batch in generator.plan(generator.epoch):
        if batch.size != generator.batch_size:
            raise ValueError(
                _PARTIAL_BATCH_WITH_STATEFUL.format(
                    layers=layers, batch_size=generator.batch_size, name=name,
                    size=batch.size, datagen=generator, pad=pad_hint,
                )
            )  # fmt: skip
