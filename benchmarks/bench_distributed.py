"""What a worker costs: trainkit's distributed step per slice against one device.

Each runner is a fresh process (a strategy must exist before TensorFlow does anything
else) training the same tiny model (6 -> 32 -> 1, Adam) on the same data for a few
epochs; a callback times the slices after the first epoch (tracing, warm-up). Compared:

  (a) one device, no strategy                       (the baseline)
  (b) MultiWorkerMirroredStrategy, 1 worker        (the distributed step, no network)
  (c) 2 workers on 127.0.0.1 (gRPC collectives)    the chief's time per slice
  (d) 3 workers on 127.0.0.1

Each worker of (c)/(d) fits its rows of the same global batch, so the figure is the time
per *global* slice; scaling out pays when the step's own compute, split N ways, saves
more than the difference (c) - (a). With `--before DIR` the same runners also run with
the trainkit found in DIR (e.g. a git worktree of the commit before a change), to
measure what a change to the distributed step costs per slice.

Run: python benchmarks/bench_distributed.py [--batch 48] [--epochs 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time

BATCHES = 40  # global batches per epoch


def worker(batch: int, epochs: int, strategy_kind: str) -> None:
    """One process's run; prints `SLICE <seconds per slice>` (timed after epoch 1)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from trainkit import DataGenerator, TrainGenerator
    from trainkit.callbacks import Callback

    strategy = None if strategy_kind == "none" else tf.distribute.MultiWorkerMirroredStrategy()
    times: list[float] = []

    class Clock(Callback):
        def on_train_iter_end(self, iteration, logs=None):
            if self.trainer.epoch >= 1:
                times.append(time.perf_counter())

    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch * BATCHES, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    scope = strategy.scope() if strategy is not None else keras.utils.custom_object_scope({})
    with scope:
        keras.utils.set_random_seed(1)
        model = keras.Sequential([
            keras.Input((6,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)
        ])  # fmt: skip
        model.compile(keras.optimizers.Adam(0.01), "mse")
    tg = TrainGenerator(
        model, DataGenerator(data=x, labels=y, batch_size=batch), epochs=epochs,
        strategy=strategy, callbacks=[Clock()], iter_verbosity=0,
    )  # fmt: skip
    tg.train()
    print(f"SLICE {(times[-1] - times[0]) / (len(times) - 1):.6f}", flush=True)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def measure(workers: int, args: argparse.Namespace, pythonpath: str | None) -> float:
    """Seconds per slice of one run on `workers` processes (0: no strategy)."""
    ports = free_ports(max(workers, 1))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"}
    env.pop("TF_CONFIG", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    kind = "none" if workers == 0 else "mwms"
    command = [sys.executable, __file__, "--worker", kind, "--batch", str(args.batch)]
    command += ["--epochs", str(args.epochs)]
    processes = []
    for index in range(max(workers, 1)):
        if workers > 1:
            cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
            task = {"type": "worker", "index": index}
            env = {**env, "TF_CONFIG": json.dumps({"cluster": cluster, "task": task})}
        processes.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True))
    outputs = [process.communicate()[0] for process in processes]
    line = next(line for line in outputs[0].splitlines() if line.startswith("SLICE"))
    return float(line.split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=48, help="2 and 3 must divide it")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--before", default="", help="a trainkit tree to compare with")
    parser.add_argument("--worker", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.batch, args.epochs, args.worker)
        return
    trees = {"now": None, **({"before": args.before} if args.before else {})}
    runners = {"(a) one device": 0, "(b) MWMS, 1 worker": 1, "(c) 2 workers": 2}
    runners["(d) 3 workers"] = 3
    best: dict[tuple[str, str], float] = {}
    for _ in range(args.repeats):  # interleaved: a slow moment hits every runner alike
        for tree, path in trees.items():
            for name, workers in runners.items():
                seconds = measure(workers, args, path)
                key = (tree, name)
                best[key] = min(best.get(key, seconds), seconds)
    base = best[("now", "(a) one device")]
    print(f"global batch {args.batch}, best of {args.repeats} runs, ms per slice:")
    for (tree, name), seconds in best.items():
        ratio = seconds / base
        print(f"  {tree:6s} {name:22s} {seconds * 1e3:8.2f} ms  {ratio:5.2f}x (a)")


if __name__ == "__main__":
    main()
