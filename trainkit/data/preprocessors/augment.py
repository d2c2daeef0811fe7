"""Point-cloud augmenters: random rotation, jitter and scale, drawn per sample.

Each acts on coordinates, the last axis of size 3, of dense `(samples, points, 3)`
batches or ragged ones (lists of `(points_i, 3)` arrays), and on the members of
structured data named by `keys=`. Labels pass through unchanged. The draws derive from
the slice's rng key, so every epoch draws anew and a resumed run draws the same numbers.

Each sample's draws are those of its row in the global batch, whichever shard serves
it: one number per sample (an angle, a factor) is drawn for the whole global batch from
`rng` and taken at the shard's rows (`global_rows()`), and per-point noise comes from
the sample's own generator (`sample_rngs()`). The shards of a batch, served by several
workers, are therefore augmented exactly as the whole batch on one worker.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from trainkit._validation import describe, is_int
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

_AXES = {"x": 0, "y": 1, "z": 2}
_CENTERS = {"origin": "origin", False: "origin", "centroid": "centroid", True: "centroid"}

_NO_COORDINATES = (
    "{name} acts on coordinates, a last axis of size 3: dense (samples, points, 3) "
    "batches or lists of (points_i, 3) arrays. {found} For structured data, name the "
    "coordinate members with `keys=`. Received: keys={keys}"
)


def _fits(member: Any) -> bool:
    """A dense `(samples, ..., 3)` array, or a ragged list of `(points_i, ..., 3)` arrays."""
    if is_ragged(member):
        return all(np.ndim(s) >= 1 and np.shape(s)[-1] == 3 for s in member)
    return hasattr(member, "shape") and len(member.shape) >= 2 and member.shape[-1] == 3


def _shape_fits(shape: tuple[Any, ...]) -> bool:
    return len(shape) >= 1 and shape[-1] == 3


def _check_real(name: str, value: Any, *, minimum: float, strict: bool, fix: str) -> float:
    kind = f"> {minimum:g}" if strict else f">= {minimum:g}"
    message = f"`{name}` must be a finite number {kind}{fix}. Received: {name}={describe(value)}"
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(message)
    number = float(value)
    if math.isfinite(number) and (number > minimum if strict else number >= minimum):
        return number
    raise ValueError(message)


class _PointAugmenter(Preprocessor):
    """Shared by the augmenters: pick the coordinate members, draw per sample, transform.

    `_draw(count)` gives one parameter per sample: a number (angle, factor), or the
    sample's generator for draws of its own size (per-point noise).
    """

    def __init__(self, keys: KeysArg) -> None:
        super().__init__()
        self.keys = check_keys(keys)
        self.last_draws: list[float] | None = None

    def _keys_text(self) -> Any:
        return None if self.keys is None else list(self.keys)

    def for_prediction(self) -> None:
        """None: predictions see each sample as it is (random augmentation drops out)."""
        return None

    def check_sample_shape(self, sample_shape: Any) -> None:
        name = type(self).__name__
        pairs = shapes(sample_shape)
        chosen = select(name, pairs, self.keys, _shape_fits)
        found = dict(pairs)
        if not chosen:
            listed = ", ".join(f"{k!r}: {s}" for k, s in pairs) if pairs[0][0] is not None else ""
            what = f"The members have sample shapes {{{listed}}}." if listed else ""
            what = what or f"One sample has shape {pairs[0][1]}."
            raise ValueError(_NO_COORDINATES.format(name=name, found=what, keys=self._keys_text()))
        for key in chosen:
            if not _shape_fits(found[key]):
                raise ValueError(
                    _NO_COORDINATES.format(
                        name=name,
                        found=f"Member {key!r} has sample shape {found[key]}.",
                        keys=self._keys_text(),
                    )
                )

    def process(self, batch: Any, labels: Any) -> tuple[Any, Any]:
        chosen = self._chosen(batch)
        found = dict(members(batch))
        count = len(found[chosen[0]])
        for key in chosen:
            if len(found[key]) != count:
                raise ValueError(
                    f"{type(self).__name__}: member {chosen[0]!r} holds {count} samples and "
                    f"member {key!r} {len(found[key])}; members must hold the same samples."
                )
        draws = self._draw(count)
        numbers = isinstance(draws, np.ndarray)
        self.last_draws = [float(d) for d in draws] if numbers else None
        updated = {key: self._member(found[key], draws) for key in chosen}
        return rebuild(batch, updated), labels

    def _chosen(self, batch: Any) -> list[Key | None]:
        name = type(self).__name__
        pairs = members(batch)
        chosen = select(name, pairs, self.keys, _fits)
        misfits = [(k, m) for k, m in pairs if k in chosen and not _fits(m)]
        if not chosen:
            misfits = pairs  # nothing fits: say what every member is
        if misfits:
            found = " ".join(
                f"{'The batch' if k is None else f'Member {k!r}'} is {_shape_text(m)}."
                for k, m in misfits
            )
            raise ValueError(_NO_COORDINATES.format(name=name, found=found, keys=self._keys_text()))
        return chosen

    def _member(self, member: Any, draws: Any) -> Any:
        if not is_ragged(member):
            return self._transform(np.asarray(member), draws)
        out = []
        for index, sample in enumerate(member):
            out.append(self._transform(np.asarray(sample)[None], draws[index : index + 1])[0])
        return out

    def _draw(self, count: int) -> Any:
        """One parameter per sample of the slice: an array of numbers, or a list of
        generators (`sample_rngs`) that the members of a sample draw from in turn."""
        raise NotImplementedError

    def _uniform(self, low: float, high: float, count: int) -> np.ndarray:
        """One number per sample, drawn for the whole global batch from `rng` and taken
        at the slice's rows: the same for a sample on any number of workers."""
        rows = self.global_rows(count)
        return self.rng.uniform(low, high, size=rows.size)[rows.start : rows.stop]

    def _transform(self, points: np.ndarray, params: Any) -> np.ndarray:
        """`points` `(k, ..., 3)` of k samples transformed with their `params` (k of them)."""
        raise NotImplementedError

    def _out_dtype(self, points: np.ndarray) -> np.dtype:
        return np.result_type(points.dtype, np.float32)


