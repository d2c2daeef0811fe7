"""One writer at a time: the run folder's lock, across processes and within one.

The cross-process cases run `lock_case.py` in real subprocesses: one trains and waits
at iter 3 while another tries `resume=True`; one is SIGKILLed while it holds the lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from lock_case import EPOCHS, build_model, datagen

from trainkit import TrainGenerator
from trainkit.callbacks import Callback
from trainkit.checkpoints import (
    LOCK_FILE,
    RunFolderChangedError,
    RunFolderLockedError,
    RunLock,
    latest_checkpoint,
)

# The in-process cases stop a trainer with a callback and resume without it.
pytestmark = pytest.mark.filterwarnings("ignore:The checkpoint saved 1 callbacks")
SCRIPT = os.path.join(os.path.dirname(__file__), "lock_case.py")
ITERS = EPOCHS * 6  # 24 samples in batches of 4, one slice each


def _start(logs_dir, mode: str, flag_dir=None) -> subprocess.Popen:
    command = [sys.executable, SCRIPT, str(logs_dir), mode] + ([str(flag_dir)] if flag_dir else [])
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path, process: subprocess.Popen, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if process.poll() is not None:
            raise AssertionError(
                f"exit {process.returncode} before {path}: {process.stderr.read()}"
            )
        assert time.monotonic() < deadline, f"no {path} after {timeout} s"
        time.sleep(0.05)
    time.sleep(0.05)  # the pid is written right after the file is created
    with open(path) as file:
        return file.read()


def _snapshot(folder) -> dict[str, tuple[int, str, int]]:
    """Every file under `folder`: size, SHA-256 and mtime (nothing may change)."""
    found = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as file:
                digest = hashlib.sha256(file.read()).hexdigest()
            stat = os.stat(path)
            found[os.path.relpath(path, folder)] = (stat.st_size, digest, stat.st_mtime_ns)
    return found


def _run_dir(logs_dir) -> str:
    (name,) = [n for n in os.listdir(logs_dir) if n.startswith("M")]
    return os.path.join(logs_dir, name)


def _assert_logs_intact(run_dir: str) -> None:
    with open(os.path.join(run_dir, "provenance.jsonl")) as file:
        iters = [json.loads(line)["iter"] for line in file]
    assert iters == list(range(1, ITERS + 1))  # one record per iter, none twice, none lost
    with open(os.path.join(run_dir, "metrics.csv")) as file:
        rows = file.read().splitlines()[1:]
    assert len(rows) == len(set(rows)) == EPOCHS * 6  # one row per train batch


def _trainer(logs_dir, resume=False, **kwargs) -> TrainGenerator:
    kwargs = {"epochs": EPOCHS, "val_freq": None, "iter_verbosity": 0, **kwargs}
    return TrainGenerator(build_model(), datagen(), logs_dir=str(logs_dir), resume=resume, **kwargs)


class StopAt(Callback):
    def __init__(self, iters_fit: int):
        self.at = iters_fit

    def on_train_iter_end(self, iteration, logs=None):
        if self.trainer.iters_fit == self.at:
            raise RuntimeError("stopped")


# ---------------------------------------------------------------- across processes


@pytest.fixture(scope="module")
def processes(tmp_path_factory):
    """Start every subprocess at once: they import TensorFlow in parallel."""
    root = tmp_path_factory.mktemp("run_lock")
    for name in ("busy", "killed"):
        (root / name / "flags").mkdir(parents=True)
    started = {
        "training": _start(root / "busy" / "logs", "train", root / "busy" / "flags"),
        "resuming": _start(root / "busy" / "logs", "resume", root / "busy" / "flags"),
        "killed": _start(root / "killed" / "logs", "die", root / "killed" / "flags"),
    }
    yield root, started
    for process in started.values():
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_a_second_process_cannot_resume_a_run_being_trained_and_the_run_stays_intact(processes):
    root, started = processes
    logs_dir, flags = root / "busy" / "logs", root / "busy" / "flags"
    first, second = started["training"], started["resuming"]
    pid = int(_wait_for(flags / "waiting", first))
    run_dir = _run_dir(logs_dir)
    before = _snapshot(run_dir)

    (flags / "try").write_text("")
    _, stderr = second.communicate(timeout=120)
    assert second.returncode != 0
    assert "RunFolderLockedError" in stderr
    assert f"pid {pid} on host {socket.gethostname()}" in stderr
    assert "another process right now" in stderr and "Received: resume=True" in stderr
    with pytest.raises(RunFolderLockedError, match=f"pid {pid} ") as refused:
        _trainer(logs_dir, resume=True)  # the same refusal in this process
    assert refused.value.holder["pid"] == pid
    assert _snapshot(run_dir) == before  # the refused trainers touched nothing

    (flags / "go").write_text("")
    stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert json.loads(stdout.splitlines()[-1])["iters_fit"] == ITERS
    _assert_logs_intact(run_dir)


def test_a_run_whose_trainer_was_killed_while_holding_the_lock_resumes(processes):
    root, started = processes
    logs_dir, killed = root / "killed" / "logs", started["killed"]
    killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL
    run_dir = _run_dir(logs_dir)
    with open(os.path.join(run_dir, LOCK_FILE)) as file:
        assert json.load(file)["pid"] == killed.pid  # the lock file stays; its lock does not

    tg = _trainer(logs_dir, resume=True)
    assert tg.run_dir == run_dir
    tg.train()
    assert tg.iters_fit == ITERS
    _assert_logs_intact(run_dir)


# ---------------------------------------------------------------- within one process


def test_train_holds_the_lock_and_releases_it_however_it_ends(tmp_path):
    seen = {}

    class TryTheLock(Callback):
        def on_train_iter_end(self, iteration, logs=None):
            if self.trainer.iters_fit == 2:
                with pytest.raises(RunFolderLockedError) as refused:
                    RunLock(self.trainer.run_dir).acquire("train")
                seen["holder"] = refused.value.holder
                raise RuntimeError("a failing callback")

    tg = _trainer(tmp_path, callbacks=[TryTheLock()])
    with pytest.raises(RuntimeError, match="a failing callback"):
        tg.train()
    assert seen["holder"]["pid"] == os.getpid()
    assert set(seen["holder"]) == {"pid", "host", "since", "writer"}
    with RunLock(tg.run_dir).held("train"):  # released by the exception
        pass
    tg.train()  # the same trainer takes it again: nobody else wrote meanwhile
    assert tg.iters_fit == ITERS


def test_a_trainer_refuses_to_write_on_after_another_trainer_continued_its_run(tmp_path):
    first = _trainer(tmp_path, callbacks=[StopAt(4)], checkpoint_freq={"batch": 1})
    with pytest.raises(RuntimeError, match="stopped"):
        first.train()
    second = _trainer(tmp_path, resume=True)  # a new trainer on the stopped run: fine
    second.train()
    before = _snapshot(first.run_dir)
    with pytest.raises(RunFolderChangedError, match="another trainer continued this run"):
        first.train()
    with pytest.raises(RunFolderChangedError, match="resume=True"):
        first.checkpoint()
    assert _snapshot(first.run_dir) == before
    assert second.checkpoint() == latest_checkpoint(second.run_dir)  # the writer writes on


def test_a_trainer_only_built_on_a_run_still_counts_as_continuing_it(tmp_path):
    first = _trainer(tmp_path, callbacks=[StopAt(4)], checkpoint_freq={"batch": 1})
    with pytest.raises(RuntimeError, match="stopped"):
        first.train()
    _trainer(tmp_path, resume=True)  # truncated the logs to its checkpoint
    with pytest.raises(RunFolderChangedError, match="opened the run for writing"):
        first.train()


def test_a_refused_construction_leaves_the_run_to_its_trainer(tmp_path):
    first = _trainer(tmp_path, callbacks=[StopAt(4)], checkpoint_freq={"batch": 1})
    with pytest.raises(RuntimeError, match="stopped"):
        first.train()
    with pytest.raises(ValueError, match="reset_statefuls"):
        _trainer(tmp_path, resume=True, reset_statefuls=True)
    first.train()  # the refused trainer neither holds the lock nor claimed the run
    assert first.iters_fit == ITERS


def test_a_stale_or_unreadable_lock_file_is_taken_over(tmp_path):
    tg = _trainer(tmp_path, callbacks=[StopAt(2)], checkpoint_freq={"batch": 1})
    with pytest.raises(RuntimeError, match="stopped"):
        tg.train()
    with open(os.path.join(tg.run_dir, LOCK_FILE), "w") as file:
        file.write('{"pid": 99999999, "ho')  # torn, of a process long gone
    resumed = _trainer(tmp_path, resume=True)
    resumed.train()
    assert resumed.iters_fit == ITERS


def test_a_symlink_in_place_of_the_lock_file_is_refused_not_followed(tmp_path):
    tg = _trainer(tmp_path, callbacks=[StopAt(2)], checkpoint_freq={"batch": 1})
    with pytest.raises(RuntimeError, match="stopped"):
        tg.train()
    target = tmp_path / "elsewhere.txt"
    target.write_text("untouched")
    os.remove(os.path.join(tg.run_dir, LOCK_FILE))
    os.symlink(target, os.path.join(tg.run_dir, LOCK_FILE))
    with pytest.raises(OSError, match="lock file"):
        _trainer(tmp_path, resume=True)
    assert target.read_text() == "untouched"


def test_the_lock_is_reentrant_and_records_its_holder(tmp_path):
    lock = RunLock(str(tmp_path))
    with lock.held("train"), lock.held("checkpoint"):
        assert lock.is_held
        with open(tmp_path / LOCK_FILE) as file:
            record = json.load(file)
    assert not lock.is_held
    assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
    assert record["since"].endswith("Z")
