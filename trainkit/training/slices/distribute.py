"""Data-parallel training on a `tf.distribute` strategy, one machine or several.

Every worker runs the same script and the same loop. Each worker's generators serve its
rows of every global batch (`shard=(worker index, worker count)`), and each of its
replicas takes its part of those rows. One step runs Keras' own `train_step` (or
`test_step`) on every replica through `strategy.run`:

* The loss of each replica is weighted so that the gradients summed across replicas are
  those of the loss averaged over the slice's real size: Keras divides a replica's loss
  by the number of replicas, which is right only when every replica holds as many rows;
  a replica of `n` rows out of `N` gets the factor `n * replicas / N` (1.0 exactly when
  the rows divide evenly), so a partial last batch needs no `drop_remainder`.
  Regularization losses keep their weight (the factors sum to the replica count).
* After the step, the state of every metric (sums and counts) is summed across
  replicas before the values are read, so the values are those of the whole slice,
  the same on every worker, and equal to one device's up to float rounding.

Validation runs the same way (`test_step` per slice, metric state summed); predictions
are computed by each worker for its rows and gathered in global row order on every
worker, so predict-mode metrics, the best model and the checkpoints agree everywhere.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import tensorflow as tf

from trainkit._validation import describe
from trainkit.training.evaluation.padding import fixed_batch_size
from trainkit.training.slices.steps import SAMPLES_KEY, _flatten_logs, stack_slices, step_data

__all__ = [
    "SAMPLES_KEY",
    "DistributedFusedSteps",
    "DistributedStep",
    "Distribution",
    "WorkerLostError",
]


_UNWEIGHTED = (
    "{model}.train_step does not pass its loss through `self.optimizer.scale_loss(loss)` "
    "before taking the gradients. Under a tf.distribute strategy trainkit weighs each "
    "replica's loss by its rows there; without it, a slice whose rows do not divide evenly "
    "across the replicas (a partial last batch) trains as if they did, unlike one device. "
    "Add `loss = self.optimizer.scale_loss(loss)` inside the GradientTape, or use "
    "drop_remainder=True and a batch_size that the replica count divides."
)


class WorkerLostError(RuntimeError):
    """A collective operation failed: another worker died, hung or could not be reached."""


def worker_layout(strategy: Any) -> tuple[int, int]:
    """`(index, count)` of this worker among the strategy's workers (chief first)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 0, 1
    resolver = strategy.cluster_resolver
    spec = resolver.cluster_spec().as_dict()
    tasks = [("chief", k) for k in range(len(spec.get("chief", [])))]
    tasks += [("worker", k) for k in range(len(spec.get("worker", [])))]
    if not tasks:  # no TF_CONFIG: one local worker
        return 0, 1
    return tasks.index((resolver.task_type, int(resolver.task_id))), len(tasks)


def check_strategy(strategy: Any) -> None:
    supported = (tf.distribute.MirroredStrategy, tf.distribute.MultiWorkerMirroredStrategy)
    if not isinstance(strategy, supported):
        raise TypeError(
            "`strategy` must be a tf.distribute.MirroredStrategy (the devices of one machine) "
            "or a tf.distribute.MultiWorkerMirroredStrategy (several processes or machines), "
            "created before the model and with the model built and compiled under "
            f"`strategy.scope()`. Received: strategy={describe(strategy)}"
        )


