"""A DeepTrain-style preprocessor, and a script that serves it and may SIGKILL itself.

`DeepTrainWindows` sets `slices_per_batch` inside `process()` at `slice_idx == 0`, as
DeepTrain's own `TimeseriesPreprocessor` does (and as migrating users write).
`LateWindows` does so only from the second batch on, so that a walk with worker
processes learns it late. Both live here, at module level, so worker processes can
import them.

`python deeptrain_style.py FOLDER PREFETCH WORKERS [KILL_AT]` serves three epochs of a
shuffled generator from the state saved in FOLDER (if any), saving its state after every
slice and each served slice as `FOLDER/served-<pid>.npz` (position -> x); with KILL_AT
it prints its worker processes' pids and kills itself with SIGKILL between `get()` and
`update_state()` of slice KILL_AT, while prefetch runs ahead.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys

import numpy as np

from trainkit import DataGenerator, Preprocessor

EPOCHS = 3


class DeepTrainWindows(Preprocessor):
    """Windows of `window` timesteps; the count is set in process() at slice 0."""

    def __init__(self, window: int = 5) -> None:
        super().__init__()
        self.window = window

    def process(self, batch, labels):
        if self.slice_idx == 0:
            self.slices_per_batch = batch.shape[1] // self.window
        start = self.slice_idx * self.window
        noise = self.rng.normal(size=(len(batch), self.window, batch.shape[2]))
        return batch[:, start : start + self.window] + noise.astype(batch.dtype), labels

    def get_config(self):
        return {"class": "DeepTrainWindows", "window": self.window}


class LateWindows(DeepTrainWindows):
    """Sets the count in process() only for batches whose first label is 8 or more."""

    def process(self, batch, labels):
        if self.slice_idx == 0 and int(labels[0]) < 8:
            start = 0
            noise = self.rng.normal(size=(len(batch), self.window, batch.shape[2]))
            return batch[:, start : start + self.window] + noise.astype(batch.dtype), labels
        return super().process(batch, labels)


def series(n: int = 40, timesteps: int = 20) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(0).normal(size=(n, timesteps, 2)).astype("float32")
    return x, np.arange(n)


def make(prefetch: int | None, workers: int = 0, preprocessor: Preprocessor | None = None):
    x, y = series()
    return DataGenerator(
        data=x, labels=y, batch_size=4, shuffle=True, seed=7,
        preprocessor=preprocessor or DeepTrainWindows(), prefetch=prefetch,
        prefetch_workers=workers,
    )  # fmt: skip


def _save(path: str, state: dict) -> None:
    with open(path + ".tmp", "w") as file:
        json.dump(state, file)
    os.replace(path + ".tmp", path)


def main(folder: str, prefetch: int, workers: int, kill_at: int | None) -> None:
    state_path = os.path.join(folder, "state.json")
    dg = make(prefetch, workers)
    position = 0
    if os.path.exists(state_path):
        with open(state_path) as file:
            saved = json.load(file)
        dg.load_state_dict(saved["generator"])
        position = saved["position"]
    served = {}
    try:
        while True:
            if dg.all_data_exhausted:
                if dg.epoch == EPOCHS - 1:
                    break
                dg.on_epoch_end()
            x, _ = dg.get()
            served[str(position)] = np.array(x)
            if position == kill_at:
                np.savez(os.path.join(folder, f"served-{os.getpid()}.npz"), **served)
                pids = [p.pid for p in multiprocessing.active_children()]
                print(json.dumps({"workers": pids}), flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
            dg.update_state()
            position += 1
            _save(state_path, {"generator": dg.state_dict(), "position": position})
    finally:
        np.savez(os.path.join(folder, f"served-{os.getpid()}.npz"), **served)
    dg.close()


if __name__ == "__main__":
    arguments = sys.argv[1:]
    main(
        arguments[0],
        int(arguments[1]),
        int(arguments[2]),
        int(arguments[3]) if len(arguments) > 3 else None,
    )
