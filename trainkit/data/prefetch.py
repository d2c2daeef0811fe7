"""Background prefetch: the slices of an epoch computed ahead, in plan order, on a copy.

A `Producer` runs a `SliceWalk` (trainkit.data.walk) from the generator's cursor on a
deep copy of the preprocessor, on one daemon thread, and keeps up to `depth` steps ready.
The `Prefetcher` is the consumer side, one per DataGenerator: it takes the step due at
the cursor, begins its batch on the user's preprocessor and serves it only if the user's
preprocessor then has the counters and `state_dict()` the copy had before `process()`
(so a `process()` that depends only on its arguments, `slice_idx`, `rng` and the
preprocessor's state gives the same bits). The count `process()` negotiated on the copy
is handed to the user's preprocessor with the slice. Nothing here writes the
generator's cursor: `state_dict()` describes only what was consumed.

Adaptive (the default `prefetch`): the generator serves synchronously while running
ahead cannot pay, and runs ahead while it can. Running ahead saves at most the shorter
of the time a slice takes to serve and the time the loop spends between two `get()`
calls; when that is under a fraction of a millisecond, handing slices from a thread
costs more than it saves (GIL hand-offs, wake-ups). What is served never depends on it.

With `workers > 0`, `process()` calls run in worker processes (`worker_pool`: forkserver,
spawn where it does not exist, never fork, so TensorFlow's state is never copied into a
child); loading and the hooks stay on the thread. `worker_pool` is also the factory of
`write_store`'s workers: it refuses to start workers from an unguarded script, and its
workers end when the process that started them dies.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import ctypes
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import warnings
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool as BrokenProcessPool  # write_store
from typing import Any

from trainkit.data.preprocessors.base import Preprocessor, adopt_count
from trainkit.data.preprocessors.base import begin_batch as begin_batch  # write_store's
from trainkit.data.walk import COUNT, Negotiation, SliceWalk, Step, counters

# The default `prefetch`: slices computed ahead when the user does not say.
DEFAULT_PREFETCH = 2
# Adaptive prefetch decides every _BLOCK slices: it runs ahead when the overlap it can
# win per slice (the shorter of the time spent serving the slices and the loop's time
# between get() calls, each without its longest slice) is at least _AHEAD_S, and serves
# synchronously again below _SYNC_S (the gap keeps it from flapping). Leaving out the
# longest slice keeps one pause (a validation, a checkpoint, an epoch end) from deciding.
_AHEAD_S, _SYNC_S = 0.5e-3, 0.2e-3
_BLOCK = 8
# Slices that cost next to nothing to serve (below _CHEAP_S on average over a block, as
# in-memory arrays without preprocessing do) are not timed for a while after: 8 slices,
# then twice as many after each such block, up to _MAX_UNTIMED. A source or preprocessor
# that turns slow is noticed within _MAX_UNTIMED + 2 blocks of slices.
_CHEAP_S = _AHEAD_S / 8
_MAX_UNTIMED = 256
_LIVENESS_S = 1.0  # how often a waiting consumer checks that the thread is alive


def same(a: Any, b: Any) -> bool:
    """`a == b` for counters, False when the comparison itself is ambiguous (arrays)."""
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


class Producer:
    """Runs a `SliceWalk` on a daemon thread, at most `depth` steps ahead of the consumer.

    A step is handed over as soon as the consumer takes it (before its slice is fit), so
    the thread computes the next one while TensorFlow, which releases the GIL, runs the
    step. The walk ends the thread after the last slice of the plan or after an error.
    """

    def __init__(self, walk: SliceWalk, depth: int) -> None:
        self._walk, self._depth = walk, depth
        self._ready: deque[Step | None] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="trainkit-prefetch", daemon=True)
        self._thread.start()

    def next(self) -> Step | None:
        """The next step in plan order (waits for it), or None when the walk ended."""
        with self._cond:
            while not self._ready:
                if not self._thread.is_alive():
                    return None
                self._cond.wait(_LIVENESS_S)
            step = self._ready.popleft()
            self._cond.notify()  # room for one more ahead
            return step

    def close(self, wait: bool = True) -> None:
        """Stop the thread and drop what it computed; with `wait`, return once it ended.

        Without `wait` (an interrupt while waiting), a thread stuck in `process()` is
        left to end on its own: it is a daemon, and what it computes is dropped.
        """
        with self._cond:
            self._stop = True
            for step in self._ready:
                if step is not None and isinstance(step.result, Future):
                    step.result.cancel()
            self._ready.clear()
            self._cond.notify_all()
        if wait and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        walk, cond, ready, depth = self._walk, self._cond, self._ready, self._depth
        while True:
            with cond:
                while len(ready) >= depth and not self._stop:
                    cond.wait()
                if self._stop:
                    return
            step = walk.next()
            with cond:
                if self._stop:
                    if step is not None and isinstance(step.result, Future):
                        step.result.cancel()
                    return
                ready.append(step)
                cond.notify()
            if step is None or step.error is not None:
                return


class Prefetcher:
    """The consumer side of prefetch for one DataGenerator.

    Args:
        depth: slices kept ready beyond the one served (0: prefetch stopped).
        workers: worker processes for `process()` (0: the thread runs it).
        adaptive: run ahead only while it pays (the default `prefetch`); False runs
            ahead always.
    """

    def __init__(self, depth: int, workers: int = 0, adaptive: bool = False) -> None:
        self.depth, self.workers, self.adaptive = depth, workers, adaptive
        self.negotiation = Negotiation()
        self.head: Step | None = None  # the step being served, taken from the producer
        self._served = False  # whether get() served the head (else update_state() skips it)
        # Whether slices are computed ahead now: adaptive prefetch starts synchronously.
        self.running_ahead = bool(depth) and not adaptive
        # In lists a finalizer shares: closing must not need this object.
        self._producers: list[Producer] = []
        self._pools: list[ProcessPoolExecutor] = []
        self._finalizer = weakref.finalize(self, release, self._producers, self._pools)
        # Adaptive: over the current block of slices, the total and longest serve time and
        # loop time between get()s; when the last get() returned.
        self._block = [0, 0.0, 0.0, 0.0, 0.0]  # slices, serve total, max, away total, max
        self._left = 0.0
        self._untimed, self._pause = 0, 0  # slices left untimed; the last such pause

    # ------------------------------------------------------------------ taking a slice
    def take(
        self,
        pre: Preprocessor,
        batch_index: int,
        loaded: bool,
        start: Callable[[], SliceWalk],
        begin: Callable[[tuple[Any, Any]], None],
    ) -> Step | None:
        """The step computed ahead for the cursor, its batch begun; None to serve in sync.

        Args:
            pre: the user's preprocessor; `batch_index` and `loaded` (its batch is begun)
                the cursor.
            start: a walk from the cursor on a copy (called when no producer runs).
            begin: begins a batch the producer loaded on the user's preprocessor.

        The step is taken only if the copy that computed it had the counters and state
        the user's preprocessor has now; otherwise what was computed ahead is dropped
        and prefetch stops, with a warning naming what differed.
        """
        if self.head is not None:
            return self.head
        if not self.running_ahead:
            return None
        fresh = not self._producers
        if fresh:
            self._producers.append(Producer(start(), self.depth))
        try:
            head = self._producers[0].next()
        except BaseException as error:  # Ctrl-C while waiting: start afresh at the next get()
            self._interrupted(error)
            raise
        why = _mismatch(head, batch_index, pre.slice_idx, loaded)
        if why is None and head is not None and head.error is not None:
            self.drop()
            if isinstance(head.error, BrokenProcessPool):
                raise self.lost_worker(head.error) from head.error
            # Computed again by the caller, synchronously: the same error is raised from
            # the same state as without prefetch, and a transient failure gets its retry.
            return None
        if why is None:
            assert head is not None and head.before is not None
            if head.batch is not None:
                begin(head.batch)
            if not same(counters(pre), head.before):
                why = (
                    f"its counters or state_dict() before slice {head.slice_idx} of batch "
                    f"{head.batch_index} differ from those of the copy that computed it ahead"
                )
        if why is not None:
            self.drop()
            if not fresh:  # a producer started at this cursor always agrees
                self._stop_prefetch(pre, batch_index, why)
            return None
        self.head, self._served = head, False
        return head

    def serve(self, pre: Preprocessor, head: Step) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The slice of `head` and its description; the user's preprocessor takes its count."""
        try:
            result = head.slice()
        except BrokenProcessPool as error:
            self.drop(wait=False)
            raise self.lost_worker(error) from error
        except BaseException as error:
            self._interrupted(error)  # a get() after the error computes the slice again
            raise
        assert head.before is not None
        if head.slices_per_batch != head.before[COUNT]:  # process() negotiated the count
            adopt_count(pre, head.slices_per_batch)
            if not head.settled:  # the walk went on with the old count: walk again
                self.negotiation.seen_late()
                self._restart()
        self._served = True
        return result, head.description or {}

    def consume(self) -> None:
        """`update_state()` consumes the head, served or not."""
        head, self.head = self.head, None
        if head is None or self._served:
            return
        # Not served: the synchronous generator would not have run process(), so a count
        # process() negotiated ahead is not taken, and the walk starts again from here.
        try:
            negotiated = head.negotiated()
        except BaseException:
            negotiated = True
        if negotiated:
            self._restart()

    def _interrupted(self, error: BaseException) -> None:
        """Drop what was computed ahead without waiting for a `process()` that hangs.

        After Ctrl-C the worker processes are ended too, so that leaving the program does
        not wait for one stuck in `process()` (the next get() starts new ones).
        """
        self.drop(wait=False)
        if isinstance(error, KeyboardInterrupt):
            abandon(self._pools)

    def _restart(self) -> None:
        """Drop the producer but keep the head: the next step starts a fresh walk."""
        close_all(self._producers, [])

    # ------------------------------------------------------------------ adaptive
    def timed(self, arrived: float, head: Step | None) -> None:
        """A get() that began at `arrived` returns its slice (`head`: served from ahead).

        The time since the last get() returned is the loop's; the time since `arrived`
        (or the thread's, for a slice served from ahead) is the serving's.
        """
        if self._untimed:
            self._untimed -= 1
            if not self._untimed:
                self._left = 0.0  # the next get() starts timing afresh
            return
        now = time.perf_counter()
        left, self._left = self._left, now
        if not self.adaptive or not left:  # not adaptive, or the first get()
            return
        away = arrived - left
        serve = head.cost if head is not None else now - arrived
        block = self._block
        block[0] += 1
        block[1] += serve
        block[2] = max(block[2], serve)
        block[3] += away
        block[4] = max(block[4], away)
        if block[0] < _BLOCK:
            return
        overlap = min(block[1] - block[2], block[3] - block[4]) / (_BLOCK - 1)
        self._block = [0, 0.0, 0.0, 0.0, 0.0]
        if not self.running_ahead and (block[1] - block[2]) / (_BLOCK - 1) < _CHEAP_S:
            self._pause = min(max(2 * self._pause, _BLOCK), _MAX_UNTIMED)
            self._untimed = self._pause
            return
        self._pause = 0
        if not self.running_ahead and overlap >= _AHEAD_S and self.depth:
            self.running_ahead = True
        elif self.running_ahead and overlap < _SYNC_S:
            self.running_ahead = False
            if self.head is None:
                self.drop()

    # ------------------------------------------------------------------ lifetime
    def pool(self) -> ProcessPoolExecutor | None:
        """The worker processes (started on first use), or None without workers."""
        if not self.workers:
            return None
        if not self._pools:
            self._pools.append(worker_pool(self.workers, f"prefetch_workers={self.workers}"))
        return self._pools[0]

    def drop(self, wait: bool = True) -> None:
        """Drop what was computed ahead (the cursor moved, or an error)."""
        self.head = None
        while self._producers:
            self._producers.pop().close(wait)

    def close(self) -> None:
        """Stop the thread and the worker processes (idempotent)."""
        self.drop()
        close_all([], self._pools)

    def lost_worker(self, error: BaseException) -> RuntimeError:
        close_all([], self._pools)  # broken: a later get() starts new workers
        return lost_worker_error(f"prefetch_workers={self.workers}", error)

    def _stop_prefetch(self, pre: Preprocessor, batch_index: int, why: str) -> None:
        name = type(pre).__name__
        warnings.warn(
            f"prefetch stopped for this DataGenerator (batch {batch_index}): {name} diverged "
            f"from the copy that runs ahead: {why}. The slice is computed here and the rest "
            f"is served synchronously from {name} as it is now. Keep on_batch_load() and "
            f"update_state() of {name} deterministic, let process() set no attribute but "
            "slices_per_batch, and do not change the preprocessor while an epoch is served; "
            "or pass prefetch=0.",
            UserWarning,
            stacklevel=5,
        )
        self.depth, self.running_ahead = 0, False


