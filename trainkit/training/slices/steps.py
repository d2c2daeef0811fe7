"""The steps that call Keras: one compiled train or test step per slice.

Keras' own `train_function` returns metric values that are running means over the
epoch. trainkit wants each slice's own values, so its compiled step resets the model's
metric state *inside* the graph, after reading the results: an eager
`model.reset_metrics()` per step would cost about half the throughput of a tiny model.
The step returns every value stacked in one tensor so that a single host copy per
step brings them to Python.

A slice of plain NumPy arrays is handed to the step's concrete function as its flat
list of tensors (`flat_call`): TensorFlow's own call matches every argument against
the function's signature first, which costs about a fifth of a tiny model's step on
CPU. Whatever the flat call can't take (ragged parts, a TensorFlow without it) goes
through the ordinary call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from trainkit.checkpoints.model_state import stateful_layers

__all__ = [
    "SAMPLES_KEY",
    "CompiledStep",
    "FusedSteps",
    "num_samples",
    "reset_states",
    "restore_states",
    "snapshot_states",
    "stateful_layers",
]

# Logged by a distributed step beside the metric values: the slice's rows on all workers
# together (what the slice weighs in means); popped before anything is logged.
SAMPLES_KEY = "__trainkit_global_samples__"


class CompiledStep:
    """`step(x, y) -> dict[str, float]` around `model.train_step` or `model.test_step`.

    `y=None` calls the Keras step with `(x,)`, for models that compute their own loss;
    `sample_weight` (one weight per sample) is passed as Keras' third element.

    `guard=True` (on_nonfinite='skip'): a train step whose loss is not finite is undone
    inside the graph, so the weights, the optimizer's slots and its `iterations` are as
    before it. It costs one copy of those variables per step.
    """

    def __init__(self, model: Any, mode: str, guard: bool = False):
        self.model = model
        self.names: list[str] = []  # filled when the graph is traced
        self.guard = guard and mode == "train"
        if self.guard:
            _build_optimizer(model)  # its slots exist before the first guarded step
        step_fn = model.train_step if mode == "train" else model.test_step
        self._step_fn = guarded(model, step_fn) if self.guard else step_fn
        self._function = self._build()
        self._traced_with_built_metrics = False
        self._concrete: dict[tuple[Any, ...], Callable[..., Any]] = {}

    def _build(self) -> Callable[..., Any]:
        model, step_fn = self.model, self._step_fn

        def one_step(data: tuple[Any, ...]) -> Any:
            # Reset before too: something outside the loop (a callback calling
            # `model.evaluate`) may have left metric state behind.
            model.reset_metrics()
            logs = step_fn(data)
            names, values = _flatten_logs(logs)
            self.names = names
            stacked = tf.stack(values)
            # The reads above happen before the resets below: tf.function orders
            # stateful ops on the same variables in program order.
            model.reset_metrics()
            return stacked

        if model.run_eagerly:
            return one_step
        return tf.function(one_step, reduce_retracing=True, jit_compile=model.jit_compile)

    def __call__(self, x: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
        data = step_data(x, y, sample_weight)
        if not self._traced_with_built_metrics:
            return self._first_call(data)
        key = _array_key(data) or _signature_key(data)
        function = self._concrete.get(key)
        if function is None:
            function = self._concrete[key] = self._concrete_function(data)
        return dict(zip(self.names, function(data).numpy().tolist(), strict=True))

    def _concrete_function(self, data: tuple[Any, ...]) -> Callable[..., Any]:
        # Calling the concrete function skips tf.function's per-call signature
        # matching: about 10% of a tiny model's step on CPU; its flat call as much again.
        if self.model.run_eagerly:
            return self._function
        return flat_call(self._function.get_concrete_function(data), data)  # type: ignore[attr-defined]

    @property
    def ready(self) -> bool:
        """Traced with the model's metrics and optimizer built (a fused call may follow)."""
        return self._traced_with_built_metrics

    def _first_call(self, data: tuple[Any, ...]) -> dict[str, float]:
        # Compiled metrics are built during the first trace, after the reset that
        # precedes the step was traced; retrace once so that reset covers them.
        count = len(self.model.metrics_variables)
        values = self._function(data).numpy().tolist()
        if len(self.model.metrics_variables) != count:
            self._function = self._build()
        self._traced_with_built_metrics = True
        return dict(zip(self.names, values))


