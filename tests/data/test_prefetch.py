"""Background prefetch changes nothing that is served: slices, order, state dicts, errors.

`prefetch=N` computes up to N slices ahead on a copy of the preprocessor; the generator
consumes them in plan order and its state describes only what was consumed.
"""

import gc
import os
import subprocess
import sys
import threading
import time
import traceback

import numpy as np
import pytest

from trainkit import DataGenerator, Preprocessor, RandomCropPreprocessor, TimeseriesPreprocessor
from trainkit.data import prefetch as prefetch_lib
from trainkit.data import write_sets
from trainkit.testing import assert_resumes_identically


def series(n=40, timesteps=20, features=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, timesteps, features)).astype("float32"), rng.integers(0, 3, n)


class EndsEarlyOrLate(Preprocessor):
    """Halves a batch into slices, but ends even batches after one slice and odd ones late."""

    def on_batch_load(self, batch, labels):
        self.slices_per_batch = 2
        self.parity = int(batch[0, 0, 0] > 0)

    def process(self, batch, labels):
        half = len(batch) // 2
        part = slice(0, half) if self.slice_idx % 2 == 0 else slice(half, None)
        noise = self.rng.normal(size=batch[part].shape).astype("float32")
        return batch[part] + noise, labels[part]

    def update_state(self):
        self.slice_idx += 1
        self.batch_exhausted = self.slice_idx >= (1 if self.parity == 0 else 3)


CASES = {
    "shuffled samples": lambda: {"shuffle": "samples"},
    "random crops": lambda: {"shuffle": True, "preprocessor": RandomCropPreprocessor((8, 2))},
    "windows with start_increments": lambda: {
        "preprocessor": TimeseriesPreprocessor(
            window_size=6, slide_size=4, start_increments=[0, 2, 3]
        )
    },
    "batches ended early or late": lambda: {"preprocessor": EndsEarlyOrLate()},
}


def walk(dg, epochs=3):
    """Every slice of `epochs` epochs with where it is and what the preprocessor said."""
    out = []
    for _ in range(epochs):
        while not dg.all_data_exhausted:
            x, y, *_ = dg.get()
            out.append(
                (dg.epoch, dg.set_name, dg.slice_idx, np.array(x), np.array(y), dg.describe_slice())
            )
            dg.update_state()
        dg.on_epoch_end()
    return out


def assert_same_stream(expected, actual):
    assert len(expected) == len(actual)
    for position, (a, b) in enumerate(zip(expected, actual, strict=True)):
        assert a[:3] == b[:3], position
        assert np.array_equal(a[3], b[3]) and a[3].dtype == b[3].dtype, position
        assert np.array_equal(a[4], b[4]), position
        assert a[5] == b[5], position


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("depth", [1, 3])
def test_prefetch_serves_the_synchronous_stream_for_three_epochs(case, depth):
    x, y = series()
    sync = walk(DataGenerator(data=x, labels=y, batch_size=8, prefetch=0, **CASES[case]()))
    ahead = walk(DataGenerator(data=x, labels=y, batch_size=8, prefetch=depth, **CASES[case]()))
    assert_same_stream(sync, ahead)


def test_prefetch_serves_files_on_disk_like_the_synchronous_generator(tmp_path):
    x, y = series(n=50)
    sources = write_sets(x, y, tmp_path / "sets", set_size=8)

    def make(prefetch):
        return DataGenerator(**sources, batch_size=12, shuffle=True, prefetch=prefetch)

    assert_same_stream(walk(make(0)), walk(make(2)))


def test_prefetch_computes_two_slices_ahead_on_a_background_thread():
    seen = []

    class Where(Preprocessor):
        def process(self, batch, labels):
            seen.append((threading.current_thread().name, int(labels[0])))
            return batch, labels

    x, _ = series()
    dg = DataGenerator(
        data=x, labels=np.arange(len(x)), batch_size=4, preprocessor=Where(), prefetch=2
    )
    assert dg.prefetch == 2
    dg.get()
    deadline = time.monotonic() + 10
    while len(seen) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    # The slice being served plus at most two ahead; all computed off the main thread.
    assert [label for _, label in seen] == [0, 4, 8]
    assert {name for name, _ in seen} == {"trainkit-prefetch"}
    dg.close()