def _mismatch(head: Step | None, batch_index: int, slice_idx: int, loaded: bool) -> str | None:
    if head is None:
        return "the producer ended"
    if head.batch_index != batch_index:
        return f"batch {head.batch_index} computed ahead, batch {batch_index} due"
    if (head.batch is None) != loaded and head.error is None:
        return "the batch was loaded on one side only"
    if loaded and head.slice_idx != slice_idx:
        return f"slice {head.slice_idx} computed ahead, slice {slice_idx} due"
    return None


def close_all(producers: list[Producer], pools: list[Any]) -> None:
    """Stop `producers` and shut `pools` down, emptying both lists (also a finalizer)."""
    while producers:
        producers.pop().close()
    while pools:
        pools.pop().shutdown(wait=True, cancel_futures=True)


def release(producers: list[Producer], pools: list[Any]) -> None:
    """The finalizer (at exit, or when the generator is collected): `close_all` without
    waiting. A prefetch thread stuck in `process()` no longer keeps the program from
    ending after a Ctrl-C that landed outside a wait for a slice (it is a daemon); worker
    processes are killed. (At exit, `concurrent.futures` waits for a worker's pending
    slice before this runs: a worker stuck in `process()` still holds up an exit that
    no Ctrl-C reached the workers for, e.g. an exception in the user's code.)"""
    while producers:
        producers.pop().close(wait=False)
    abandon(pools)