class FusedSteps:
    """`steps(slices) -> [logs, ...]`: fit several same-shaped slices in one compiled call.

    The slices are stacked along a new leading axis and the graph runs the same train
    step on each in turn (metrics reset around each, as `CompiledStep` does), returning
    every slice's values. Stateful ops on the same variables (weights, optimizer slots,
    the seed generators of Dropout) run in program order, so the result is bitwise what
    calling `CompiledStep` once per slice gives.

    Two graphs run a group:

    - a loop inside the graph (`tf.range`), one trace for every group length;
    - with `unroll=True` (the feeder passes it for a full group, `steps_per_execution`
      slices), the steps written out one after another for that length, each after
      every op of the one before, run by TensorFlow's single-threaded executor. A
      small model's step is a few hundred ops of microseconds each, and scheduling them
      over the executor's threads (and the loop's own ops) is much of the step's time:
      this runs a tiny MLP's group about a fifth faster on CPU. The loop runs the groups
      of a length until one has been timed (a call that traced the loop is not); the
      written-out graph runs the next ones where the loop took at most
      `UNROLL_STEP_SECONDS` a step, the step's graph has no control flow at its top
      level (which that executor does not run), the written-out graph stays under
      `UNROLL_OPS` ops (its trace grows with them) and fewer than `UNROLL_GRAPHS`
      signatures have one already. Anywhere else, and where the executor refuses the
      graph before running it, the loop runs every group. Either graph gives the same
      values and weights, and leaves `optimizer.iterations` at the steps begun when a
      step fails: the choice moves only the speed.

    Args:
        single: the model's `CompiledStep`; it must have run once (so the optimizer and
            metrics exist) before a group is fit.
    """

    def __init__(self, single: CompiledStep):
        self.single = single
        self._function = self._build()
        self._concrete: dict[tuple[Any, ...], Callable[..., Any]] = {}
        # (signature, length) -> the unrolled call, or None where the loop runs instead
        self._unrolled: dict[tuple[Any, ...], Callable[..., Any] | None] = {}
        self._proven: set[tuple[Any, ...]] = set()  # unrolled calls that have run
        self._loop_seconds: dict[tuple[Any, ...], float] = {}  # per step, by length

    def _one_step(self) -> Callable[[Any, Any], Any]:
        """`one(stacked, index)`: the step on the index-th slice, its values stacked, the
        metrics reset after (the reset after each step is the next step's reset before,
        so every step starts from empty metric state, as `CompiledStep`)."""
        model, step_fn = self.single.model, self.single._step_fn

        def one(stacked: tuple[Any, ...], index: Any) -> Any:
            data = tf.nest.map_structure(lambda part: part[index], stacked)
            _, values = _flatten_logs(step_fn(data))
            row = tf.stack(values)
            model.reset_metrics()
            return row

        return one

    def _build(self) -> Callable[..., Any]:
        model, one = self.single.model, self._one_step()

        def many_steps(stacked: tuple[Any, ...]) -> Any:
            count = tf.shape(tf.nest.flatten(stacked)[0])[0]
            rows = tf.TensorArray(tf.float32, size=count)
            model.reset_metrics()
            for index in tf.range(count):
                rows = rows.write(index, one(stacked, index))
            return rows.stack()

        if model.run_eagerly:
            return many_steps
        return tf.function(many_steps, jit_compile=model.jit_compile)

    def __call__(
        self, slices: Sequence[tuple[Any, ...]], stacked: Any = None, unroll: bool = False
    ) -> list[dict[str, float]]:
        """Fit `slices` (each `(x,)`, `(x, y)` or `(x, y, sample_weight)`) in order.

        `stacked`: `stack_slices(slices)` when the caller has it already (it is not
        copied again: it must be that call's own result). `unroll`: run the group with
        the steps written out, where that can be and pays (see the class).
        """
        if stacked is None:
            stacked = stack_slices(slices)
        key = signature_key(slices[0])
        length_key = (*key, len(slices)) if unroll else None
        rows = None if length_key is None else self._unrolled_rows(length_key, slices, stacked)
        if rows is None:
            rows = self._loop_rows(key, stacked, length_key)
        names = self.single.names
        return [dict(zip(names, row)) for row in rows.tolist()]

    def _loop_rows(self, key: tuple[Any, ...], stacked: Any, timed: Any) -> np.ndarray:
        """The group's values from the loop; with `timed` (the signature and length of a
        group that may be written out), a call after the loop's first (which traces it)
        is timed, to choose the graph of the next group of that length."""
        function = self._concrete.get(key)
        traced = function is None
        if function is None:
            function = self._concrete[key] = self._concrete_function(stacked)
        start = time.perf_counter()
        rows: np.ndarray = function(stacked).numpy()
        if timed is not None and not traced:
            self._loop_seconds[timed] = (time.perf_counter() - start) / max(len(rows), 1)
        return rows

    def _concrete_function(self, stacked: tuple[Any, ...]) -> Callable[..., Any]:
        if self.single.model.run_eagerly:
            return self._function
        spec = _stacked_spec(stacked, None)
        concrete = self._function.get_concrete_function(spec)  # type: ignore[attr-defined]
        return flat_call(concrete, stacked, owned=True)  # the stacks are this call's own

    def _unrolled_rows(
        self, key: tuple[Any, ...], slices: Sequence[tuple[Any, ...]], stacked: Any
    ) -> np.ndarray | None:
        """The group's values from its written-out graph; None where the loop runs it."""
        if key not in self._unrolled:
            seconds = self._loop_seconds.get(key)
            if seconds is None:
                return None  # the loop runs it, timed, first
            written = sum(function is not None for function in self._unrolled.values())
            pays = seconds <= UNROLL_STEP_SECONDS and written < UNROLL_GRAPHS
            self._unrolled[key] = (
                self._unrolled_function(slices[0], stacked, len(slices)) if pays else None
            )
        function = self._unrolled[key]
        if function is None or key in self._proven:
            return None if function is None else function(stacked).numpy()
        # The first call: the executor checks the graph before it runs any op, and
        # refuses some (control flow or reference edges the graph check did not see).
        iterations = self.single.model.optimizer.iterations
        before = int(iterations.numpy())
        try:
            rows: np.ndarray = function(stacked).numpy()
        except _REFUSED:
            if int(iterations.numpy()) != before:
                raise  # steps ran: the feeder counts them as after any failure
            self._unrolled[key] = None
            return None
        self._proven.add(key)
        return rows

    def _unrolled_function(
        self, first: tuple[Any, ...], stacked: Any, length: int
    ) -> Callable[..., Any] | None:
        """The group's steps written out for `length` slices, or None where they are not
        (an eager or XLA-compiled model, control flow, a graph too large)."""
        model = self.single.model
        if model.run_eagerly or model.jit_compile or not _arrays_only(stacked):
            return None
        ops = self.single._function.get_concrete_function(first).graph.get_operations()  # type: ignore[attr-defined]
        if len(ops) * length > UNROLL_OPS or any(op.type in _CONTROL_FLOW for op in ops):
            return None
        one = self._one_step()

        def steps_written_out(stacked: tuple[Any, ...]) -> Any:
            # Each step after every op of the one before: stateful ops on the same
            # variable keep their program order anyway, but the executor could run the
            # optimizer's step counts (which hang on nothing else) ahead of the steps, and
            # a failure inside the group must leave the count at the steps begun, as the
            # loop leaves it (the feeder counts those as applied).
            graph, rows, done = tf.compat.v1.get_default_graph(), [], None
            model.reset_metrics()
            for index in range(length):
                start = len(graph.get_operations())
                with tf.control_dependencies([] if done is None else [done]):
                    rows.append(one(stacked, index))
                done = tf.group(*graph.get_operations()[start:])
            return tf.stack(rows)

        spec = _stacked_spec(stacked, length)
        concrete = tf.function(steps_written_out).get_concrete_function(spec)
        call = flat_call(concrete, stacked, owned=True)

        def on_one_thread(stacked: Any) -> Any:
            with tf.experimental.function_executor_type(_SINGLE_THREADED):
                return call(stacked)

        return on_one_thread