def test_the_default_runs_ahead_only_while_the_loop_leaves_time_for_it():
    threads = []

    class Slow(Preprocessor):
        def process(self, batch, labels):
            threads.append(threading.current_thread().name)
            time.sleep(0.002)  # a slice worth computing ahead
            return batch, labels

    x, y = series(n=160)
    dg = DataGenerator(data=x, labels=y, batch_size=4, preprocessor=Slow())
    assert dg.prefetch == 2
    for _ in range(12):  # a loop with no work between slices: served synchronously
        dg.get()
        dg.update_state()
    assert set(threads) == {"MainThread"}
    threads.clear()
    for _ in range(20):  # a loop whose step takes a while: computed ahead, after a while
        dg.get()
        time.sleep(0.003)
        dg.update_state()
    assert threads.count("trainkit-prefetch") >= 8
    fresh = DataGenerator(data=x, labels=y, batch_size=4, preprocessor=Slow(), prefetch=0)
    dg.load_state_dict(fresh.state_dict())  # back to the start: the same stream as prefetch=0
    assert_same_stream(walk(fresh, epochs=2), walk(dg, epochs=2))


def test_the_default_times_cheap_slices_less_often_and_still_notices_slow_ones(monkeypatch):
    threads, slow, timed = [], [False], []

    class Clock:
        @staticmethod
        def perf_counter():
            timed.append(1)
            return time.perf_counter()

    monkeypatch.setattr(prefetch_lib, "time", Clock)

    class TurnsSlow(Preprocessor):
        def process(self, batch, labels):
            threads.append(threading.current_thread().name)
            if slow[0]:
                time.sleep(0.002)
            return batch, labels

    x, y = series(n=160)
    dg = DataGenerator(data=x, labels=y, batch_size=4, preprocessor=TurnsSlow())

    def serve(count, pause=0.0):
        for _ in range(count):
            if dg.all_data_exhausted:
                dg.on_epoch_end()
            dg.get()
            time.sleep(pause)
            dg.update_state()

    serve(700)  # slices that cost nothing: timed ever less often, up to 256 in a row
    assert set(threads) == {"MainThread"}
    assert len(timed) < 80  # blocks of 8 timed between pauses of 8, 16, ..., 256
    slow[0] = True
    threads.clear()
    serve(256 + 2 * 8 + 24, pause=0.003)  # now worth computing ahead: noticed in time
    assert threads.count("trainkit-prefetch") >= 8


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_state_dict_taken_with_prefetch_on_resumes_with_and_without_it(case):
    x, y = series()

    def make(prefetch):
        return lambda: DataGenerator(
            data=x, labels=y, batch_size=8, prefetch=prefetch, **CASES[case]()
        )

    assert_resumes_identically(make(2), epochs=2)

    reference = walk(make(0)(), epochs=2)
    for cut in sorted({0, 1, 6, 11, len(reference) - 1} & set(range(len(reference)))):
        for source_depth, target_depth in ((2, 0), (0, 3), (3, 1)):
            original = make(source_depth)()
            for _ in range(cut):
                if original.all_data_exhausted:
                    original.on_epoch_end()
                original.get()
                original.update_state()
            if not original.all_data_exhausted:
                original.get()  # a peek: computed, not consumed
            state = original.state_dict()
            sync_state = make(0)()
            for _ in range(cut):
                if sync_state.all_data_exhausted:
                    sync_state.on_epoch_end()
                sync_state.update_state()
            if not sync_state.all_data_exhausted:
                sync_state.get()
            assert state == sync_state.state_dict(), "state_dict() describes only what was consumed"
            restored = make(target_depth)()
            restored.load_state_dict(state)
            rest = walk(restored, epochs=2)[: len(reference) - cut]
            assert_same_stream(reference[cut:], rest)