def abandon(pools: list[Any]) -> None:
    """Shut `pools` down without waiting on `process()`: worker processes are killed."""
    while pools:
        pool = pools.pop()
        if isinstance(pool, _WorkerPool):
            pool.abandon()
        else:
            pool.shutdown(wait=False, cancel_futures=True)


def check_copyable(pre: Preprocessor) -> str | None:
    """Why `pre` cannot be deep-copied (prefetch runs ahead on a copy), or None."""
    try:
        copy.deepcopy(pre)
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


# ------------------------------------------------------------------ worker processes


def worker_pool(workers: int, owner: str) -> ProcessPoolExecutor:
    """`workers` processes started without fork (forkserver, else spawn), for `owner`.

    The one factory of trainkit's worker processes (`prefetch_workers`, `write_store`).
    Each worker ends when the process that started it dies, even by SIGKILL.

    Args:
        workers: how many processes.
        owner: the setting that asked for them, as the user wrote it
            (`'prefetch_workers=2'`, `'write_store(..., workers=2)'`): errors name it.

    Raises:
        RuntimeError: called from the top level of a script without an
            `if __name__ == "__main__":` guard (each worker would run the script again).
    """
    check_main_guard(owner)
    methods = multiprocessing.get_all_start_methods()
    method = "forkserver" if "forkserver" in methods else "spawn"
    return _WorkerPool(
        workers,
        mp_context=multiprocessing.get_context(method),
        initializer=_worker_started,
        initargs=(os.getpid(),),
    )


