"""`TimeseriesPreprocessor`: cut `(samples, timesteps, ...)` batches into time windows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trainkit._validation import check_int, describe
from trainkit.data.preprocessors.base import Preprocessor
from trainkit.data.preprocessors.shapes import check_dense


class TimeseriesPreprocessor(Preprocessor):
    """Serve each batch as consecutive time windows, e.g. for a stateful RNN.

    Window `slice_idx` covers timesteps `[start, start + window_size)` with
    `start = slice_idx * slide_size + start_increment`, so a batch of `T` timesteps yields
    `1 + (T - window_size - start_increment) // slide_size` slices. Labels are served
    unchanged with every window. Epoch `k` (counting from 0) uses
    `start_increments[k % len(start_increments)]`, which shifts the windows between epochs.

    Args:
        window_size: timesteps per window.
        slide_size: step between window starts; None means `window_size` (no overlap).
        start_increments: per-epoch offsets of the first window; None means 0.

    Raises:
        ValueError: a window does not fit the series (at construction when the sample
            shape is known, else at the first `get()`).

    Example:
        >>> pre = TimeseriesPreprocessor(window_size=25, slide_size=25)
        >>> pre.count_slices((100, 3))  # a (32, 100, 3) batch: 4 slices of shape (32, 25, 3)
        4
    """

    def __init__(
        self,
        window_size: int,
        slide_size: int | None = None,
        start_increments: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.window_size = check_int("window_size", window_size, minimum=1)
        self.slide_size = (
            self.window_size
            if slide_size is None
            else check_int("slide_size", slide_size, minimum=1)
        )
        if start_increments is not None:
            if isinstance(start_increments, (str, bytes)) or not isinstance(
                start_increments, Sequence
            ):
                raise TypeError(
                    "`start_increments` must be a list of non-negative ints or None. "
                    f"Received: start_increments={describe(start_increments)}"
                )
            if len(start_increments) == 0:
                raise ValueError("`start_increments` must not be empty; pass None for no offset.")
            start_increments = [check_int("start_increments[i]", s) for s in start_increments]
        self.start_increments = None if start_increments is None else list(start_increments)
        self.epoch = 0

    @property
    def start_increment(self) -> int:
        if not self.start_increments:
            return 0
        return self.start_increments[self.epoch % len(self.start_increments)]

    def _check_fits(self, timesteps: int, increment: int) -> None:
        if self.window_size + increment > timesteps:
            raise ValueError(
                f"TimeseriesPreprocessor window does not fit: window_size={self.window_size} "
                f"starting at start_increment={increment} needs {self.window_size + increment} "
                f"timesteps but the series has {timesteps}. Use a smaller window_size or "
                "start_increments, or longer series."
            )

    def check_sample_shape(self, sample_shape: tuple[int, ...]) -> None:
        check_dense("TimeseriesPreprocessor", sample_shape)
        if len(sample_shape) < 1:
            raise ValueError(
                "TimeseriesPreprocessor needs batches shaped (samples, timesteps, ...); the "
                f"samples have shape {sample_shape}."
            )
        for increment in self.start_increments or [0]:
            self._check_fits(sample_shape[0], increment)

    def on_batch_load(self, batch: Any, labels: Any) -> None:
        timesteps = batch.shape[1]
        self._check_fits(timesteps, self.start_increment)
        self.slices_per_batch = (
            1 + (timesteps - self.window_size - self.start_increment) // self.slide_size
        )

    def count_slices(self, sample_shape: tuple[int, ...]) -> int | None:
        timesteps = sample_shape[0]
        self._check_fits(timesteps, self.start_increment)
        return 1 + (timesteps - self.window_size - self.start_increment) // self.slide_size

    def window(self) -> tuple[int, int]:
        """`(start, stop)` timesteps of the current slice."""
        start = self.slice_idx * self.slide_size + self.start_increment
        return start, start + self.window_size

    def process(self, batch: Any, labels: Any) -> tuple[Any, Any]:
        start, stop = self.window()
        return batch[:, start:stop], labels

    def describe_slice(self) -> dict[str, Any]:
        return {"window": list(self.window())}

    def on_epoch_end(self, epoch: int) -> None:
        self.epoch = epoch

    def get_config(self) -> dict[str, Any]:
        return {
            "class": "TimeseriesPreprocessor",
            "window_size": self.window_size,
            "slide_size": self.slide_size,
            "start_increments": self.start_increments,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