class FailsAt(Preprocessor):
    """Raises in process() for one (epoch, batch labels) slice."""

    def __init__(self, label):
        super().__init__()
        self.label = label

    def process(self, batch, labels):
        if int(labels[0]) == self.label:
            raise_for_test(self.label)
        return batch, labels


def raise_for_test(label):
    raise ArithmeticError(f"bad sample {label}")


@pytest.mark.parametrize("depth", [0, 1, 4])
def test_an_error_computed_ahead_is_raised_by_the_get_of_its_slice(depth):
    x, y = series()
    y = np.arange(len(x))
    dg = DataGenerator(data=x, labels=y, batch_size=4, prefetch=depth, preprocessor=FailsAt(12))
    served = []
    with pytest.raises(ArithmeticError, match="bad sample 12") as raised:
        while True:
            served.append(int(dg.get()[1][0]))
            dg.update_state()
    assert served == [0, 4, 8]
    assert dg.batch_index == 3 and dg.state_dict()["batch_index"] == 3
    frames = [frame.name for frame in traceback.extract_tb(raised.value.__traceback__)]
    assert "raise_for_test" in frames and "process" in frames  # the original traceback
    with pytest.raises(ArithmeticError, match="bad sample 12"):
        dg.get()  # computed again, raised again
    dg.preprocessor.label = -1  # fixed: the next get() serves the slice
    assert int(dg.get()[1][0]) == 12
    dg.update_state()
    assert int(dg.get()[1][0]) == 16


def test_a_loader_error_ahead_is_raised_at_the_batch_that_reads_the_file(tmp_path):
    x, y = series(n=24)
    sources = write_sets(x, y, tmp_path / "sets", set_size=4)

    broken = []

    def loader(path, set_num):
        if set_num in broken:
            raise OSError(f"disk error reading {path}")
        return np.load(path)

    dg = DataGenerator(**sources, batch_size=4, loader=loader, prefetch=3)
    broken.append("3")  # the disk fails after construction looked at every file
    for _ in range(3):
        dg.get()
        dg.update_state()
    with pytest.raises(OSError, match="disk error reading"):
        dg.get()
    assert dg.batch_index == 3


def test_a_preprocessor_changed_mid_epoch_is_followed_with_a_warning():
    class Scale(Preprocessor):
        def __init__(self):
            super().__init__()
            self.factor = 1.0

        def process(self, batch, labels):
            return batch * self.factor, labels

        def state_dict(self):
            return {"factor": self.factor}

        def load_state_dict(self, state):
            self.factor = state["factor"]

    x, y = series()
    dg = DataGenerator(data=x, labels=y, batch_size=4, preprocessor=Scale(), prefetch=3)
    assert np.array_equal(dg.get()[0], x[:4])
    dg.update_state()
    dg.preprocessor.factor = 2.0
    with pytest.warns(UserWarning, match="Scale diverged from the copy that runs ahead"):
        second = dg.get()[0]
    assert np.array_equal(second, x[4:8] * 2)
    assert dg.prefetch == 0  # served synchronously from here on


def test_get_stays_peek_safe_with_prefetch():
    x, y = series()
    dg = DataGenerator(data=x, labels=y, batch_size=4, prefetch=2)
    first = dg.get()
    assert dg.get() is first and dg.batch_index == 0
    state = dg.state_dict()
    assert state["batch_index"] == 0 and state["slice_idx"] == 0


class Unpicklable(Preprocessor):
    def __init__(self):
        super().__init__()
        self.transform = lambda batch: batch * 2

    def process(self, batch, labels):
        return self.transform(batch), labels


class Uncopyable(Preprocessor):
    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()

    def process(self, batch, labels):
        return batch, labels