# Ops of a group's written-out graph at most (a tiny MLP's step is about 300 ops, so 32
# of them fit): the trace takes about 0.2 ms per op, and its first call as much again.
UNROLL_OPS = 16_384
# A step the loop runs in more than this (seconds) is not written out: with more work
# per op, the ops the default executor runs side by side gain about what its scheduling
# costs (on 2 cores: an MLP 64-32-10 at batch 64, 0.1 ms a step, ran 1.25-1.3x as fast
# written out, 128-128-128-10 at batch 128, 0.26-0.31 ms, 1.08-1.1x, 256-256-256-10,
# 0.5-0.7 ms, 0.9-1.05x, and steps of 1.4-2.4 ms 0.87-1.02x; bench_fused_graphs.py).
UNROLL_STEP_SECONDS = 4e-4
# Written-out graphs at most, one per signature (slices of varying shapes, as padded or
# bucketed data gives, would each pay a trace several times the loop's).
UNROLL_GRAPHS = 4
_SINGLE_THREADED = "SINGLE_THREADED_EXECUTOR"
# How an executor refuses a graph when it sets it up (control flow, reference edges; an
# executor TensorFlow does not have): any other error is the step's own, raised.
_REFUSED = (
    tf.errors.FailedPreconditionError,
    tf.errors.UnimplementedError,
    tf.errors.NotFoundError,
)
_CONTROL_FLOW = frozenset(
    {"While", "StatelessWhile", "If", "StatelessIf", "Case", "StatelessCase", "Switch", "Merge"}
)


