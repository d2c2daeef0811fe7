"""Two worker processes on 127.0.0.1 with MultiWorkerMirroredStrategy (TF_CONFIG).

The workers run examples/multi_worker.py, the script the docs show.

Two scenarios, in phases (each worker process pays TensorFlow's start-up), against
one uninterrupted 2-worker reference run:

* 2 workers: SIGTERM to the non-chief (every worker checkpoints the same iter and
  exits 0); that run resumed on 2 workers and killed with SIGKILL after two more
  checkpoints (one worker first: the chief must stop with a clear error, not hang);
  resumed again on 2 workers, which must end with bitwise the weights of the reference;
  and the same checkpoint resumed on 1 worker, which must finish.
* 3 workers started as Slurm tasks (simulated `SLURM_*` variables, on CPU), their
  batches of 12 rows cut 4/4/4 and the last one of 4 cut 2/1/1: SIGTERM to a
  non-chief, then that checkpoint resumed on 2 workers, which must finish.

And one more pair of workers (augmented_case.py) trains with random augmentation,
each worker augmenting its shard of every batch, to the weights one device reaches
from the same start (each sample's draws are keyed on its row in the global batch).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).resolve().parents[2] / "examples" / "multi_worker.py"
AUGMENTED = Path(__file__).with_name("augmented_case.py")


def free_ports(count: int) -> str:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [str(s.getsockname()[1]) for s in sockets]
    for s in sockets:
        s.close()
    return ",".join(ports)


def start(workers: int, logs_dir: Path, out: Path, *extra: str) -> list[subprocess.Popen]:
    """`workers` processes of examples/multi_worker.py on 127.0.0.1 (the chief first)."""
    ports = free_ports(workers)
    command = [sys.executable, str(WORKER), "--ports", ports, "--logs-dir", str(logs_dir)]
    return [
        spawn([*command, "--worker", str(index), "--weights-out", str(out), *extra], {})
        for index in range(workers)
    ]


def spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env}
    env.pop("TF_CONFIG", None)
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )


def start_slurm(tasks: int, logs_dir: Path, *extra: str) -> list[subprocess.Popen]:
    """`tasks` processes as `srun --ntasks=N` starts them on one node (no --ports)."""
    base = free_consecutive_ports(tasks)
    command = [sys.executable, str(WORKER), "--logs-dir", str(logs_dir), "--port-base", base]
    slurm = {
        "SLURM_STEP_NUM_TASKS": str(tasks),
        "SLURM_STEP_NODELIST": "localhost",
        "SLURM_STEP_TASKS_PER_NODE": str(tasks),
        "CUDA_VISIBLE_DEVICES": "",  # a CPU node, even where nvidia-smi is installed
    }
    return [
        spawn([*command, *extra], {**slurm, "SLURM_PROCID": str(rank)}) for rank in range(tasks)
    ]


def free_consecutive_ports(count: int) -> str:
    """A first port whose next `count - 1` are free too (Slurm tasks use port_base + k)."""
    for _ in range(50):
        first = int(free_ports(1))
        try:
            sockets = [socket.socket() for _ in range(count)]
            for offset, s in enumerate(sockets):
                s.bind(("127.0.0.1", first + offset))
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
        return str(first)
    raise RuntimeError("no run of free ports on 127.0.0.1")


def preempt(processes: list[subprocess.Popen], logs_dir: Path, target: int) -> list[str]:
    """SIGTERM to worker `target` once the run checkpointed; every worker must exit 0."""
    wait_for_checkpoints(processes, logs_dir, 1)
    processes[target].send_signal(signal.SIGTERM)
    outputs = finish(processes, timeout=120)
    stops = {line_of(out, "PREEMPTED") for out in outputs}
    assert len(stops) == 1, stops  # the same iter on every worker
    iters = int(stops.pop().split()[1])
    for out in outputs:  # no worker lost another, and the signalled one is named
        assert "WorkerLostError" not in out and "SIGTERM received by" in out, out[-3000:]
    assert "by this worker" in outputs[target]
    newest = sorted(glob.glob(str(logs_dir / "*" / "ckpt-*")))[-1]
    assert int(Path(newest).name.split("-")[1]) == iters  # the chief wrote that iter
    return outputs


def wait_for_checkpoints(processes: list[subprocess.Popen], logs_dir: Path, more: int) -> None:
    before = len(glob.glob(str(logs_dir / "*" / "ckpt-*")))
    started = time.monotonic()
    while len(glob.glob(str(logs_dir / "*" / "ckpt-*"))) < before + more:
        assert time.monotonic() - started < 300, f"no {more} more checkpoints"
        for process in processes:
            assert process.poll() is None, process.communicate()[0][-3000:]
        time.sleep(0.1)


def finish(processes: list[subprocess.Popen], timeout: float = 300) -> list[str]:
    outputs = []
    for process in processes:
        try:
            out, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
            raise
        assert process.returncode == 0, out[-3000:]
        outputs.append(out)
    return outputs


def line_of(output: str, tag: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(tag))


def done_line(output: str) -> str:
    return line_of(output, "DONE")


def weights(path: Path) -> list[np.ndarray]:
    with np.load(path) as saved:
        return [saved[key] for key in saved.files]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[list[str], Path]:
    """An uninterrupted 2-worker run: its outputs and the chief's final weights."""
    folder = tmp_path_factory.mktemp("reference")
    outputs = finish(start(2, folder / "logs", folder / "reference.npz"))
    return outputs, folder / "reference.npz"


