"""`history.png` and the run report, drawn from the trainer's histories and state."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trainkit.reports import plot_history, render_report
from trainkit.training.evaluation.scoring import describe_loss

if TYPE_CHECKING:
    from trainkit.checkpoints import RunFolder
    from trainkit.training.construction.settings import TrainSettings
    from trainkit.training.loop_state import LoopState

HISTORY_FILE = "history.png"
REPORT_STEM = "report"


@dataclass(frozen=True)
class FigureInputs:
    """What the figures and the report read of a trainer, as it stands when they are drawn.

    `run` is the run folder (None without `logs_dir`: nothing is drawn); `state` the
    loop's counters and histories; `settings` the trainer's resolved settings; `timings`
    the seconds spent training and validating in this process; `stopped` why
    on_nonfinite='stop' ended the run (None if it did not).
    """

    run: RunFolder | None
    state: LoopState
    settings: TrainSettings
    model: Any
    datagen: Any
    val_datagen: Any
    timings: Mapping[str, float]
    stopped: str | None = None


def draw(inputs: FigureInputs) -> None:
    """Regenerate `history.png` and the report in the run folder."""
    draw_history(inputs)
    write_report(inputs)


def draw_history(inputs: FigureInputs) -> str | None:
    """Regenerate `history.png` in the run folder (nothing without `logs_dir`)."""
    if inputs.run is None:
        return None
    s, run_dir = inputs.state, inputs.run.path
    return plot_history(
        os.path.join(run_dir, HISTORY_FILE),
        s.history,
        s.val_history,
        val_batches=s.val_batches,
        epoch_batches=s.epoch_batches,
        key_metric=inputs.settings.key_metric,
        best_index=_best_index(s, inputs.settings.key_metric),
        title=os.path.basename(run_dir),
        introspection=_introspection_records(run_dir),
    )


def _introspection_records(run_dir: str) -> list[dict[str, Any]]:
    """What `introspect_freq` logged (nothing to read, and no import, when it did not)."""
    if not os.path.exists(os.path.join(run_dir, "introspection.jsonl")):
        return []
    from trainkit.introspection import read_introspection

    return read_introspection(run_dir)


def _best_index(state: LoopState, key_metric: str) -> int | None:
    values = state.val_history.get(key_metric, [])
    if not values or state.best_key_metric not in values:
        return None
    return values.index(state.best_key_metric)


def write_report(inputs: FigureInputs) -> tuple[str, str] | None:
    """Write `report.txt` and `report.png` in the run folder."""
    if inputs.run is None:
        return None
    run_dir = inputs.run.path
    return render_report(
        os.path.join(run_dir, REPORT_STEM), os.path.basename(run_dir), sections(inputs)
    )


def _last(history: dict[str, list[float]]) -> dict[str, Any]:
    return {name: values[-1] for name, values in history.items() if values}


def _datagen_section(datagen: Any) -> dict[str, Any]:
    source = datagen.source
    return {
        "source": source.description,
        "samples": len(source),
        "sets": len(datagen.set_nums_original),
        "batch_size": datagen.batch_size,
        "batches per epoch": len(datagen),
        "shuffle": datagen.shuffle or False,
        "seed": datagen.seed,
        "preprocessor": datagen.preprocessor.get_config(),
        "epoch": datagen.epoch,
        "set_name": datagen.set_name,
        "slice": f"{datagen.slice_idx} of {datagen.slices_per_batch}",
        "sets left this epoch": len(datagen.set_nums_to_process),
    }


def sections(inputs: FigureInputs) -> dict[str, dict[str, Any]]:
    """The report's content: model, trainer state, both generators, metrics, timings."""
    state, run = inputs.state, inputs.run
    out: dict[str, dict[str, Any]] = {
        "Model": _model_section(inputs.model, inputs.settings),
        "Trainer": _trainer_section(inputs),
        "Train data": _datagen_section(inputs.datagen),
    }
    records = _introspection_records(run.path) if run is not None else []
    if records:
        out["Introspection"] = _introspection_section(records)
    if inputs.val_datagen is not None:
        out["Validation data"] = _datagen_section(inputs.val_datagen)
    out["Latest metrics"] = {
        **{f"train {k}": v for k, v in _last(state.history).items()},
        **{f"val {k}": v for k, v in _last(state.val_history).items()},
    }
    out["Timings (this process)"] = {k: f"{v:.1f} s" for k, v in inputs.timings.items()}
    return out


def _model_section(model: Any, settings: TrainSettings) -> dict[str, Any]:
    optimizer = model.optimizer
    learning_rate = getattr(optimizer, "learning_rate", None)
    return {
        "name": model.name,
        "model_base_name": settings.model_base_name,
        "model_configs": settings.model_configs or {},
        "parameters": model.count_params(),
        "layers": [type(layer).__name__ for layer in model.layers],
        "optimizer": f"{type(optimizer).__name__}, learning_rate={_number(learning_rate)}",
        "loss": describe_loss(getattr(model, "loss", None)),
    }


def _trainer_section(inputs: FigureInputs) -> dict[str, Any]:
    s, settings, run = inputs.state, inputs.settings, inputs.run
    direction = "max" if settings.max_is_best else "min"
    out: dict[str, Any] = {
        "epoch": f"{s.epoch} of {settings.epochs}",
        "iters_fit": s.iters_fit,
        "batches_fit": s.batches_fit,
        "times_validated": s.times_validated,
        "batches_validated": s.batches_validated,
        "key_metric": f"{settings.key_metric} ({direction} is best)",
        "best_key_metric": s.best_key_metric,
        "val_freq": _freq(settings.val_freq),
        "checkpoint_freq": _freq(settings.checkpoint_freq),
        "reset_statefuls": settings.reset_statefuls,
        "last checkpoint": os.path.basename((run.last_checkpoint if run else None) or "none"),
    }
    if inputs.stopped:
        out["stopped"] = inputs.stopped
    skipped = s.skipped_slices
    if skipped:  # on_nonfinite='skip'
        names = ", ".join(f"{entry['set_name']}:{entry['slice_idx']}" for entry in skipped[:5])
        more = f" ... ({len(skipped)} in all)" if len(skipped) > 5 else ""
        out["skipped slices"] = f"{len(skipped)} (set:slice {names}{more})"
    return out


def _introspection_section(records: list[dict[str, Any]]) -> dict[str, Any]:
    from trainkit.reports.gradient_plot import global_norm

    last = records[-1]
    health = last.get("weight_health", {})
    return {
        "records": len(records),
        "last at iter": last.get("iter"),
        "global gradient norm": global_norm(last.get("gradient_norms", {})),
        "non-finite weights": sum(int(v.get("nonfinite", 0)) for v in health.values()),
        "all-zero variables": sum(1 for v in health.values() if v.get("zero_fraction") == 1),
    }


def _freq(freq: Any) -> str:
    return "never" if freq is None else f"every {freq.n} {freq.unit}"


def _number(value: Any) -> Any:
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return value