def _shape_text(member: Any) -> str:
    if is_ragged(member):
        trailing = {tuple(np.shape(s)[1:]) for s in member}
        return f"a list of {len(member)} arrays with trailing shapes {sorted(trailing)}"
    return describe(member)


def _check_axis(axis: Any) -> tuple[float, float, float]:
    index: Any = _AXES.get(axis.lower()) if isinstance(axis, str) else axis
    if is_int(index) and 0 <= index <= 2:
        return tuple(float(i == index) for i in range(3))  # type: ignore[return-value]
    if isinstance(axis, (list, tuple, np.ndarray)) and np.shape(axis) == (3,):
        vector = np.asarray(axis, dtype=float)
        norm = float(np.linalg.norm(vector))
        if np.all(np.isfinite(vector)) and norm > 0:
            return tuple(float(v) for v in vector / norm)  # type: ignore[return-value]
    raise ValueError(
        "`axis` must be a coordinate axis (0, 1, 2 or 'x', 'y', 'z') or a direction "
        f"(x, y, z) that is not zero, e.g. axis='z' for a vertical axis. Received: axis={axis!r}"
    )


def _check_center(center: Any) -> str | tuple[float, float, float]:
    if isinstance(center, (str, bool)) and center in _CENTERS:
        return _CENTERS[center]
    if isinstance(center, (list, tuple, np.ndarray)) and np.shape(center) == (3,):
        point = np.asarray(center, dtype=float)
        if np.all(np.isfinite(point)):
            return tuple(float(v) for v in point)  # type: ignore[return-value]
    raise ValueError(
        "`center` is the point rotations turn about: 'origin', 'centroid' (each sample's "
        f"mean point) or a point (x, y, z). Received: center={describe(center)}"
    )


class RandomRotationPreprocessor(_PointAugmenter):
    """Rotate each sample about an axis by its own uniform angle in `[-max_angle, max_angle]`.

    The rotation turns about the line through `center` along `axis`, so each point keeps
    its distance to that line and its coordinate along it. With several members (`keys=`
    naming points and normals, say) a sample turns by the same angle in every member.

    Args:
        axis: 0, 1, 2 or 'x', 'y', 'z' (a coordinate axis), or any direction `(x, y, z)`.
        max_angle: largest angle in radians, from 0 to pi (pi draws every rotation).
        center: 'origin' (default; `False` also means it), 'centroid' (each sample's
            mean point, of every row: put the augmenter before `PadPreprocessor` in a
            `Chain` so padding rows do not count; `True` also means it) or a point.
        keys: members of structured data to rotate; None rotates every member whose last
            axis has size 3.

    Raises:
        ValueError: a bad argument, or data without a last axis of size 3 (at generator
            construction when the sample shape is known, else at the first `get()`).

    Example:
        >>> pre = RandomRotationPreprocessor(axis="z", max_angle=np.pi)
    """

    def __init__(
        self,
        axis: int | str | tuple[float, float, float] = "z",
        max_angle: float = math.pi,
        center: str | bool | tuple[float, float, float] = "origin",
        keys: KeysArg = None,
    ) -> None:
        super().__init__(keys)
        self.axis = _check_axis(axis)
        self.max_angle = _check_real(
            "max_angle", max_angle, minimum=0.0, strict=False, fix=" (radians)"
        )
        if self.max_angle > math.pi:
            raise ValueError(
                "`max_angle` is in radians, from 0 to pi: pi already draws every rotation "
                f"(180 degrees is np.pi). Received: max_angle={max_angle!r}"
            )
        self.center = _check_center(center)

    def _draw(self, count: int) -> np.ndarray:
        return self._uniform(-self.max_angle, self.max_angle, count)

    def _transform(self, points: np.ndarray, params: np.ndarray) -> np.ndarray:
        u = np.asarray(self.axis)
        cross = np.array([[0, -u[2], u[1]], [u[2], 0, -u[0]], [-u[1], u[0], 0]])
        cos, sin = np.cos(params)[:, None, None], np.sin(params)[:, None, None]
        rotations = cos * np.eye(3) + sin * cross + (1 - cos) * np.outer(u, u)  # Rodrigues
        center = self._center(points)
        turned = np.einsum("n...j,nij->n...i", points - center, rotations) + center
        return turned.astype(self._out_dtype(points), copy=False)

    def _center(self, points: np.ndarray) -> np.ndarray:
        if self.center == "origin":
            return np.zeros(3)
        if self.center == "centroid":
            axes = tuple(range(1, points.ndim - 1))
            return points.mean(axis=axes, keepdims=True) if axes else points
        return np.asarray(self.center)

    def describe_slice(self) -> dict[str, Any]:
        return {} if self.last_draws is None else {"rotation_angles": self.last_draws}

    def get_config(self) -> dict[str, Any]:
        return {
            "class": "RandomRotationPreprocessor",
            "axis": list(self.axis),
            "max_angle": self.max_angle,
            "center": self.center if isinstance(self.center, str) else list(self.center),
            "keys": self._keys_text(),
        }


