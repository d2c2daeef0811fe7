"""Data-parallel training on several processes with MultiWorkerMirroredStrategy.

Every worker runs this same script; only `--worker` differs. On one machine, try it
with two local workers on 127.0.0.1:

    python examples/multi_worker.py --launch 2 --logs-dir runs

which starts `python examples/multi_worker.py --worker K --ports P0,P1 --logs-dir runs`
for K = 0, 1. On several machines, start that command on each, with `--hosts` naming
every worker's `host:port` in the same order on all of them (worker 0 is the chief). Kill
the workers at any time and start them again with `--resume`: training continues from
the chief's last checkpoint, on as many workers as you start. SIGTERM to any worker (how
clusters preempt) makes every worker checkpoint the same iter and exit cleanly.

The script does not depend on a launcher: without `--ports`/`--hosts` it takes the
cluster from the environment, `TF_CONFIG` (Kubernetes, Kubeflow, your own launcher) or
Slurm's `SLURM_*` variables under `srun` (docs/distributed.md has the recipes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", type=int, default=0, help="this worker's index")
    parser.add_argument("--ports", default="", help="local workers' ports, e.g. 12345,12346")
    parser.add_argument("--hosts", default="", help="every worker's host:port, comma-separated")
    parser.add_argument("--launch", type=int, default=0, help="start this many local workers")
    parser.add_argument("--logs-dir", default="runs", help="the run folders (shared storage)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--resume", action="store_true", help="continue the newest run")
    parser.add_argument("--weights-out", default="", help="the chief saves final weights here")
    parser.add_argument("--slow", type=float, default=0.0, help="sleep after each batch (s)")
    parser.add_argument("--port-base", type=int, default=8888, help="Slurm: first task's port")
    parser.add_argument(
        "--preempted-exit", type=int, default=0, help="exit code after SIGTERM stopped the run"
    )
    return parser.parse_args(argv)


def launch(args: argparse.Namespace) -> int:
    """Start `args.launch` workers on 127.0.0.1 and wait for all of them."""
    sockets = [socket.socket() for _ in range(args.launch)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = ",".join(str(s.getsockname()[1]) for s in sockets)
    for s in sockets:
        s.close()
    passed = ["--logs-dir", args.logs_dir, "--epochs", str(args.epochs), "--slow", str(args.slow)]
    passed += ["--resume"] if args.resume else []
    passed += ["--weights-out", args.weights_out] if args.weights_out else []
    workers = [
        subprocess.Popen([sys.executable, __file__, "--worker", str(k), "--ports", ports, *passed])
        for k in range(args.launch)
    ]
    return max(worker.wait() for worker in workers)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.launch:
        sys.exit(launch(args))
    if args.hosts or args.ports:
        local = [f"127.0.0.1:{port}" for port in args.ports.split(",")]
        hosts = args.hosts.split(",") if args.hosts else local
        # TF_CONFIG tells TensorFlow the cluster and which worker this process is.
        os.environ["TF_CONFIG"] = json.dumps({
            "cluster": {"worker": hosts},
            "task": {"type": "worker", "index": args.worker},
        })  # fmt: skip

    import keras
    import numpy as np
    import tensorflow as tf

    from trainkit import DataGenerator, TrainGenerator
    from trainkit.callbacks import Callback

    # First, before any other TensorFlow call: the strategy joins the cluster. A dead
    # worker is noticed by TensorFlow's heartbeats (about 10-20 s here) and reported by
    # trainkit as WorkerLostError; `timeout_seconds` also bounds a collective that hangs.
    strategy = tf.distribute.MultiWorkerMirroredStrategy(
        cluster_resolver=cluster_resolver(args.port_base),
        communication_options=tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=300.0
        ),
    )

    class Progress(Callback):
        def on_train_batch_end(self, batch, logs=None):
            if args.slow:
                time.sleep(args.slow)
            print(f"BATCH {self.trainer.batches_fit}", flush=True)

    # Every worker holds (or reads) the same data; each serves its rows of every batch.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 6)).astype("float32")
    y = (x[:, 0] - x[:, 2] > 0).astype("float32")
    with strategy.scope():  # the model's variables are the strategy's
        keras.utils.set_random_seed(1)
        model = keras.Sequential([
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ])  # fmt: skip
        model.compile(keras.optimizers.Adam(0.02), "binary_crossentropy", metrics=["accuracy"])
    tg = TrainGenerator(
        model,
        # batch_size is the global batch: 12 rows split 6/6 on 2 workers, 4/4/4 on 3; the
        # last batch's 4 rows split 2/2 and 2/1/1 (a worker count must divide batch_size).
        DataGenerator(data=x, labels=y, batch_size=12, shuffle="samples", seed=5),
        DataGenerator(data=x[:30], labels=y[:30], batch_size=12),
        epochs=args.epochs,
        # Predict mode: each worker predicts its rows, and every worker scores them all.
        eval_fn="predict",
        val_metrics=["loss", "accuracy", "f1"],
        strategy=strategy,
        logs_dir=args.logs_dir,  # the chief writes it; the others write temporary folders
        checkpoint_freq={"batch": 3},
        resume=args.resume,
        callbacks=[Progress()],
        iter_verbosity=0,
    )
    tg.train()
    if tg.epoch < tg.epochs and not tg.stop_training:
        # SIGTERM (on this worker or another): every worker checkpointed this same iter
        # and stops here, before any other collective. Start them all with --resume.
        # A launcher that restarts only failed workers (a Kubernetes Job) needs a code of
        # its own here, e.g. 75, so that every worker is started again with --resume.
        print(f"PREEMPTED {tg.iters_fit}", flush=True)
        sys.exit(args.preempted_exit)
    # Each worker predicts its rows; every worker gets the whole generator's predictions.
    predicted = tg.predict(DataGenerator(data=x[:30], batch_size=12)).predictions
    print(f"PREDICT {len(predicted)} {float(np.sum(predicted)):.6f}", flush=True)
    chief = not strategy.cluster_resolver.task_id  # worker 0 (or the only one)
    if chief and args.weights_out:
        np.savez(args.weights_out, *model.get_weights())
    if chief:
        print(f"RUN {tg.run_dir}", flush=True)
    print(f"DONE {tg.iters_fit} {json.dumps(tg.val_history['loss'])}", flush=True)


def cluster_resolver(port_base: int = 8888):  # type: ignore[no-untyped-def]
    """The cluster from the environment: Slurm's under `srun`, else `TF_CONFIG` (or none).

    TensorFlow's SlurmClusterResolver counts GPUs with nvidia-smi and cannot place tasks
    on nodes without GPUs (`gpus_per_task=0` makes it divide by zero); on CPU nodes it is
    given one "GPU" slot per task, not set in CUDA_VISIBLE_DEVICES, and reports none.
    """
    import tensorflow as tf

    resolvers = tf.distribute.cluster_resolver
    if "SLURM_PROCID" not in os.environ or "TF_CONFIG" in os.environ:
        return resolvers.TFConfigClusterResolver()
    if shutil.which("nvidia-smi") and os.environ.get("CUDA_VISIBLE_DEVICES") != "":
        # GPU nodes: TensorFlow's defaults (GPUs shared out among a node's tasks)
        return resolvers.SlurmClusterResolver(port_base=port_base)

    slurm: type = resolvers.SlurmClusterResolver

    class CPUSlurmClusterResolver(slurm):  # type: ignore[valid-type,misc]
        def num_accelerators(self, task_type=None, task_id=None, config_proto=None):  # type: ignore[no-untyped-def]
            return {}

    tasks = max(int(n.split("(")[0]) for n in os.environ["SLURM_STEP_TASKS_PER_NODE"].split(","))
    return CPUSlurmClusterResolver(
        port_base=port_base, gpus_per_node=tasks, gpus_per_task=1, auto_set_gpu=False
    )


if __name__ == "__main__":
    main()
