"""Ctrl-C deferred to the next slice boundary.

A SIGINT that lands while a compiled step runs only surfaces in Python after the
optimizer has applied the step, so the loop would not know whether that slice was
fit. While `train()` runs in the main thread, a handler records the request instead,
and the loop raises `KeyboardInterrupt` itself at the next slice boundary, where its
counters and the data state agree. The previous handler is restored on exit.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any


class DeferredInterrupt:
    """Records SIGINT while active; `raise_if_requested()` raises it at a safe point."""

    def __init__(self) -> None:
        self.requested = False

    @contextmanager
    def deferring(self, enabled: bool = True) -> Iterator[None]:
        """Install the handler for the duration of the block (main thread only)."""
        if not enabled or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGINT, self._handle)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
            self.requested = False

    def _handle(self, signum: int, frame: FrameType | None) -> Any:
        if self.requested:  # a second Ctrl-C while waiting: stop right away
            raise KeyboardInterrupt
        self.requested = True

    def raise_if_requested(self) -> None:
        if self.requested:
            self.requested = False
            raise KeyboardInterrupt(
                "Training interrupted at a slice boundary; "
                "call train() to continue exactly from here."
            )