@pytest.mark.timeout(900)
def test_two_workers_stop_together_on_sigterm_and_resume_after_kill_9_bitwise(tmp_path, reference):
    reference_outputs, reference_weights = reference
    # Both workers saw the same validations: metric state is summed across workers.
    assert done_line(reference_outputs[0]) == done_line(reference_outputs[1])
    assert done_line(reference_outputs[0]).startswith("DONE 36 ")
    # tg.predict gathers every worker's rows on every worker.
    predicted = [line_of(out, "PREDICT") for out in reference_outputs]
    assert predicted[0] == predicted[1] and predicted[0].startswith("PREDICT 30 ")
    run_folders = glob.glob(str(reference_weights.parent / "logs" / "*"))
    assert len(run_folders) == 1  # the follower wrote only a temporary folder

    logs = tmp_path / "killed"
    preempt(start(2, logs, tmp_path / "preempted.npz", "--slow", "0.3"), logs, target=1)

    processes = start(2, logs, tmp_path / "resumed.npz", "--slow", "0.3", "--resume")
    wait_for_checkpoints(processes, logs, 2)
    processes[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    try:
        out, _ = processes[0].communicate(timeout=120)
    except subprocess.TimeoutExpired:
        processes[0].kill()
        pytest.fail("the chief hung after the other worker was killed")
    processes[1].wait()
    waited = time.monotonic() - killed
    assert processes[0].returncode != 0
    assert "WorkerLostError" in out and "resume=True" in out, out[-3000:]
    print(f"the chief stopped {waited:.1f} s after the other worker was killed")
    if processes[0].returncode == 0:  # pragma: no cover - the run cannot have finished
        pytest.fail("the killed run finished")
    shutil.copytree(logs, tmp_path / "copy")

    resumed = finish(start(2, logs, tmp_path / "resumed.npz", "--resume"))
    assert done_line(resumed[0]) == done_line(reference_outputs[0])
    ours, theirs = weights(tmp_path / "resumed.npz"), weights(reference_weights)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a, b)

    one = finish(start(1, tmp_path / "copy", tmp_path / "one.npz", "--resume"))
    assert done_line(one[0]).startswith("DONE 36 ")
    assert_close(weights(tmp_path / "one.npz"), weights(reference_weights))


def assert_close(ours: list[np.ndarray], theirs: list[np.ndarray]) -> None:
    """Another worker count sums the same rows in another order: equal up to rounding."""
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.timeout(900)
def test_three_slurm_tasks_stop_together_on_sigterm_and_resume_on_two_workers(tmp_path, reference):
    logs = tmp_path / "logs"
    preempt(start_slurm(3, logs, "--slow", "0.3"), logs, target=2)
    resumed = finish(start(2, logs, tmp_path / "resumed.npz", "--resume"))
    assert done_line(resumed[0]).startswith("DONE 36 ")
    assert_close(weights(tmp_path / "resumed.npz"), weights(reference[1]))


@pytest.mark.timeout(300)
def test_two_workers_augmenting_their_shards_train_as_one_device_augmenting_the_batch(tmp_path):
    ports, out = free_ports(2), tmp_path / "weights.npz"
    command = [sys.executable, str(AUGMENTED), ports]
    outputs = finish([spawn([*command, str(k), str(out)], {}) for k in range(2)], timeout=240)
    count = int(line_of(outputs[0], "DONE").split()[1])
    saved = weights(out)
    assert len(saved) == 2 * count == 8
    assert_close(saved[:count], saved[count:])
