"""`RandomCropPreprocessor`: one random window per batch over axes 1 and 2."""

from __future__ import annotations

import copy
from typing import Any

from trainkit._validation import check_bool, describe, is_int
from trainkit.data.preprocessors.base import Preprocessor
from trainkit.data.preprocessors.shapes import check_dense


def _as_size(size: Any) -> tuple[int, int]:
    if is_int(size):
        size = (size, size)
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or not all(is_int(s) and s >= 1 for s in size)
    ):
        raise ValueError(
            "`size` must be a positive int or a pair (width, height) of positive ints. "
            f"Received: size={describe(size)}"
        )
    return int(size[0]), int(size[1])


class RandomCropPreprocessor(Preprocessor):
    """Crop `(samples, width, height, ...)` batches to `size`, one window per batch.

    The window's offsets are drawn uniformly over every valid position, edges included,
    from the slice's `rng`; all samples of the batch share it. A size equal to the image
    leaves it unchanged.

    Args:
        size: crop size, an int (square) or `(width, height)`.
        crop_batch: crop the batch (False leaves it whole, e.g. to crop only labels).
        crop_labels: crop the labels too (for dense targets such as masks).
        crop_same: crop labels with the batch's window instead of their own.

    Raises:
        ValueError: the crop is larger than the images (at construction when the sample
            shape is known, else at the first `get()`).

    Example:
        >>> pre = RandomCropPreprocessor(24)  # (n, 32, 32, 3) batches -> (n, 24, 24, 3)
    """

    def __init__(
        self,
        size: int | tuple[int, int],
        crop_batch: bool = True,
        crop_labels: bool = False,
        crop_same: bool = False,
    ) -> None:
        super().__init__()
        self.size = _as_size(size)
        self.crop_batch = check_bool("crop_batch", crop_batch)
        self.crop_labels = check_bool("crop_labels", crop_labels)
        self.crop_same = check_bool("crop_same", crop_same)
        self.last_offsets: dict[str, tuple[int, int]] = {}
        self.center = False  # for_prediction(): the middle window, no draw

    def _check_fits(self, shape: tuple[int, ...], what: str) -> None:
        if len(shape) < 2:
            raise ValueError(
                f"RandomCropPreprocessor crops axes 1 and 2 of (samples, width, height, ...) "
                f"{what}; one sample has shape {tuple(shape)}."
            )
        if self.size[0] > shape[0] or self.size[1] > shape[1]:
            raise ValueError(
                f"RandomCropPreprocessor size={self.size} is larger than the {what} "
                f"(width, height)={tuple(shape[:2])}. Use a size at most the image size."
            )

    def check_sample_shape(self, sample_shape: tuple[int, ...]) -> None:
        check_dense("RandomCropPreprocessor", sample_shape)
        if self.crop_batch:
            self._check_fits(sample_shape, "images")

    def for_prediction(self) -> RandomCropPreprocessor:
        """A center crop of the same size (and the same labels options): predictions see
        one fixed window per image, the middle one (offsets `(width - size) // 2`)."""
        center = copy.copy(self)
        center.center = True
        return center

    def _draw(self, shape: tuple[int, ...]) -> tuple[int, int]:
        width, height = shape[1], shape[2]
        if self.center:
            return (width - self.size[0]) // 2, (height - self.size[1]) // 2
        rng = self.rng
        return (
            int(rng.integers(0, width - self.size[0] + 1)),
            int(rng.integers(0, height - self.size[1] + 1)),
        )

    def _crop(self, array: Any, offsets: tuple[int, int]) -> Any:
        x, y = offsets
        return array[:, x : x + self.size[0], y : y + self.size[1]]

    def process(self, batch: Any, labels: Any) -> tuple[Any, Any]:
        self.last_offsets = {}
        offsets = None
        if self.crop_batch:
            self._check_fits(batch.shape[1:], "images")
            offsets = self._draw(batch.shape)
            self.last_offsets["batch"] = offsets
            batch = self._crop(batch, offsets)
        if self.crop_labels and labels is not None:
            self._check_fits(labels.shape[1:], "labels")
            if not (self.crop_same and offsets is not None):
                offsets = self._draw(labels.shape)
            self.last_offsets["labels"] = offsets
            labels = self._crop(labels, offsets)
        return batch, labels

    def describe_slice(self) -> dict[str, Any]:
        return {"crop": {k: list(v) for k, v in self.last_offsets.items()}}

    def get_config(self) -> dict[str, Any]:
        return {
            "class": "RandomCropPreprocessor",
            "size": list(self.size),
            "crop_batch": self.crop_batch,
            "crop_labels": self.crop_labels,
            "crop_same": self.crop_same,
            **({"center": True} if self.center else {}),
        }
