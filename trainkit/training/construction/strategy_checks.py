"""What a `tf.distribute` strategy can train, and each worker's shard of the data.

The model must be built under the strategy passed; each generator gets this worker's
shard, after checking that every batch holds a row for each replica. What a strategy
cannot train yet is refused with `NotImplementedError`.
"""

from __future__ import annotations

from typing import Any


def check_model_strategy(model: Any, strategy: Any) -> None:
    """A model built and compiled under another scope than `strategy`'s is refused.

    TensorFlow would fail at the first step ("Mixing different tf.distribute.Strategy
    objects"); the variables say it now: each records the strategy it was created under.
    """
    if strategy is None:
        return
    optimizer = getattr(model, "optimizer", None)
    probes = list(model.weights[:1]) + list(getattr(optimizer, "variables", [])[:1])
    for variable in probes:
        owner = getattr(getattr(variable, "value", variable), "_distribute_strategy", None)
        if owner is not strategy:
            where = "outside any strategy's scope" if owner is None else "in another strategy"
            raise ValueError(
                f"The model's variable {variable.path!r} was created {where}: build and "
                "compile the model under the strategy you pass, "
                "`with strategy.scope(): model = build_model(); model.compile(...)`, then "
                "TrainGenerator(model, ..., strategy=strategy). "
                f"Received: strategy={type(strategy).__name__}"
            )


def check_distributed(
    distribution: Any,
    datagen: Any,
    val_datagen: Any,
    pad: bool,
    stateful: list[Any] | None = None,
    reset_statefuls: bool = False,
    checkpoint_freq: Any = None,
) -> None:
    """Refuse what a strategy cannot train; give each generator its worker's shard."""
    if stateful and (not reset_statefuls or getattr(checkpoint_freq, "unit", None) == "iter"):
        names = ", ".join(layer.name for layer in stateful)
        raise NotImplementedError(
            f"Stateful layers ({names}) under a tf.distribute strategy need "
            "reset_statefuls=True and a checkpoint_freq by 'batch', 'epoch' or 'val': each "
            "replica keeps the states of its own rows, and checkpoints hold them only where "
            "they are reset (batch ends). Received: reset_statefuls="
            f"{reset_statefuls}, checkpoint_freq={checkpoint_freq}"
        )
    if pad:
        raise NotImplementedError(
            "pad_val_batches=True is not supported under a tf.distribute strategy: the "
            "replicas already split each slice. Leave pad_val_batches=False."
        )
    for name, dg in (("datagen", datagen), ("val_datagen", val_datagen)):
        if dg is not None:
            shard_for(distribution, name, dg)


def shard_for(distribution: Any, name: str, dg: Any, check_rows: bool = True) -> None:
    """Give `dg` this worker's shard (unless it has one), after checking it can be split.

    `check_rows=False`: the slices are not split across replicas (predictions on one
    worker), so a batch may hold fewer rows than there are replicas.
    """
    store = getattr(dg, "_store", None)
    if store is not None:
        _check_store_rows(distribution, name, store, check_rows)
        return
    if getattr(dg, "shard", None) is None:
        short = [b for b in dg.plan(0) if b.size < distribution.replicas]
        if short and check_rows:
            raise ValueError(
                f"`{name}` serves batch {short[0].set_name!r} of {short[0].size} samples, "
                f"fewer than the strategy's {distribution.replicas} replicas (each "
                "replica needs at least one row of every batch). Pass drop_remainder=True "
                "to skip the short last batch, or use a batch_size and sample count that "
                f"leave at least {distribution.replicas} samples in the last batch."
            )
        if distribution.shard is not None:
            dg._set_shard(distribution.shard)


def _check_store_rows(distribution: Any, name: str, store: Any, check_rows: bool) -> None:
    """An offline store under a strategy: on one worker its replicas split each stored
    slice by rows (each stored batch needs a row per replica); not on several workers."""
    if distribution.workers > 1:
        raise ValueError(
            f"`{name}` serves an offline store, whose stored batches cannot be split "
            f"across {distribution.workers} workers yet. Train from the store on one worker "
            "(its replicas split each stored slice), or from the source data with its "
            "preprocessor on several."
        )
    for set_name, pieces in store.manifest["names"]:
        rows = sum(int(stop) - int(start) for _, start, stop in pieces)
        if check_rows and rows < distribution.replicas:
            raise ValueError(
                f"`{name}` serves an offline store whose stored batch {set_name!r} holds "
                f"{rows} samples, fewer than the strategy's {distribution.replicas} replicas "
                "(each replica needs at least one row of every slice). Write the store from "
                "a generator with drop_remainder=True, or with a batch_size and sample "
                f"count that leave at least {distribution.replicas} samples in its last batch."
            )