def test_a_preprocessor_that_cannot_be_copied_is_named_or_served_synchronously():
    x, y = series()
    with pytest.raises(TypeError, match=r"Uncopyable cannot be deep-copied.*prefetch=0"):
        DataGenerator(data=x, labels=y, preprocessor=Uncopyable(), prefetch=2)
    dg = DataGenerator(data=x, labels=y, preprocessor=Uncopyable())  # the default
    assert dg.prefetch == 0


def test_prefetch_workers_need_a_picklable_preprocessor_and_prefetch():
    x, y = series()
    with pytest.raises(TypeError, match=r"Unpicklable cannot be pickled.*prefetch_workers=0"):
        DataGenerator(data=x, labels=y, preprocessor=Unpicklable(), prefetch_workers=2)
    with pytest.raises(ValueError, match=r"needs prefetch >= prefetch_workers.*prefetch=0"):
        DataGenerator(data=x, labels=y, prefetch=0, prefetch_workers=1)
    with pytest.raises(ValueError, match=r"prefetch=1, prefetch_workers=4"):
        DataGenerator(data=x, labels=y, prefetch=1, prefetch_workers=4)
    assert DataGenerator(data=x, labels=y, prefetch_workers=4).prefetch == 4  # the default


def test_worker_processes_serve_the_same_stream_and_end_with_the_generator():
    import multiprocessing

    x, y = series()
    kwargs = CASES["random crops"]()
    sync = walk(DataGenerator(data=x, labels=y, batch_size=8, prefetch=0, **kwargs), epochs=2)
    kwargs = CASES["random crops"]()
    dg = DataGenerator(data=x, labels=y, batch_size=8, prefetch=4, prefetch_workers=2, **kwargs)
    assert_same_stream(sync, walk(dg, epochs=2))
    assert multiprocessing.active_children()
    dg.close()
    assert not [p for p in multiprocessing.active_children() if p.is_alive()]


def test_no_prefetch_thread_outlives_its_generator():
    def prefetch_threads():
        return [t for t in threading.enumerate() if t.name == "trainkit-prefetch"]

    x, y = series()
    gc.collect()  # generators of earlier tests
    before = len(prefetch_threads())
    dg = DataGenerator(data=x, labels=y, batch_size=4, prefetch=2)
    dg.get()
    assert len(prefetch_threads()) == before + 1
    dg.close()
    assert len(prefetch_threads()) == before
    assert dg.get() is not None  # a closed generator still serves
    dg.close()

    with DataGenerator(data=x, labels=y, batch_size=4, prefetch=2) as dg:
        dg.get()
    assert len(prefetch_threads()) == before

    dg = DataGenerator(data=x, labels=y, batch_size=4, prefetch=2)
    dg.get()
    del dg
    gc.collect()
    assert len(prefetch_threads()) == before  # closed on garbage collection


def test_the_interpreter_exits_with_a_generator_still_prefetching(tmp_path):
    script = (
        "import numpy as np\n"
        "from trainkit import DataGenerator\n"
        "dg = DataGenerator(data=np.zeros((1000, 8), 'float32'), batch_size=4, prefetch=3)\n"
        "dg.get()\n"
        "print('served')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "served" and "Traceback" not in done.stderr


@pytest.mark.parametrize("where", ["on_batch_load", "process"])
def test_after_an_error_the_state_is_the_synchronous_one(where):
    class Fails(Preprocessor):
        def on_batch_load(self, batch, labels):
            self.slices_per_batch = 2
            if where == "on_batch_load" and int(labels[0]) == 4:
                raise ArithmeticError("load boom")

        def process(self, batch, labels):
            if where == "process" and int(labels[0]) == 4:
                raise ArithmeticError("process boom")
            return batch, labels

    x, _ = series()
    states = []
    for depth in (0, 2):
        dg = DataGenerator(
            data=x, labels=np.arange(len(x)), batch_size=4, prefetch=depth, preprocessor=Fails()
        )
        dg.get()
        dg.update_state()
        dg.update_state()  # batch 0 done without a second get()
        with pytest.raises(ArithmeticError, match="boom"):
            dg.get()
        states.append(dg.state_dict())
    assert states[0] == states[1]