# How long abandoning a pool waits for its manager thread once the workers are killed.
_ABANDON_S = 2.0


class _WorkerPool(ProcessPoolExecutor):
    """A process pool that reports a worker dying during a submit as `BrokenProcessPool`,
    and whose shutdown, once a worker died, kills the others instead of waiting on them.

    When a worker dies, Python's pool (3.11) marks itself broken from its manager thread
    while a submit may be under way on another: that submit can fail with the pool's
    pipes closed under it (`OSError`), or succeed with a future nobody will complete, or
    start a process after the manager has ended the others. Each is handled here.
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        try:
            future = super().submit(fn, *args, **kwargs)
        except Exception as error:
            broken = getattr(self, "_broken", False)
            if broken and not isinstance(error, BrokenProcessPool):
                raise BrokenProcessPool(broken) from error
            raise
        broken = getattr(self, "_broken", False)
        if broken:  # broken as it was submitted: the future may never be completed
            future.cancel()
            raise BrokenProcessPool(broken)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if getattr(self, "_broken", False):  # a worker died: end the others, do not wait
            self.abandon()
        else:
            super().shutdown(wait=wait, cancel_futures=cancel_futures)

    def abandon(self) -> None:
        """Kill the workers, shut down without waiting on them, and let the pool's manager
        thread finish its clean-up (quick once the workers are dead; bounded). A program
        that ends right after (a Ctrl-C, a lost worker) then does not race that clean-up
        at exit, where `concurrent.futures` prints `OSError: [Errno 9] Bad file
        descriptor` (or waits forever on a worker nobody stopped)."""
        # shutdown() forgets both; a submit under way holds the pool's lock until
        # shutdown() has it, so the workers are killed again after: one that submit
        # started is killed too.
        processes = getattr(self, "_processes", None) or {}
        manager = getattr(self, "_executor_manager_thread", None)
        _kill(processes)
        super().shutdown(wait=False, cancel_futures=True)
        _kill(processes)
        if manager is not None and manager is not threading.current_thread():
            manager.join(_ABANDON_S)


def _kill(processes: dict[int, Any]) -> None:
    """Kill worker processes (their results are not wanted)."""
    for process in list(processes.values()):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            process.kill()


def lost_worker_error(owner: str, error: BaseException) -> RuntimeError:
    """The error for a worker process that died (killed by the OS, or crashed)."""
    return RuntimeError(
        f"A worker process of {owner} ended abruptly (killed, for example by the "
        "operating system when memory ran out, or crashed) while computing a slice; the "
        "others were stopped. Nothing was served from it. Run again with fewer workers or "
        f"smaller batches, or without worker processes. ({type(error).__name__}: {error})"
    )


_GUARD = (
    "{owner} starts worker processes, and each one imports the script {script!r} again "
    "to find your classes; this call sits at the top level of the script, outside an "
    '`if __name__ == "__main__":` block, so every worker would run it again. Put the '
    "script's work under the guard:\n\n"
    '    if __name__ == "__main__":\n'
    "        main()\n\n"
    "(define classes and functions above it, at module level). Received: a call at "
    "line {line} of {script!r}"
)


def check_main_guard(owner: str) -> None:
    """RuntimeError when worker processes are started from an unguarded script's top level.

    With spawn and forkserver each worker imports the main script again (as
    `__mp_main__`); top-level code that starts workers would then start them in every
    worker. Seen from the parent: the call comes from the main script's module code,
    outside an `if __name__ == "__main__":` block. Seen from a worker importing the script:
    the main module is `__mp_main__`.
    """
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    if main is None or not script:
        return  # an interactive session or `python -c`: nothing is imported again
    if getattr(main, "__name__", "") == "__mp_main__":
        raise RuntimeError(_GUARD.format(owner=owner, script=script, line="?"))
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == "__main__":
            if not _guarded(script, frame.f_lineno):
                raise RuntimeError(_GUARD.format(owner=owner, script=script, line=frame.f_lineno))
            return
        frame = frame.f_back  # type: ignore[assignment]


def _guarded(script: str, line: int) -> bool:
    """Whether `line` of `script` lies inside an `if __name__ == "__main__":` block."""
    try:
        with open(script, encoding="utf-8") as file:
            tree = ast.parse(file.read())
    except (OSError, SyntaxError, ValueError):
        return True  # cannot tell: let Python's own check speak
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_main_test(node.test):
            end = node.end_lineno or node.lineno
            if node.body[0].lineno <= line <= end:
                return True
    return False


def _is_main_test(test: ast.expr) -> bool:
    if not (isinstance(test, ast.Compare) and len(test.comparators) == 1):
        return False
    names = [test.left, test.comparators[0]]
    has_name = any(isinstance(n, ast.Name) and n.id == "__name__" for n in names)
    has_main = any(isinstance(n, ast.Constant) and n.value == "__main__" for n in names)
    return has_name and has_main and isinstance(test.ops[0], ast.Eq)


_PR_SET_PDEATHSIG = 1
_WATCH_S = 0.5  # how often a worker looks whether the process that started it is alive


def _worker_started(parent: int) -> None:
    """Worker initializer: end this worker when the process that started it dies.

    With forkserver a worker's parent is the fork server, which outlives a parent killed
    with SIGKILL (each worker holds the pipe it would see closing): a daemon thread looks
    every half second whether `parent` is alive and ends the worker when it is not. On
    Linux the kernel also kills the worker when the fork server ends. (Not under spawn,
    where the parent is the thread that started the worker, which may be a prefetch
    thread ending with its epoch.)
    """
    if sys.platform.startswith("linux") and os.getppid() != parent:  # the fork server
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    threading.Thread(
        target=_watch, args=(parent,), name="trainkit-parent-watch", daemon=True
    ).start()


def _watch(parent: int) -> None:
    while True:
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # alive, owned by another user (a reused pid): keep going
            pass
        if _is_zombie(parent):
            os._exit(1)
        time.sleep(_WATCH_S)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            return file.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


def check_picklable(pre: Preprocessor, workers: int) -> None:
    """TypeError naming the class when `pre` cannot be sent to worker processes."""
    try:
        restored = pickle.loads(pickle.dumps(pre))
    except Exception as error:
        name = type(pre).__name__
        raise TypeError(
            f"prefetch_workers={workers} runs {name}.process() in worker processes, which "
            f"receive the preprocessor pickled, but {name} cannot be pickled: {error}. "
            "Keep only picklable attributes (no lambdas, open files, locks or models; "
            "define the class at module level, in a file, not in a notebook), or use "
            "background threads instead: prefetch_workers=0."
        ) from error
    if type(restored) is not type(pre):
        raise TypeError(f"{type(pre).__name__} does not pickle to itself.")
