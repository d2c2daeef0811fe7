"""The pause a checkpoint puts on training, synchronous and `async_checkpoints=True`.

For an MLP of about one million and one of about 25 million parameters (Adam, so the
checkpoint holds twice as many optimizer values as weights), a `TrainGenerator` with a
run folder writes checkpoints through the trainer's own path
(`Checkpoints.save(background=...)`, as `checkpoint_freq` does) and each is timed:

  sync pause      the whole checkpoint on the training thread (snapshot, Keras'
                  `model.save`, `arrays.npz`, `state.json`, manifest, rename, prune)
  async pause     what the training thread still waits for with async_checkpoints:
                  the snapshot to host memory and `model.save` (see docs/checkpoints.md
                  for why `model.keras` is saved there)
  background      the rest, written by the background thread while training goes on
                  (waited for before the next checkpoint)

Then what a run pays as it grows:

  RSS per checkpoint   growth of the process' resident memory per checkpoint over
                       `--grow` checkpoints of the 1M model, with and without
                       Keras' `model.save` (arrays, state.json and manifest only)
  histories            for a loop state after N iters (3 metrics per batch), what one
                       checkpoint writes of it: before, the whole histories in
                       state.json (copy and encoding timed, the format of state.json
                       version 1); now, state.json without them plus the line appended
                       to histories.jsonl (the entries of the last `--every` iters:
                       copy, encoding, write, fsync timed)

Figures are medians over the rounds, in milliseconds, on this machine only.

Run: python benchmarks/bench_checkpoint_async.py [--rounds 5] [--grow 60] [--every 100]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from trainkit import DataGenerator, TrainGenerator
from trainkit.checkpoints import checkpoint_dirs
from trainkit.checkpoints.history_log import HistoryLog
from trainkit.checkpoints.run_folder import RunFolder
from trainkit.training.loop_state import LoopState, append_logs

MODELS = {"1M": ([1000], 1000), "25M": ([2500, 2500, 2500, 2500], 2500)}


def trainer(hidden: list[int], features: int, logs_dir: str, **options: bool) -> TrainGenerator:
    keras.utils.set_random_seed(0)
    layers = [keras.Input((features,))]
    layers += [keras.layers.Dense(units, activation="relu") for units in hidden]
    model = keras.Sequential([*layers, keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    data = np.zeros((8, features), dtype="float32")
    datagen = DataGenerator(data=data, labels=np.zeros((8, 1), "float32"), batch_size=8)
    tg = TrainGenerator(model, datagen, epochs=1, logs_dir=logs_dir, checkpoint_freq=None,
                        iter_verbosity=0, max_checkpoints=2, **options)  # fmt: skip
    tg.train()  # one step: the optimizer's slots exist
    return tg


def pauses(name: str, rounds: int) -> dict[str, float]:
    hidden, features = MODELS[name]
    figures: dict[str, list[float]] = {"sync": [], "async": [], "background": []}
    with tempfile.TemporaryDirectory() as root:
        sync = trainer(hidden, features, os.path.join(root, "sync"))
        background = trainer(hidden, features, os.path.join(root, "async"), async_checkpoints=True)
        for _ in range(rounds):  # interleaved: a slow moment hits both alike
            with sync._checkpoints.writing("train"):
                started = time.perf_counter()
                sync._checkpoints.save(background=True)  # async off: complete on return
                figures["sync"].append(time.perf_counter() - started)
            with background._checkpoints.writing("train"):
                started = time.perf_counter()
                background._checkpoints.save(background=True)
                figures["async"].append(time.perf_counter() - started)
                started = time.perf_counter()
                background._checkpoints.wait()
                figures["background"].append(time.perf_counter() - started)
        params = sync.model.count_params()
    result = {key: 1000 * statistics.median(values) for key, values in figures.items()}
    return {**result, "params": params}


def _rss_mb() -> float:
    with open("/proc/self/statm") as file:
        return int(file.read().split()[1]) * resource.getpagesize() / 1e6


def rss_growth(count: int) -> dict[str, float]:
    """KB of resident memory per checkpoint, with and without Keras' model.save."""
    hidden, features = MODELS["1M"]
    growth = {}
    with tempfile.TemporaryDirectory() as root:
        tg = trainer(hidden, features, os.path.join(root, "run"))
        arrays, state = tg._checkpoints.capture()
        for label, save_model in (("model.save", tg.model.save), ("arrays only", None)):
            run = RunFolder(tempfile.mkdtemp(dir=root))
            for iters in range(5):  # warm up allocators and Keras' saving code
                run.write(iters, arrays, state, save_model, max_checkpoints=2)
            before = _rss_mb()
            for iters in range(5, 5 + count):
                run.write(iters, arrays, state, save_model, max_checkpoints=2)
            growth[label] = 1000 * (_rss_mb() - before) / count
    return growth


