"""`PadPreprocessor`: ragged batches (lists of arrays) to dense ones, with a padding mask."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
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
    if not math.isfinite(value):
        raise ValueError(
            "`pad_value` must be finite: padded rows holding NaN or inf would make every "
            "padded slice look poisoned to the trainer's data check (and reach the loss "
            "through layers that do not mask). Pad with a finite value (0.0) and let the "
            f"sample weights PadPreprocessor serves mask the padding. Received: pad_value={value!r}"
        )
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def _in_range(value: int, dtype: np.dtype) -> bool:
    if dtype.kind == "b":
        return value in (0, 1)
    if dtype.kind not in "iu":
        return True
    limits = np.iinfo(dtype)
    return int(limits.min) <= value <= int(limits.max)


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
        self,
        pad_value: float = 0.0,
        length: int | None = None,
        keys: KeysArg = None,
        *,
        outputs: OutputsArg = None,
        groups: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        self.pad_value = _check_pad_value(pad_value)
        self.length = None if length is None else check_int("length", length, minimum=1)
        self.keys = check_keys(keys)
        self.outputs = check_outputs("outputs", outputs)
        self.groups = check_groups(groups, keys, outputs)
        self.last_lengths: list[int] | None = None
        self.last_padded_length: int | None = None
        self._cuts: list[dict[str, Any]] | None = None  # what post_process cuts, if known
        self._described = False  # process() has run: describe_slice() reports its lengths

    def check_sample_shape(self, sample_shape: Any) -> None:
        select("PadPreprocessor", shapes(sample_shape), self.keys, lambda shape: True)

    def process(self, batch: Any, labels: Any) -> tuple[Any, ...]:
        groups = self._resolve_groups(batch, labels)
        self._described = True
        padded: list[tuple[Group, list[int]]] = []
        for group in groups:
            lengths = self._lengths(batch, labels, group)
            if lengths is not None:
                padded.append((group, lengths))
        if not padded:  # nothing ragged: dense data passes through
            self.last_lengths = self.last_padded_length = None
            self._cuts = None
            return batch, labels
        x_updates: dict[Key | None, Any] = {}
        y_updates: dict[Key | None, Any] = {}
        masks: dict[Key | None, np.ndarray] = {}
        cuts: list[dict[str, Any]] | None = []
        for group, lengths in padded:
            length = self._target_length(lengths)
            x_updates.update(self._pad_members(batch, group.batch, length, "batch"))
            if labels is not None:
                y_updates.update(self._pad_members(labels, group.labels, length, "labels"))
            mask = _mask(lengths, length)
            masks.update(dict.fromkeys(group.labels, mask))
            cuts = _add_cuts(cuts, group, labels is not None, lengths, length)
        first_lengths = padded[0][1]
        self.last_lengths = first_lengths
        self.last_padded_length = self._target_length(first_lengths)
        self._cuts = cuts
        x = rebuild(batch, x_updates)
        y = None if labels is None else rebuild(labels, y_updates)
        first_mask = _mask(first_lengths, self.last_padded_length)
        return x, y, self._weights(labels, masks, first_mask)

    def _resolve_groups(self, batch: Any, labels: Any) -> list[Group]:
        """The groups to pad in this slice: `groups=` as given, or one group of every
        padded input member and every ragged label member."""
        ragged_labels = (
            [k for k, m in members(labels) if is_ragged(m)] if labels is not None else []
        )
        if self.groups is None:
            return [Group(tuple(self._x_keys(batch)), tuple(ragged_labels), self.outputs)]
        for group in self.groups:
            self._check_ragged(batch, group.batch, "batch")
            if labels is not None:
                self._check_ragged(labels, group.labels, "labels")
        grouped = {key for group in self.groups for key in group.labels}
        left = [key for key in ragged_labels if key not in grouped]
        if left:
            raise ValueError(
                f"PadPreprocessor(groups=...) got ragged labels {left} that no group names: "
                "each ragged label member is padded with the inputs of its group. Add them "
                "to the group of the inputs they have one row per point of, e.g. "
                f"{{'batch': ['points'], 'labels': {left}}}. Received: groups={self._groups_arg()}"
            )
        return list(self.groups)

    def _groups_arg(self) -> list[dict[str, Any]] | None:
        return None if self.groups is None else [g.config() for g in self.groups]

    def _check_ragged(self, value: Any, keys: tuple[Key | None, ...], where: str) -> None:
        found = dict(members(value))
        for key in keys:
            if key not in found:
                raise ValueError(
                    f"PadPreprocessor groups={self._groups_arg()} names {where} member "
                    f"{key!r}, which the {where} does not have; its members are "
                    f"{list(found)}. Received: groups={self._groups_arg()}"
                )
            if not is_ragged(found[key]):
                raise ValueError(
                    f"PadPreprocessor groups={self._groups_arg()} names {where} member "
                    f"{key!r}, which is dense ({describe(found[key])}): a group pads ragged "
                    f"members (lists of per-sample arrays). Leave it out of the group. "
                    f"Received: groups={self._groups_arg()}"
                )

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

    def _lengths(self, batch: Any, labels: Any, group: Group) -> list[int] | None:
        """Per-sample lengths shared by every member of `group`, or None when it is empty."""
        named = [(_member_name(k, "batch"), dict(members(batch))[k]) for k in group.batch]
        if labels is not None:
            named += [(_member_name(k, "labels"), dict(members(labels))[k]) for k in group.labels]
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
            if lengths and max(lengths) == 0:
                raise ValueError(
                    f"PadPreprocessor got a batch whose {len(lengths)} samples all have length "
                    "0: there is nothing to fit (the loss over no rows is not a number). Drop "
                    "empty samples from the data (e.g. `[s for s in samples if len(s)]`), or "
                    f"pass `length=` to pad them to a fixed size. Received: lengths={lengths}"
                )
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

    def _pad_members(
        self, value: Any, keys: Sequence[Key | None], length: int, where: str
    ) -> dict[Key | None, np.ndarray]:
        found = dict(members(value))
        return {key: self._pad(found[key], length, _member_name(key, where)) for key in keys}

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
            float(value).is_integer() and _in_range(int(value), dtype)
        )
        if not fits:
            raise ValueError(
                f"PadPreprocessor pad_value={value!r} cannot be stored in the {name} of dtype "
                f"{dtype}: pass a pad_value that dtype holds (e.g. 0) or cast the data to "
                f"float. Received: pad_value={value!r}"
            )
        return value

    @staticmethod
    def _weights(labels: Any, masks: dict[Key | None, np.ndarray], first_mask: np.ndarray) -> Any:
        """Each padded label member's group mask; per-sample label members weigh 1."""
        if labels is None:
            return first_mask
        pairs = members(labels)
        if all(key in masks for key, _ in pairs):
            distinct = {id(mask) for mask in masks.values()}
            if len(distinct) == 1:
                return next(iter(masks.values()))
        ones = np.ones(len(first_mask), dtype="float32")
        if not masks:
            return ones
        return rebuild(labels, {key: masks.get(key, ones) for key, _ in pairs})

    def post_process(self, predictions: Any, description: dict[str, Any] | None = None) -> Any:
        """Cut a padded slice's predictions back into per-sample arrays of their lengths.

        Which outputs are cut is decided output by output from what was padded, never
        from a width: the outputs whose labels were padded (a dict output by the labels'
        key, a list output by position, a single output when the labels are one ragged
        member), or those named by `outputs=` (or a group's `'outputs'`). Each is cut
        with the lengths of the members it was padded with. When neither is known (no
        labels served and no `outputs=`), an output `(samples, padded_length, ...)` of 3
        or more dimensions is cut, one of 2 dimensions `(samples, padded_length)` raises
        (it may be per point or per sample), and any other is left as it is.

        Args:
            predictions: the model's output for the slice: an array `(samples, length,
                ...)`, or a list/tuple/dict of outputs (one per model output).
            description: the slice's `describe_slice()`, e.g. `datagen.describe_slice()`
                right after `datagen.get()`; None uses this instance's last slice.

        Returns:
            The predictions in the same structure, every padded output replaced by a list
            of `(length_i, ...)` arrays; other outputs (and the predictions of a slice
            that was not padded) are returned unchanged.

        Raises:
            ValueError: no lengths are known; the predictions hold another number of
                samples than the slice; an output to cut is missing or has another
                length than the padded one; an undeclared output cannot be told apart.
        """
        described = self.describe_slice() if description is None else description
        if "lengths" not in described:
            raise ValueError(_NO_LENGTHS.format(received=describe(description)))
        lengths = described["lengths"]
        if lengths is None:
            return predictions
        for _, output in _outputs(predictions):
            _check_rows(output, lengths)
        cuts = described.get("cuts")
        if cuts is None:
            padded = described.get("padded_length", self.length or max(lengths, default=0))
            return _cut_undeclared(predictions, lengths, padded)
        updates: dict[Key | None, Any] = {}
        for cut in cuts:
            for key in _cut_keys(cut["outputs"], predictions):
                found = dict(_outputs(predictions))
                if key not in found:
                    raise ValueError(_missing_output(key, list(found)))
                updates[key] = _strip(found[key], cut["lengths"], cut["padded_length"], key)
        return _rebuild_outputs(predictions, updates)

    def describe_slice(self) -> dict[str, Any]:
        if not self._described:
            return {}
        if self.last_lengths is None:  # the slice was dense and passed through
            return {"lengths": None}
        described: dict[str, Any] = {
            "lengths": self.last_lengths,
            "padded_length": self.last_padded_length,
        }
        if self._cuts is not None:
            described["cuts"] = self._cuts
        return described

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "class": "PadPreprocessor",
            "pad_value": self.pad_value,
            "length": self.length,
            "keys": None if self.keys is None else list(self.keys),
        }
        if self.outputs is not None:
            config["outputs"] = _outputs_config(self.outputs)
        if self.groups is not None:
            config["groups"] = self._groups_arg()
        return config


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