class JitterPreprocessor(_PointAugmenter):
    """Add Gaussian noise to every coordinate of every point, optionally clipped.

    Each sample's noise comes from its own generator (`sample_rngs()`), keyed on its row
    in the global batch, so a ragged sample draws as many numbers as it has points.

    Args:
        sigma: standard deviation of the noise (in the data's units).
        clip: clip each noise value to `[-clip, clip]`; None does not clip.
        keys: members of structured data to jitter; None jitters every member whose last
            axis has size 3 (each with its own noise).

    Put it before `PadPreprocessor` in a `Chain`, so padding rows stay `pad_value`.

    Example:
        >>> pre = JitterPreprocessor(sigma=0.01, clip=0.05)
    """

    def __init__(
        self, sigma: float = 0.01, clip: float | None = None, keys: KeysArg = None
    ) -> None:
        super().__init__(keys)
        self.sigma = _check_real("sigma", sigma, minimum=0.0, strict=True, fix="")
        self.clip = (
            None
            if clip is None
            else _check_real("clip", clip, minimum=0.0, strict=True, fix=" or None (no clip)")
        )

    def _draw(self, count: int) -> list[np.random.Generator]:
        return self.sample_rngs(count)  # the noise of a sample has the sample's size

    def _transform(self, points: np.ndarray, params: list[np.random.Generator]) -> np.ndarray:
        noise = np.empty(points.shape)
        for index, rng in enumerate(params):
            noise[index] = rng.normal(0.0, self.sigma, size=points.shape[1:])
        if self.clip is not None:
            noise = np.clip(noise, -self.clip, self.clip)
        return (points + noise).astype(self._out_dtype(points), copy=False)

    def get_config(self) -> dict[str, Any]:
        return {
            "class": "JitterPreprocessor",
            "sigma": self.sigma,
            "clip": self.clip,
            "keys": self._keys_text(),
        }


class RandomScalePreprocessor(_PointAugmenter):
    """Scale each sample about the origin by its own uniform factor in `[low, high]`.

    Args:
        low: smallest factor, > 0.
        high: largest factor, >= low.
        keys: members of structured data to scale; None scales every member whose last
            axis has size 3 (a sample by the same factor in each).

    Example:
        >>> pre = RandomScalePreprocessor(low=0.8, high=1.25)
    """

    def __init__(self, low: float = 0.9, high: float = 1.1, keys: KeysArg = None) -> None:
        super().__init__(keys)
        self.low = _check_real("low", low, minimum=0.0, strict=True, fix=" (a scale factor)")
        self.high = _check_real("high", high, minimum=0.0, strict=True, fix=" (a scale factor)")
        if self.low > self.high:
            raise ValueError(
                "`low` must be at most `high`: factors are drawn from [low, high]. "
                f"Received: low={low!r}, high={high!r}"
            )

    def _draw(self, count: int) -> np.ndarray:
        return self._uniform(self.low, self.high, count)

    def _transform(self, points: np.ndarray, params: np.ndarray) -> np.ndarray:
        factors = params.reshape((-1,) + (1,) * (points.ndim - 1))
        return (points * factors).astype(self._out_dtype(points), copy=False)

    def describe_slice(self) -> dict[str, Any]:
        return {} if self.last_draws is None else {"scale_factors": self.last_draws}

    def get_config(self) -> dict[str, Any]:
        return {
            "class": "RandomScalePreprocessor",
            "low": self.low,
            "high": self.high,
            "keys": self._keys_text(),
        }
