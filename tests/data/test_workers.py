"""Worker processes (`prefetch_workers`, `write_store(..., workers=N)`) from one factory.

A worker killed by the OS gives trainkit's error naming the setting; a script without a
main guard is told how to add one before any process starts; and no worker outlives
the process that started it when that process is killed with SIGKILL.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from processes import running

from trainkit import DataGenerator, Preprocessor
from trainkit.data import prefetch, write_store


class KillsItsWorker(Preprocessor):
    """process() ends its own process with SIGKILL at one label (as the OOM killer would).

    Only in a worker process: computed in the process that built it (the test's own), it
    raises instead, so a slice computed here by mistake fails the test rather than killing
    the test runner."""

    def __init__(self, label):
        super().__init__()
        self.label, self.parent = label, os.getpid()

    def process(self, batch, labels):
        if int(labels[0]) == self.label:
            if os.getpid() == self.parent:
                raise AssertionError(f"label {self.label} was computed in the parent process")
            os.kill(os.getpid(), signal.SIGKILL)
        return batch * 2, labels


def data():
    return np.arange(64, dtype="float32").reshape(32, 2), np.arange(32)


def test_a_killed_worker_is_named_by_the_setting_that_started_it(tmp_path):
    x, y = data()
    dg = DataGenerator(
        data=x, labels=y, batch_size=4, prefetch=2, prefetch_workers=2,
        preprocessor=KillsItsWorker(8),
    )  # fmt: skip
    assert np.array_equal(dg.get()[0], x[:4] * 2)
    dg.update_state()
    with pytest.raises(RuntimeError, match=r"A worker process of prefetch_workers=2 ended abr"):
        for _ in range(3):
            dg.get()
            dg.update_state()
    assert dg.batch_index == 2  # the slice was not served
    dg.close()
    source = DataGenerator(data=x, labels=y, batch_size=4, preprocessor=KillsItsWorker(8))
    with pytest.raises(RuntimeError, match=r"of write_store\(\.\.\., workers=2\) ended abr"):
        write_store(source, tmp_path / "store", chunk_size=2, workers=2, progress=False)


@pytest.mark.parametrize("race", ["raises", "returns"])
def test_a_worker_dying_as_a_slice_is_submitted_is_a_lost_worker_too(tmp_path, monkeypatch, race):
    """Python's pool marks itself broken from its manager thread while a submit may be
    under way: the submit raises OSError (the pipes closed under the process it starts in
    the dead one's place), or returns a future nobody will complete. Either is the same
    lost worker: never a slice computed in this process instead (which, for a process()
    that kills its process, killed the test runner), nor a wait for that future."""
    submit, calls = ProcessPoolExecutor.submit, []

    def racing(pool, *args, **kwargs):  # the third submit (batch 2) meets a breaking pool
        calls.append(1)
        if len(calls) != 3:
            return submit(pool, *args, **kwargs)
        if race == "raises":
            pool._broken = "A child process terminated abruptly"
            raise OSError("handle is closed")
        future = submit(pool, *args, **kwargs)
        pool._broken = "A child process terminated abruptly"
        return future

    monkeypatch.setattr(ProcessPoolExecutor, "submit", racing)
    x, y = data()
    label = 8 if race == "raises" else -1  # 'returns': the worker computes batch 2 fine
    dg = DataGenerator(
        data=x, labels=y, batch_size=4, prefetch=2, prefetch_workers=2,
        preprocessor=KillsItsWorker(label),
    )  # fmt: skip
    with pytest.raises(RuntimeError, match=r"of prefetch_workers=2 ended abr"):
        for _ in range(4):
            dg.get()
            dg.update_state()
    assert dg.batch_index == 2 and len(calls) == 3
    dg.close()
    calls.clear()
    source = DataGenerator(data=x, labels=y, batch_size=4, preprocessor=KillsItsWorker(label))
    with pytest.raises(RuntimeError, match=r"of write_store\(\.\.\., workers=2\) ended abr"):
        write_store(source, tmp_path / "store", chunk_size=2, workers=2, progress=False)
    assert len(calls) == 3


class SleepsAhead(Preprocessor):
    """process() sleeps from label 4 on: workers busy computing ahead."""

    def process(self, batch, labels):
        if int(labels[0]) >= 4:
            time.sleep(60)
        return batch, labels


def test_a_generator_dropped_while_its_workers_compute_ahead_ends_them():
    x, y = data()
    dg = DataGenerator(
        data=x, labels=y, batch_size=4, prefetch=2, prefetch_workers=2,
        preprocessor=SleepsAhead(),
    )  # fmt: skip
    dg.get()
    workers = list(dg._prefetch._pools[0]._processes.values())
    time.sleep(0.5)  # batches 1 and 2 are being computed (for a minute)
    started = time.monotonic()
    del dg
    gc.collect()
    for worker in workers:
        worker.join(5)
    assert [worker.exitcode for worker in workers] == [-signal.SIGKILL] * len(workers)
    assert time.monotonic() - started < 5


def test_an_abandoned_pool_is_cleaned_up_before_the_program_goes_on():
    """After Ctrl-C the workers are killed and the pool's own clean-up is over before the
    program goes on: a program ending right after does not race it at exit (where
    Python's pool printed `OSError: [Errno 9] Bad file descriptor` after the
    KeyboardInterrupt)."""
    pool = prefetch.worker_pool(2, "prefetch_workers=2")
    busy = [pool.submit(time.sleep, 60) for _ in range(2)]
    while not all(future.running() for future in busy):
        time.sleep(0.01)
    workers = list(pool._processes.values())
    manager = pool._executor_manager_thread
    started = time.monotonic()
    prefetch.abandon([pool])
    assert time.monotonic() - started < 5  # did not wait for the sleeping workers
    assert not manager.is_alive()
    assert not any(worker.is_alive() for worker in workers)


def _python(script, tmp_path, timeout=60):
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(script))
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    process = subprocess.Popen(
        [sys.executable, str(path)], cwd=tmp_path, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


HEADER = """
    import numpy as np
    from trainkit import DataGenerator, RandomCropPreprocessor
    from trainkit.data import write_store
    x = np.zeros((16, 6, 6), "float32")
    dg = DataGenerator(data=x, batch_size=4, preprocessor=RandomCropPreprocessor(4), {prefetch})
"""


@pytest.mark.parametrize(
    ("call", "owner"),
    [
        ("dg.get()", "prefetch_workers=2"),
        ("write_store(dg, 'store', chunk_size=2, workers=2)", r"write_store\(\.\.\., workers=2\)"),
    ],
)
def test_a_script_without_a_main_guard_is_told_to_add_one(tmp_path, call, owner):
    prefetch = "prefetch_workers=2" if "get" in call else "prefetch=0"
    code, _, err = _python(HEADER.format(prefetch=prefetch) + f"    {call}\n", tmp_path)
    assert code == 1
    assert "RuntimeError: " + owner.replace("\\", "") in err
    assert 'if __name__ == "__main__":' in err and "script.py" in err
    assert "bootstrapping" not in err and "BrokenProcessPool" not in err  # Python's own
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").glob("chunk-*"))
    guarded = HEADER.format(prefetch=prefetch) + f"    if __name__ == '__main__':\n        {call}\n"
    code, _, err = _python(guarded, tmp_path)  # finishes the store begun above
    assert code == 0, err[-2000:]


ORPHANS = """
    import json, multiprocessing, os, signal, threading, time
    import numpy as np
    from trainkit import DataGenerator, Preprocessor
    from trainkit.data import write_store

    class Slow(Preprocessor):
        def process(self, batch, labels):
            time.sleep(0.2)
            return batch, labels

    def kill_once_workers_run():
        while len(multiprocessing.active_children()) < 2:
            time.sleep(0.02)
        time.sleep(0.3)  # the workers are computing
        from multiprocessing import forkserver
        pids = [p.pid for p in multiprocessing.active_children()]
        print(json.dumps([*pids, forkserver._forkserver._forkserver_pid]), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    if __name__ == "__main__":
        threading.Thread(target=kill_once_workers_run, daemon=True).start()
        dg = DataGenerator(data=np.zeros((400, 2), "float32"), batch_size=4,
                           preprocessor=Slow(), prefetch=0)
        write_store(dg, "store", chunk_size=4, workers=2, progress=False)
"""


def test_no_worker_outlives_its_killed_parent(tmp_path):
    code, out, _ = _python(ORPHANS, tmp_path)  # returns: nobody holds its stderr open
    assert code == -signal.SIGKILL
    pids = json.loads(out.splitlines()[-1])  # the workers, then the fork server
    assert len(pids) >= 3
    started = time.monotonic()
    while any(map(running, pids)) and time.monotonic() < started + 5:
        time.sleep(0.1)
    assert not [pid for pid in pids if running(pid)], "workers outlived their killed parent"


HANGS = """
    import signal, sys, time
    # As a program started from a terminal: pytest-xdist's workers ignore SIGINT, and a
    # child inherits that (this test then failed by the order of the workers' tests).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import numpy as np
    from trainkit import DataGenerator, Preprocessor

    class Hangs(Preprocessor):
        def process(self, batch, labels):
            if int(batch[0, 0]) >= 4:
                time.sleep(1000)
            return batch, labels

    if __name__ == "__main__":
        dg = DataGenerator(data=np.arange(32, dtype="float32").reshape(16, 2), batch_size=2,
                           preprocessor=Hangs(), prefetch=2, prefetch_workers=int(sys.argv[1]))
        dg.get()
        dg.update_state()
        print("waiting", flush=True)
        import faulthandler
        faulthandler.dump_traceback_later(8)  # still alive then: say where each thread is
        if sys.argv[2] == "elsewhere":
            time.sleep(30)  # the user's own code, while the slice ahead hangs
        dg.get()
"""


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("where", ["waiting", "elsewhere"])
def test_one_ctrl_c_ends_a_program_whose_process_hangs_ahead(tmp_path, workers, where):
    """Ctrl-C ends the program whether it lands while the loop waits for the slice that
    hangs or in the user's code (where the generator's clean-up at exit must not wait)."""
    path = tmp_path / "hangs.py"
    path.write_text(textwrap.dedent(HANGS))
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    process = subprocess.Popen(
        [sys.executable, str(path), str(workers), where], env=env, text=True,
        start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout.readline().strip() == "waiting"
        time.sleep(0.5)  # the loop waits for the slice that hangs (or the user's sleep)
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the group
        _, err = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"still running 10 s after Ctrl-C:\n{process.communicate()[1]}")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert err.strip().splitlines()[-1] == "KeyboardInterrupt", err[-3000:]