# --- groups and outputs ------------------------------------------------------------------

OutputsArg = bool | Key | Sequence[Key] | None
# Normalized: None (not declared), True (every output), or the output keys (None: the only one).
Outputs = bool | tuple[Key | None, ...] | None
_GROUP_FIELDS = ("batch", "labels", "outputs")


@dataclass(frozen=True)
class Group:
    """Members padded together to one length: input keys, label keys, declared outputs."""

    batch: tuple[Key | None, ...]
    labels: tuple[Key | None, ...]
    outputs: Outputs = None

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"batch": list(self.batch), "labels": _keys_config(self.labels)}
        if self.outputs is not None:
            config["outputs"] = _outputs_config(self.outputs)
        return config


def _keys_config(keys: tuple[Key | None, ...]) -> Any:
    return True if keys == (None,) else list(keys)


def _outputs_config(outputs: Outputs) -> Any:
    if outputs is None:
        return None
    return outputs if isinstance(outputs, bool) else _keys_config(outputs)


def check_outputs(name: str, value: Any) -> Outputs:
    """`outputs=`: None, True/False, an output name or position, or a list of them."""
    if value is None or isinstance(value, bool):
        return False if value is False else value and True
    keys = check_keys(value)
    assert keys is not None
    return keys


def check_groups(groups: Any, keys: Any, outputs: Any) -> tuple[Group, ...] | None:
    """`groups=`: a non-empty list of `{'batch': [...], 'labels': [...], 'outputs': [...]}`."""
    if groups is None:
        return None
    if keys is not None or outputs is not None:
        raise ValueError(
            "PadPreprocessor takes `groups=` or `keys=`/`outputs=`, not both: with groups, "
            "each group names its inputs ('batch'), labels and outputs. "
            f"Received: keys={keys!r}, outputs={outputs!r}, groups={groups!r}"
        )
    if not isinstance(groups, (list, tuple)) or not groups:
        raise TypeError(_GROUPS_TYPE.format(received=describe(groups)))
    checked = []
    for group in groups:
        if not isinstance(group, dict) or set(group) - set(_GROUP_FIELDS):
            raise TypeError(_GROUPS_TYPE.format(received=repr(group)))
        batch = check_keys(group["batch"]) if group.get("batch") is not None else ()
        labels: tuple[Key | None, ...] = ()
        if group.get("labels") is True:
            labels = (None,)
        elif group.get("labels") is not None:
            labels = check_keys(group["labels"]) or ()
        checked.append(
            Group(tuple(batch or ()), labels, check_outputs("outputs", group.get("outputs")))
        )
    seen: set[Any] = set()
    for group in checked:
        for key in [("batch", k) for k in group.batch] + [("labels", k) for k in group.labels]:
            if key in seen:
                raise ValueError(
                    f"PadPreprocessor groups name {key[0]} member {key[1]!r} twice: each "
                    f"member is padded by one group. Received: groups={groups!r}"
                )
            seen.add(key)
    return tuple(checked)