def _loop_state(iters: int) -> LoopState:
    """A loop state after `iters` one-slice batches of 3 metrics, validated every 100."""
    state, rng = LoopState(), np.random.default_rng(0)
    for _ in range(iters):
        append_logs(state.history, dict(zip(("loss", "accuracy", "lr"), rng.random(3).tolist())))
        state.iters_fit = state.batches_fit = state.iters_fit + 1
        if state.batches_fit % 100 == 0:
            append_logs(state.val_history, {"loss": float(rng.random())})
            state.key_metric_history.append(state.val_history["loss"][-1])
            state.val_batches.append(state.batches_fit)
    return state


def _median_ms(work, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def histories_cost(iters: int, every: int, rounds: int) -> dict[str, float]:
    """What one checkpoint writes of a loop state after `iters` iters, before and now."""
    state = _loop_state(iters)
    whole = checkpoint_dirs.dumps_state({"trainer": state.state_dict()})
    rest = checkpoint_dirs.dumps_state({"trainer": state.state_dict(histories=False)})
    figures = {
        "before_kb": len(whole.encode()) / 1000,
        "before_ms": _median_ms(
            lambda: checkpoint_dirs.dumps_state({"trainer": state.state_dict()}), rounds
        ),
        "now_kb": len(rest.encode()) / 1000,
        "now_ms": _median_ms(
            lambda: checkpoint_dirs.dumps_state({"trainer": state.state_dict(histories=False)}),
            rounds,
        ),
    }
    earlier = _loop_state(iters - every)  # the log holds everything up to the last checkpoint
    appended, times = [], []
    with tempfile.TemporaryDirectory() as root:
        for round_index in range(rounds):
            log = HistoryLog(os.path.join(root, str(round_index)))
            os.makedirs(os.path.dirname(log.path))
            log.append(log.entries(earlier.histories()), "ckpt-0-1", iters - every)
            before = os.path.getsize(log.path)
            started = time.perf_counter()
            log.append(log.entries(state.histories()), "ckpt-1-2", iters)
            times.append(time.perf_counter() - started)
            appended.append(os.path.getsize(log.path) - before)
    figures["append_kb"] = statistics.median(appended) / 1000
    figures["append_ms"] = 1000 * statistics.median(times)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--grow", type=int, default=60)
    parser.add_argument("--every", type=int, default=100, help="iters between checkpoints")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print("| model | params | sync pause | async pause | background write |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in MODELS:
        r = pauses(name, args.rounds)
        print(
            f"| {name} | {r['params']:,} | {r['sync']:.0f} ms | {r['async']:.0f} ms "
            f"({r['async'] / r['sync']:.2f}x) | {r['background']:.0f} ms |"
        )
    growth = rss_growth(args.grow)
    print(f"\nRSS per checkpoint over {args.grow} checkpoints of the 1M model:")
    for label, kb in growth.items():
        print(f"  {label}: {kb:+.0f} KB")
    print(f"\nHistories per checkpoint (one every {args.every} iters), loop state only:")
    print("| iters | before: in state.json | now: state.json | now: appended to the log |")
    print("| ---: | ---: | ---: | ---: |")
    for iters in (600, 6000, 60000):
        r = histories_cost(iters, args.every, args.rounds)
        print(
            f"| {iters:,} | {r['before_kb']:.1f} KB, {r['before_ms']:.1f} ms "
            f"| {r['now_kb']:.1f} KB, {r['now_ms']:.2f} ms "
            f"| {r['append_kb']:.1f} KB, {r['append_ms']:.2f} ms |"
        )


if __name__ == "__main__":
    main()