class Distribution:
    """The strategy's layout, and the calls that cross replicas and workers."""

    def __init__(self, strategy: Any):
        check_strategy(strategy)
        self.strategy = strategy
        self.replicas = int(strategy.num_replicas_in_sync)
        self.worker_index, self.workers = worker_layout(strategy)
        self.local_replicas = self.replicas // self.workers
        self.is_chief = self.worker_index == 0
        self._predict: Callable[..., Any] | None = None
        # Preemption as a group: this worker's SIGTERM flag rides on the next step's
        # all-reduce; `_group_preempted` is what the last steps said about every worker.
        self._local_preempted = False
        self._group_preempted = False

    def share_preempted(self, local: bool) -> bool:
        """Whether any worker has received SIGTERM, as every worker learns it at once.

        `local` (this worker's flag) is summed across workers by the next step, inside
        the all-reduce that already counts the slice's rows (no extra collective). Every
        worker reads the sum after the same step, so all of them stop, and checkpoint, at
        the same iter. The answer is consumed: a later `train()` starts clear.
        """
        self._local_preempted = local
        group, self._group_preempted = self._group_preempted, False
        return group

    def _step_flag(self) -> Any:
        """This worker's SIGTERM flag as a step input (1.0 when signalled)."""
        return tf.constant(1.0 if self._local_preempted else 0.0, tf.float32)

    def _heard(self, flag: float) -> None:
        """Record a step's summed SIGTERM flags (nonzero: some worker was signalled)."""
        self._group_preempted = self._group_preempted or flag > 0

    @property
    def shard(self) -> tuple[int, int] | None:
        """The generators' shard on this worker (None on one worker)."""
        return (self.worker_index, self.workers) if self.workers > 1 else None

    def scope(self) -> Any:
        return self.strategy.scope()

    def split(self, data: Any, axis: int = 0) -> Any:
        """Distributed values: this worker's rows, cut in order across its replicas.

        `axis=1` cuts the rows of stacked slices (`(slices, rows, ...)`).
        """
        rows = int(np.shape(tf.nest.flatten(data)[0])[axis])
        if rows < self.local_replicas:
            raise ValueError(
                f"A slice of {rows} rows cannot be split across this worker's "
                f"{self.local_replicas} replicas (every replica needs at least one row). "
                "Use a larger batch_size, or drop_remainder=True to skip a short last batch."
            )
        offset, local = self.worker_index * self.local_replicas, self.local_replicas

        def part(context: Any) -> Any:
            j = context.replica_id_in_sync_group - offset
            lo, hi = j * rows // local, (j + 1) * rows // local
            cut = (slice(None),) * axis + (slice(lo, hi),)
            return tf.nest.map_structure(lambda a: tf.constant(np.asarray(a)[cut]), data)

        return self.strategy.experimental_distribute_values_from_function(part)

    def gather_rows(self, data: Any) -> Any:
        """Every worker's rows of `data`, in global row order, as NumPy (on every worker)."""
        if self.workers == 1 or data is None:
            return data
        # Members that are None (no labels, no sample weights served) stay None.
        members = tf.nest.flatten(data)
        present = [index for index, member in enumerate(members) if member is not None]
        with _collective("gathering a slice's rows"):
            for index in present:  # one distributed value per array: gather takes tensors
                gathered = self.strategy.gather(self.split(members[index]), axis=0)
                members[index] = gathered.numpy()
        return tf.nest.pack_sequence_as(data, members)

    def agree(self, what: str, value: int) -> None:
        """Raise the same error on every worker unless all of them hold the same `value`.

        Run where the workers must be in step (after resuming): a worker that resumed
        another checkpoint would otherwise serve other data, or hang a collective later.
        """
        if self.workers == 1:
            return
        mine = np.full(self.local_replicas, value, dtype=np.int64)
        values = [int(v) for v in self.gather_rows(mine)[:: self.local_replicas]]
        if len(set(values)) > 1:
            raise RuntimeError(
                f"The workers do not agree on {what}: {values} (worker 0 first). Every worker "
                "must resume the same checkpoint: put `logs_dir` on storage every worker reads "
                "(or copy the chief's run folder to each machine), or pass resume=<the same "
                "checkpoint folder> to all of them, then start them all again."
            )

    def predict_local(self, model: Any, x: Any) -> Any:
        """The model's outputs for this worker's rows (the variables are mirrored).

        A model with a fixed batch size (stateful layers) is built for one replica's
        rows: each replica then predicts its part, with its rows' states, as in training.
        """
        per_replica = fixed_batch_size(model) is not None
        if self._predict is None:

            def forward(inputs: Any) -> Any:
                return model(inputs, training=False)

            function = (
                (lambda parts: self.strategy.run(forward, args=(parts,)))
                if per_replica
                else forward
            )
            self._predict = tf.function(function, reduce_retracing=True)
        if not per_replica:
            return tf.nest.map_structure(lambda t: t.numpy(), self._predict(x))
        parts = self.strategy.experimental_local_results(self._predict(self.split(x)))
        return tf.nest.map_structure(lambda *p: np.concatenate([t.numpy() for t in p]), *parts)

    def build(self, model: Any, data: tuple[Any, ...]) -> None:
        """Create what Keras builds lazily (metrics, optimizer slots) under the scope.

        Variables cannot be created inside the distributed step, and on several workers
        their creation is collective, so every worker builds here, at the same point.
        """
        rows = max(1, _rows(data) // self.local_replicas)  # one replica's part
        part = tf.nest.map_structure(lambda a: np.asarray(a)[:rows], data)
        with self.scope():
            model._symbolic_build(data_batch=part)
            if model.optimizer is not None and not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)