_GROUPS_TYPE = (
    "PadPreprocessor `groups` is a non-empty list of dicts, one per set of members that "
    "share lengths, each with 'batch' (input keys), optionally 'labels' (label keys, or "
    "True for labels that are one ragged member) and 'outputs' (the model outputs "
    "post_process cuts with these lengths), e.g. [{{'batch': ['points0'], 'labels': "
    "['seg']}}, {{'batch': ['points1']}}]. Received: {received}"
)


def _mask(lengths: list[int], length: int) -> np.ndarray:
    return (np.arange(length)[None, :] < np.asarray(lengths)[:, None]).astype("float32")


def _add_cuts(
    cuts: list[dict[str, Any]] | None,
    group: Group,
    has_labels: bool,
    lengths: list[int],
    length: int,
) -> list[dict[str, Any]] | None:
    """`cuts` with the group's entry: the outputs post_process cuts with its lengths."""
    if cuts is None:
        return None
    outputs: Any = group.outputs
    if outputs is None:
        if not has_labels:
            return None  # not known: post_process falls back to shapes
        outputs = group.labels
    if outputs is False:
        return cuts
    entry = _outputs_config(outputs) if isinstance(outputs, bool) else list(outputs)
    return [*cuts, {"outputs": entry, "lengths": lengths, "padded_length": length}]