def _stacked_spec(stacked: Any, length: int | None) -> Any:
    """The tensor specs of a group's stacks, their leading axis `length` long."""
    return tf.nest.map_structure(
        lambda part: tf.TensorSpec((length, *part.shape[1:]), tf.as_dtype(part.dtype)), stacked
    )


def _arrays_only(stacked: Any) -> bool:
    return all(type(part) is np.ndarray for part in tf.nest.flatten(stacked))


def stack_slices(slices: Sequence[tuple[Any, ...]]) -> Any:
    """Same-shaped slices stacked along a new leading axis, member by member (fresh arrays)."""
    if _array_key(slices[0]) is not None:  # plain arrays (the group has one signature)
        return tuple(np.stack(parts) for parts in zip(*slices, strict=True))
    return tf.nest.map_structure(lambda *parts: np.stack(parts), *slices)


def flat_call(function: Any, data: Any, owned: bool = False) -> Callable[[Any], Any]:
    """`function(data)` for data shaped like `data`, through the concrete function's flat
    call where that is safe, else `function` itself.

    `owned`: the arrays passed are the caller's own, never read or written again (the
    fused steps' stacks), so they become tensors without the copy that keeps a user's
    arrays apart from TensorFlow's: TensorFlow may share their buffers. Never pass
    `owned=True` with arrays a user can still reach.

    The flat call takes the tensors of `data` in `tf.nest.flatten` order followed by the
    function's captured inputs; it is used only when every leaf of `data` is a NumPy
    array and the function's signature has one tensor spec per leaf, of the leaf's dtype
    and a compatible shape (the caller keys each function on those). Results are the
    same function run on the same tensors: bitwise what `function(data)` gives.
    """
    call = getattr(function, "_call_flat", None)
    leaves = tf.nest.flatten(data)
    try:
        specs = tf.nest.flatten(function.structured_input_signature)
        captured = list(function._captured_inputs)  # what `captured_inputs` reads
        lined_up = len(function.inputs) == len(leaves) + len(captured) and all(
            type(leaf) is np.ndarray
            and isinstance(spec, tf.TensorSpec)
            and spec.dtype == tf.as_dtype(leaf.dtype)
            and spec.shape.is_compatible_with(leaf.shape)
            for leaf, spec in zip(leaves, specs, strict=True)
        )
    except (AttributeError, TypeError, ValueError):
        return function  # another TensorFlow: its ordinary call
    # A capture read at call time (a closure's value) would be frozen here: not taken.
    if call is None or not lined_up or any(callable(value) for value in captured):
        return function
    captured, tensor = function.captured_inputs, array_to_tensor(copy=not owned)
    if type(data) is tuple and all(type(part) is np.ndarray for part in data):  # flat
        return lambda data: call([tensor(leaf) for leaf in data], captured)
    return lambda data: call([tensor(leaf) for leaf in tf.nest.flatten(data)], captured)


def array_to_tensor(copy: bool = True) -> Callable[[np.ndarray], Any]:
    """NumPy array -> eager tensor on the current device, as `tf.constant` makes it.

    The same two steps as `tf.constant` (a NumPy copy first, so that the tensor never
    shares the caller's array, then TensorFlow's eager tensor on the current device),
    without the dispatch wrappers around it (about 1 µs per array). `tf.constant` where
    TensorFlow lacks the constructor. `copy=False` skips the NumPy copy, for arrays that
    no one else holds.

    Outside any `tf.device` scope the current device's name is empty, and TensorFlow
    then runs an op to put the new tensor on the default device, about 2.5 µs per array
    even when that is the host's CPU, where the tensor already is. Where the default
    device is the host's own (no accelerator), that op is skipped: the tensor is the
    same, on the same device.
    """
    try:
        from tensorflow.python.eager import context
        from tensorflow.python.framework import ops

        eager_tensor, current = ops.EagerTensor, context.context
        current().ensure_initialized()
        probe = np.zeros((), np.float32)
        default_is_host = (
            eager_tensor(probe, "", None).device == eager_tensor(probe, None, None).device
        )
    except (ImportError, AttributeError):
        return tf.constant

    def device() -> str | None:
        name = current().device_name
        return None if not name and default_is_host else name

    def convert(array: np.ndarray) -> Any:
        # The copy matters: TensorFlow may share an aligned buffer, and an op writing
        # its input in place (or a variable assigned from it) would write the user's data.
        return eager_tensor(array.copy(), device(), None)

    def convert_owned(array: np.ndarray) -> Any:
        return eager_tensor(array, device(), None)

    return convert if copy else convert_owned