class DistributedStep:
    """`step(x, y, sample_weight) -> logs` of the whole slice, run on every replica.

    The same interface as `CompiledStep`; the logs also hold `SAMPLES_KEY`.
    """

    def __init__(self, model: Any, mode: str, distribution: Distribution):
        self.model, self.mode, self.distribution = model, mode, distribution
        self.names: list[str] = []
        self._step_fn = model.train_step if mode == "train" else model.test_step
        self._function = tf.function(self._distributed, reduce_retracing=True)
        self._built = False
        if mode == "train":
            _weigh_losses(model.optimizer)

    @property
    def ready(self) -> bool:
        return self._built

    def _replica(self, data: tuple[Any, ...], flag: Any) -> Any:
        """One step on this replica's rows: the slice's metric values, its global rows and
        the SIGTERM flags summed over the replicas (`flag` is this worker's)."""
        model, replicas = self.model, self.distribution.replicas
        context = tf.distribute.get_replica_context()
        rows = tf.cast(tf.shape(tf.nest.flatten(data)[0])[0], tf.float32)
        # One all-reduce carries both: the slice's rows and the workers' SIGTERM flags.
        total, flags = tf.unstack(
            context.all_reduce(tf.distribute.ReduceOp.SUM, tf.stack([rows, flag]))
        )
        model.reset_metrics()
        _LOSS_FACTOR.value, _LOSS_FACTOR.weighed = rows * replicas / total, False
        try:
            step_logs = self._step_fn(data)
        finally:
            weighed, _LOSS_FACTOR.value = _LOSS_FACTOR.weighed, None
        if self.mode == "train" and model.optimizer is not None and not weighed:
            # Warned while tracing: the same on every worker, no collective involved.
            warnings.warn(_UNWEIGHTED.format(model=type(model).__name__), stacklevel=2)
        variables = list(model.metrics_variables)
        if variables:
            summed = context.all_reduce(
                tf.distribute.ReduceOp.SUM, [tf.identity(v.value) for v in variables]
            )
            for variable, value in zip(variables, summed):
                variable.assign(value)
        logs = dict(model.get_metrics_result())
        # A custom step may log values that are not metrics: this replica's own.
        logs.update({k: v for k, v in step_logs.items() if k not in logs})
        names, values = _flatten_logs(logs)
        self.names = names
        stacked = tf.stack([*values, total, flags])
        model.reset_metrics()
        return stacked

    def _distributed(self, data: Any, flag: Any) -> Any:
        return self.distribution.strategy.run(self._replica, args=(data, flag))

    def __call__(self, x: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
        data = step_data(x, y, sample_weight)
        if not self._built:
            self.distribution.build(self.model, data)
            self._built = True
        with _collective(f"a {self.mode} step"):
            distribution = self.distribution
            result = self._function(distribution.split(data), distribution._step_flag())
            values = distribution.strategy.experimental_local_results(result)[0]
            values = values.numpy().tolist()
        distribution._heard(values[-1])
        return _logs(self.names, values)


class DistributedFusedSteps:
    """`steps(slices) -> [logs, ...]`: several same-shaped slices in one compiled call.

    As `FusedSteps`, under a strategy: the slices are stacked, each replica gets its rows
    of every slice, and a loop inside the graph runs one distributed step per slice, in
    order (the loop is outside `strategy.run`, as Keras' own `steps_per_execution`), so the
    result is bitwise that of one `DistributedStep` call per slice.
    """

    def __init__(self, single: DistributedStep):
        self.single = single
        self._function = tf.function(self._steps, reduce_retracing=True)

    def _steps(self, stacked: Any, count: Any, flag: Any) -> Any:
        strategy = self.single.distribution.strategy
        rows = tf.TensorArray(tf.float32, size=count)
        for index in tf.range(count):

            def one(parts: Any, flag: Any, index: Any = index) -> Any:
                data = tf.nest.map_structure(lambda part: part[index], parts)
                return self.single._replica(data, flag)

            result = strategy.run(one, args=(stacked, flag))
            rows = rows.write(index, strategy.experimental_local_results(result)[0])
        return rows.stack()

    def __call__(
        self, slices: Sequence[tuple[Any, ...]], stacked: Any = None, unroll: bool = False
    ) -> list[dict[str, float]]:
        """As `FusedSteps`; `unroll` is taken and left: the loop runs every group here."""
        if stacked is None:
            stacked = stack_slices(slices)
        distribution = self.single.distribution
        with _collective("a fused train step"):
            split = distribution.split(stacked, axis=1)
            values = self._function(split, len(slices), distribution._step_flag())
            values = values.numpy().tolist()
        distribution._heard(max(row[-1] for row in values))
        return [_logs(self.single.names, row) for row in values]


def _logs(names: list[str], row: list[float]) -> dict[str, float]:
    """A step's values by name; then the slice's rows and the summed SIGTERM flags, the
    same on every worker."""
    logs: dict[str, float] = dict(zip(names, row[:-2]))
    logs[SAMPLES_KEY] = round(row[-2])
    return logs


def _rows(data: Any) -> int:
    return int(np.shape(tf.nest.flatten(data)[0])[0])


class _Factor(threading.local):
    value: Any = None
    weighed = False  # whether the traced step passed its loss through `scale_loss`


# The loss factor of the replica being traced. MirroredStrategy traces its replicas in
# threads of their own, so each thread sees its own factor.
_LOSS_FACTOR = _Factor()


def _weigh_losses(optimizer: Any) -> None:
    """Make `optimizer.scale_loss` apply the traced replica's factor (once per optimizer).

    Keras' `train_step` passes the loss through `optimizer.scale_loss` before taking
    gradients (for loss-scale optimizers); outside a distributed step the factor is None
    and the loss passes unchanged.
    """
    if optimizer is None or getattr(optimizer, "_trainkit_weighs_losses", False):
        return
    scale = optimizer.scale_loss

    def scale_loss(loss: Any) -> Any:
        factor = _LOSS_FACTOR.value
        if factor is not None:
            _LOSS_FACTOR.weighed = True
            loss = loss * tf.cast(factor, loss.dtype)
        return scale(loss)

    # Set on the instance, past Keras' attribute tracking; nothing is saved with it.
    optimizer.__dict__["scale_loss"] = scale_loss
    optimizer.__dict__["_trainkit_weighs_losses"] = True


class _collective:
    """Turn a failed collective (a lost worker, a timeout) into `WorkerLostError`."""

    _ERRORS = (
        tf.errors.UnavailableError,
        tf.errors.DeadlineExceededError,
        tf.errors.CancelledError,
        tf.errors.AbortedError,
    )

    def __init__(self, what: str):
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> Literal[False]:
        if error is not None and isinstance(error, self._ERRORS):
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            telling = [line for line in lines if "aborted" in line or "unhealthy" in line]
            first_line = (telling or lines or [""])[0]
            raise WorkerLostError(
                f"Another worker stopped answering during {self.what} ({type(error).__name__}: "
                f"{first_line[:300]}). All workers must run the same script and reach the same "
                "steps; one of them died, hung or cannot be reached. Stop every worker, then "
                "start them all again with TrainGenerator(..., resume=True): training "
                "continues from the last checkpoint, on any number of workers."
            ) from error
        return False
