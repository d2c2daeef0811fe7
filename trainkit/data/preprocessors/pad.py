"""`PadPreprocessor`: ragged batches (lists of arrays) to dense ones, with a padding mask."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from trainkit._validation import check_int, describe
from trainkit.data.preprocessors.base import Preprocessor
from trainkit.data.preprocessors.members import (
    Key,
    KeysArg,
    check_keys,
    is_ragged,
    members,
    rebuild,
    select,
    shapes,
)

_NO_LENGTHS = (
    "PadPreprocessor.post_process() needs the lengths of the slice the predictions came "
    "from, and this instance has padded no slice (with prefetch, a background copy "
    "computes the slices). Pass the slice's description: "
    "`pre.post_process(predictions, datagen.describe_slice())` right after `datagen.get()`, "
    "or `{{'lengths': [...]}}` with each sample's length. Received: description={received}"
)


def _check_pad_value(value: Any) -> int | float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(
            "`pad_value` must be a number (the value padded rows hold, e.g. 0.0). "
            f"Received: pad_value={describe(value)}"
        )
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def _member_name(key: Key | None, where: str) -> str:
    return where if key is None else f"{where} member {key!r}"


class PadPreprocessor(Preprocessor):
    """Pad ragged batches (lists of per-sample arrays) into dense arrays, masking the padding.

    Use it for samples of different lengths (points per cloud, steps per sequence) that a
    model takes as one dense tensor. Each ragged member is padded along its first axis to
    the batch's longest sample (or to `length`) with `pad_value`. Ragged labels (per-point
    labels, one row per point) are padded alike; labels that are one array per sample
    (`(samples, ...)`) are left as they are. Dense inputs pass through unchanged.

    `process()` returns `(x, y, sample_weight)`. The weight makes padding invisible to the
    loss:

    * per point, shape `(samples, length)`: 1.0 on real rows and 0.0 on padding, when the
      labels are padded too (per-point losses) or there are no labels;
    * per sample, shape `(samples,)` of 1.0, when every label is per sample: the loss then
      sees one value per sample, and the model must itself ignore padded rows (e.g. a
      `keras.layers.Masking(mask_value=pad_value)` or a pooling that skips them);
    * structured labels that mix both get weights in the labels' structure, each member
      its own kind (Keras takes a `sample_weight` structure matching `y`).

    All padded members of one sample (`x` members and ragged labels) must have the same
    length.

    Predictions back to samples: `post_process(predictions, description)` cuts a padded
    slice's predictions back into a list of per-sample arrays of their original lengths.
    `description` is the slice's `describe_slice()` - `{"lengths": [...],
    "padded_length": L}` - as `DataGenerator.describe_slice()` returns it right after
    `get()` (correct with prefetch, whose background copy is the one that pads). Without
    it, this instance's own last slice is used, which is right only when this instance
    computed that slice itself (no prefetch, or called directly).

    Args:
        pad_value: the value padded rows hold.
        length: pad every batch to this many rows; None pads each batch to its longest
            sample. A longer sample raises `ValueError`.
        keys: members of structured data (dict keys or tuple positions) to pad; None pads
            every ragged member. Every ragged member of the labels is padded.

    Raises:
        ValueError: a sample is longer than `length`; padded members of a sample differ
            in length; a ragged member's samples differ in trailing shape; `keys` names
            a member that is missing or dense; `pad_value` does not fit the data's dtype.

    Example:
        >>> pre = PadPreprocessor(length=1024)
        >>> clouds = [np.zeros((700, 3)), np.zeros((1000, 3))]
        >>> x, y, weights = pre.process(clouds, None)  # x: (2, 1024, 3), weights: (2, 1024)
    """

    def __init__(
        self, pad_value: float = 0.0, length: int | None = None, keys: KeysArg = None
    ) -> None:
        super().__init__()
        self.pad_value = _check_pad_value(pad_value)
        self.length = None if length is None else check_int("length", length, minimum=1)
        self.keys = check_keys(keys)
        self.last_lengths: list[int] | None = None
        self.last_padded_length: int | None = None
        self._described = False  # process() has run: describe_slice() reports its lengths

    def check_sample_shape(self, sample_shape: Any) -> None:
        select("PadPreprocessor", shapes(sample_shape), self.keys, lambda shape: True)

    def process(self, batch: Any, labels: Any) -> tuple[Any, ...]:
        x_keys = self._x_keys(batch)
        y_keys = [k for k, m in members(labels) if is_ragged(m)] if labels is not None else []
        lengths = self._lengths(batch, labels, x_keys, y_keys)
        self._described = True
        if lengths is None:  # nothing ragged: dense data passes through
            self.last_lengths = self.last_padded_length = None
            return batch, labels
        length = self._target_length(lengths)
        x = self._pad_members(batch, x_keys, length, "batch")
        y = None if labels is None else self._pad_members(labels, y_keys, length, "labels")
        self.last_lengths, self.last_padded_length = lengths, length
        return x, y, self._weights(labels, y_keys, lengths, length)

    def _x_keys(self, batch: Any) -> list[Key | None]:
        pairs = members(batch)
        keys = select("PadPreprocessor", pairs, self.keys, is_ragged)
        found = dict(pairs)
        for key in keys:
            if not is_ragged(found[key]):
                raise ValueError(
                    f"PadPreprocessor keys={list(self.keys or ())} names member {key!r}, "
                    f"which is dense ({describe(found[key])}): it pads ragged members (lists "
                    "of per-sample arrays). Leave dense members out of `keys`. "
                    f"Received: keys={list(self.keys or ())}"
                )
        return keys

    def _lengths(
        self, batch: Any, labels: Any, x_keys: list[Key | None], y_keys: list[Key | None]
    ) -> list[int] | None:
        """Per-sample lengths shared by every padded member, or None when nothing is ragged."""
        named = [(_member_name(k, "batch"), dict(members(batch))[k]) for k in x_keys]
        if labels is not None:
            named += [(_member_name(k, "labels"), dict(members(labels))[k]) for k in y_keys]
        if not named:
            return None
        first_name, first = named[0]
        lengths = [len(sample) for sample in first]
        for name, member in named[1:]:
            other = [len(sample) for sample in member]
            if other != lengths:
                raise ValueError(_length_mismatch(first_name, lengths, name, other))
        return lengths

    def _target_length(self, lengths: list[int]) -> int:
        if self.length is None:
            return max(lengths, default=0)
        for index, sample_length in enumerate(lengths):
            if sample_length > self.length:
                raise ValueError(
                    f"PadPreprocessor(length={self.length}) got sample {index} of length "
                    f"{sample_length}, longer than `length`. Raise `length` to at least the "
                    "longest sample of the data, or pass length=None to pad each batch to "
                    f"its longest sample. Received: length={self.length}"
                )
        return self.length

    def _pad_members(self, value: Any, keys: list[Key | None], length: int, where: str) -> Any:
        found = dict(members(value))
        padded = {key: self._pad(found[key], length, _member_name(key, where)) for key in keys}
        return rebuild(value, padded)

    def _pad(self, samples: list[Any], length: int, name: str) -> np.ndarray:
        arrays = [np.asarray(sample) for sample in samples]
        if not arrays:
            raise ValueError(f"PadPreprocessor got an empty ragged {name}: a list of 0 samples.")
        trailing = arrays[0].shape[1:]
        for index, array in enumerate(arrays):
            if array.ndim == 0 or array.shape[1:] != trailing:
                raise ValueError(
                    f"PadPreprocessor: sample {index} of the ragged {name} has shape "
                    f"{array.shape} but sample 0 has {arrays[0].shape}. The samples of a "
                    "ragged member share every dimension but the first (e.g. (points_i, 3))."
                )
        dtype = np.result_type(*arrays)
        out = np.full((len(arrays), length, *trailing), self._fill(dtype, name), dtype=dtype)
        for index, array in enumerate(arrays):
            out[index, : len(array)] = array
        return out

    def _fill(self, dtype: np.dtype, name: str) -> Any:
        value = self.pad_value
        fits = np.issubdtype(dtype, np.inexact) or (
            not (isinstance(value, float) and math.isnan(value)) and float(value).is_integer()
        )
        if not fits:
            raise ValueError(
                f"PadPreprocessor pad_value={value!r} cannot be stored in the {name} of dtype "
                f"{dtype}: pass a pad_value that dtype holds (e.g. 0) or cast the data to "
                f"float. Received: pad_value={value!r}"
            )
        return value

    def _weights(
        self, labels: Any, y_keys: list[Key | None], lengths: list[int], length: int
    ) -> Any:
        mask = (np.arange(length)[None, :] < np.asarray(lengths)[:, None]).astype("float32")
        if labels is None:
            return mask
        pairs = members(labels)
        ones = np.ones(len(lengths), dtype="float32")
        if len(y_keys) == len(pairs):
            return mask
        if not y_keys:
            return ones
        return rebuild(labels, {key: mask if key in y_keys else ones for key, _ in pairs})

    def post_process(self, predictions: Any, description: dict[str, Any] | None = None) -> Any:
        """Cut a padded slice's predictions back into per-sample arrays of their lengths.

        Args:
            predictions: the model's output for the slice: an array `(samples, length,
                ...)`, or a list/tuple/dict of outputs (one per model output).
            description: the slice's `describe_slice()`, e.g. `datagen.describe_slice()`
                right after `datagen.get()`; None uses this instance's last slice.

        Returns:
            The predictions in the same structure, every output shaped `(samples, length,
            ...)` replaced by a list of `(length_i, ...)` arrays; per-sample outputs (and
            the predictions of a slice that was not padded) are returned unchanged.

        Raises:
            ValueError: no lengths are known, or the predictions hold another number of
                samples than the slice.
        """
        described = self.describe_slice() if description is None else description
        if "lengths" not in described:
            raise ValueError(_NO_LENGTHS.format(received=describe(description)))
        lengths = described["lengths"]
        if lengths is None:
            return predictions
        padded = described.get("padded_length", self.length or max(lengths, default=0))
        if isinstance(predictions, dict):
            return {k: self._strip(v, lengths, padded) for k, v in predictions.items()}
        if isinstance(predictions, (list, tuple)):
            return type(predictions)(self._strip(v, lengths, padded) for v in predictions)
        return self._strip(predictions, lengths, padded)

    @staticmethod
    def _strip(output: Any, lengths: list[int], padded: int) -> Any:
        array = np.asarray(output)
        if array.ndim == 0 or array.shape[0] != len(lengths):
            raise ValueError(
                f"PadPreprocessor.post_process() got predictions {describe(array)} for a "
                f"slice of {len(lengths)} samples: pass the predictions of the slice the "
                "description came from."
            )
        if array.ndim < 2 or array.shape[1] != padded:
            return output  # one prediction per sample: nothing was padded
        return [array[index, :n] for index, n in enumerate(lengths)]

    def describe_slice(self) -> dict[str, Any]:
        if not self._described:
            return {}
        if self.last_lengths is None:  # the slice was dense and passed through
            return {"lengths": None}
        return {"lengths": self.last_lengths, "padded_length": self.last_padded_length}

    def get_config(self) -> dict[str, Any]:
        pad_value: Any = self.pad_value
        if isinstance(pad_value, float) and math.isnan(pad_value):
            pad_value = "nan"  # NaN != NaN would make every resume look like a new setting
        return {
            "class": "PadPreprocessor",
            "pad_value": pad_value,
            "length": self.length,
            "keys": None if self.keys is None else list(self.keys),
        }


def _length_mismatch(first: str, lengths: list[int], name: str, other: list[int]) -> str:
    if len(other) != len(lengths):
        return (
            f"PadPreprocessor: the {first} holds {len(lengths)} samples and the {name} "
            f"{len(other)}; padded members must hold the same samples."
        )
    index = next(i for i, (a, b) in enumerate(zip(lengths, other)) if a != b)
    return (
        f"PadPreprocessor: sample {index} has length {lengths[index]} in the {first} and "
        f"{other[index]} in the {name}; all padded members of a sample must have the same "
        "length (one row per point). Pad only members that share lengths with `keys=`, or "
        "give per-sample labels as one array (samples, ...)."
    )