def guarded(model: Any, step_fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`step_fn` undone when its loss is not finite: weights and optimizer as before it."""

    def guarded_step(data: Any) -> Any:
        variables = [*model.variables, *model.optimizer.variables]
        saved = [tf.identity(variable) for variable in variables]
        logs = step_fn(data)
        if "loss" not in logs:
            return logs

        def undo() -> Any:
            for variable, value in zip(variables, saved, strict=True):
                variable.assign(value)
            return tf.constant(False)

        finite = tf.reduce_all(tf.math.is_finite(tf.cast(logs["loss"], tf.float32)))
        tf.cond(finite, lambda: tf.constant(True), undo)
        return logs

    return guarded_step


def _build_optimizer(model: Any) -> None:
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built and model.built:
        optimizer.build(model.trainable_variables)


def step_data(x: Any, y: Any, sample_weight: Any = None) -> tuple[Any, ...]:
    """What Keras' steps take: `(x,)` without labels, `(x, y)`, or `(x, y, sample_weight)`."""
    if y is None:
        return (x,)
    return (x, y) if sample_weight is None else (x, y, sample_weight)


def signature_key(data: tuple[Any, ...]) -> tuple[Any, ...]:
    """What a slice's compiled step is selected by: structure, shapes and dtypes."""
    return _array_key(data) or _signature_key(data)


def _signature_key(data: tuple[Any, ...]) -> tuple[Any, ...]:
    """What selects a concrete function: the structure, shapes and dtypes of `data`."""
    flat = tf.nest.flatten(data)
    return (_structure(data), *((tuple(a.shape), str(a.dtype)) for a in flat))


def _array_key(data: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The concrete function's key when every member is a NumPy array (the common case),
    from shapes and dtypes alone; None for structured data (`_signature_key` then)."""
    key: list[Any] = []
    for part in data:
        if type(part) is not np.ndarray:
            return None
        key += (part.shape, part.dtype.num)
    return tuple(key)


def _structure(data: Any) -> Any:
    if isinstance(data, dict):
        return tuple((key, _structure(value)) for key, value in sorted(data.items()))
    if isinstance(data, (list, tuple)):
        return (type(data).__name__, *(_structure(part) for part in data))
    return None


def _flatten_logs(logs: dict[str, Any]) -> tuple[list[str], list[Any]]:
    """Metric names and scalar float32 tensors; a vector metric gives `name_0`, ..."""
    names, values = [], []
    for name, value in logs.items():
        value = tf.cast(tf.convert_to_tensor(value), tf.float32)
        if value.shape.rank == 0:
            names.append(name)
            values.append(value)
            continue
        flat = tf.reshape(value, [-1])
        for index in range(int(flat.shape[0])):
            names.append(f"{name}_{index}")
            values.append(flat[index])
    return names, values


def num_samples(x: Any) -> int:
    """Number of samples in a slice: the leading dim of its first array."""
    first = x if type(x) is np.ndarray else tf.nest.flatten(x)[0]
    return int(first.shape[0])


def reset_states(layers: list[Any]) -> None:
    for layer in layers:
        layer.reset_state()


def snapshot_states(layers: list[Any]) -> list[list[np.ndarray]]:
    """Copies of every stateful layer's state variables, for `restore_states`."""
    return [[np.array(v.numpy()) for v in _state_variables(layer)] for layer in layers]


def restore_states(layers: list[Any], snapshot: list[list[np.ndarray]]) -> None:
    for layer, values in zip(layers, snapshot):
        for variable, value in zip(_state_variables(layer), values):
            variable.assign(value)


def _state_variables(layer: Any) -> list[Any]:
    if hasattr(layer, "forward_layer"):
        return _state_variables(layer.forward_layer) + _state_variables(layer.backward_layer)
    states = getattr(layer, "states", None)
    return list(tf.nest.flatten(states)) if states is not None else []