def _outputs(predictions: Any) -> list[tuple[Key | None, Any]]:
    """`(key, output)` pairs: dict keys, list/tuple positions, or `[(None, array)]`."""
    if isinstance(predictions, dict):
        return list(predictions.items())
    if isinstance(predictions, (list, tuple)):
        return list(enumerate(predictions))
    return [(None, predictions)]


def _rebuild_outputs(predictions: Any, updates: dict[Key | None, Any]) -> Any:
    if isinstance(predictions, dict):
        return {k: updates.get(k, v) for k, v in predictions.items()}
    if isinstance(predictions, (list, tuple)):
        return type(predictions)(updates.get(k, v) for k, v in enumerate(predictions))
    return updates.get(None, predictions)


def _cut_keys(outputs: Any, predictions: Any) -> list[Key | None]:
    if outputs is True:
        return [key for key, _ in _outputs(predictions)]
    return list(outputs)


def _check_rows(output: Any, lengths: list[int]) -> None:
    array = np.asarray(output)
    if array.ndim == 0 or array.shape[0] != len(lengths):
        raise ValueError(
            f"PadPreprocessor.post_process() got predictions {describe(array)} for a "
            f"slice of {len(lengths)} samples: pass the predictions of the slice the "
            "description came from."
        )


def _strip(output: Any, lengths: list[int], padded: int, key: Key | None) -> list[np.ndarray]:
    array = np.asarray(output)
    if array.ndim < 2 or array.shape[1] != padded:
        name = "the output" if key is None else f"output {key!r}"
        raise ValueError(
            f"PadPreprocessor.post_process(): {name} was padded to {padded} rows (its "
            f"labels were padded, or `outputs=` names it) but the model gives "
            f"{describe(array)}, not (samples, {padded}, ...). Name only the outputs with "
            "one row per padded row in `outputs=` (or a group's 'outputs')."
        )
    return [array[index, :n] for index, n in enumerate(lengths)]


def _cut_undeclared(predictions: Any, lengths: list[int], padded: int) -> Any:
    """No labels and no `outputs=`: cut `(samples, padded, ...)` outputs of 3+ dims."""
    updates = {}
    for key, output in _outputs(predictions):
        shape = np.shape(output)
        if len(shape) < 2 or shape[1] != padded:
            continue
        if len(shape) == 2:
            name = "the output" if key is None else f"output {key!r}"
            raise ValueError(
                f"PadPreprocessor.post_process() cannot tell whether {name} of shape "
                f"{shape} holds one value per padded row or {padded} values per sample: "
                "the slice served no labels to decide from. Name the outputs with one "
                f"row per padded row: PadPreprocessor(outputs=[...]) (True for a single "
                f"output, False for none)."
            )
        updates[key] = _strip(output, lengths, padded, key)
    return _rebuild_outputs(predictions, updates)


def _missing_output(key: Key | None, available: list[Any]) -> str:
    return (
        f"PadPreprocessor.post_process(): the padded labels (or `outputs=`) name output "
        f"{key!r}, but the predictions' outputs are {available}. Name the outputs to cut "
        "as the predictions are keyed (dict keys, or list positions): "
        f"PadPreprocessor(outputs=[...]). Received: outputs {available}"
    )
