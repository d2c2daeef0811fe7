"""`history.png` and the run report, drawn from the trainer's histories and state."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from trainkit.reports import plot_history, render_report

if TYPE_CHECKING:
    from trainkit.training.trainer import TrainGenerator

HISTORY_FILE = "history.png"
REPORT_STEM = "report"


def draw_history(tg: TrainGenerator) -> str | None:
    """Regenerate `history.png` in the run folder (nothing without `logs_dir`)."""
    if tg.run_dir is None:
        return None
    s = tg._state
    best_index = _best_index(tg)
    return plot_history(
        os.path.join(tg.run_dir, HISTORY_FILE),
        s.history,
        s.val_history,
        val_batches=s.val_batches,
        epoch_batches=s.epoch_batches,
        key_metric=tg.key_metric,
        best_index=best_index,
        title=os.path.basename(tg.run_dir),
        introspection=_introspection_records(tg.run_dir),
    )


def _introspection_records(run_dir: str) -> list[dict[str, Any]]:
    """What `introspect_freq` logged (nothing to read, and no import, when it did not)."""
    if not os.path.exists(os.path.join(run_dir, "introspection.jsonl")):
        return []
    from trainkit.introspection import read_introspection

    return read_introspection(run_dir)


def _best_index(tg: TrainGenerator) -> int | None:
    values = tg.val_history.get(tg.key_metric, [])
    if not values or tg.best_key_metric not in values:
        return None
    return values.index(tg.best_key_metric)


def write_report(tg: TrainGenerator) -> tuple[str, str] | None:
    """Write `report.txt` and `report.png` in the run folder."""
    if tg.run_dir is None:
        return None
    return render_report(
        os.path.join(tg.run_dir, REPORT_STEM), os.path.basename(tg.run_dir), sections(tg)
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


def sections(tg: TrainGenerator) -> dict[str, dict[str, Any]]:
    """The report's content: model, trainer state, both generators, metrics, timings."""
    model, optimizer = tg.model, tg.model.optimizer
    learning_rate = getattr(optimizer, "learning_rate", None)
    out: dict[str, dict[str, Any]] = {
        "Model": {
            "name": model.name,
            "model_base_name": tg.model_base_name,
            "model_configs": tg.model_configs or {},
            "parameters": model.count_params(),
            "layers": [type(layer).__name__ for layer in model.layers],
            "optimizer": f"{type(optimizer).__name__}, learning_rate={_number(learning_rate)}",
            "loss": str(getattr(model, "loss", "")),
        },
        "Trainer": {
            "epoch": f"{tg.epoch} of {tg.epochs}",
            "iters_fit": tg.iters_fit,
            "batches_fit": tg.batches_fit,
            "times_validated": tg.times_validated,
            "batches_validated": tg.batches_validated,
            "key_metric": f"{tg.key_metric} ({'max' if tg.max_is_best else 'min'} is best)",
            "best_key_metric": tg.best_key_metric,
            "val_freq": _freq(tg.val_freq),
            "checkpoint_freq": _freq(tg.checkpoint_freq),
            "reset_statefuls": tg.reset_statefuls,
            "last checkpoint": os.path.basename(
                (tg._run.last_checkpoint if tg._run else None) or "none"
            ),
        },
        "Train data": _datagen_section(tg.datagen),
    }
    if getattr(tg, "nonfinite_message", None):
        out["Trainer"]["stopped"] = tg.nonfinite_message
    if tg.skipped_slices:  # on_nonfinite='skip'
        names = ", ".join(f"{s['set_name']}:{s['slice_idx']}" for s in tg.skipped_slices[:5])
        more = f" ... ({len(tg.skipped_slices)} in all)" if len(tg.skipped_slices) > 5 else ""
        out["Trainer"]["skipped slices"] = f"{len(tg.skipped_slices)} (set:slice {names}{more})"
    records = _introspection_records(tg.run_dir) if tg.run_dir else []
    if records:
        from trainkit.reports.gradient_plot import global_norm

        last = records[-1]
        health = last.get("weight_health", {})
        out["Introspection"] = {
            "records": len(records),
            "last at iter": last.get("iter"),
            "global gradient norm": global_norm(last.get("gradient_norms", {})),
            "non-finite weights": sum(int(v.get("nonfinite", 0)) for v in health.values()),
            "all-zero variables": sum(1 for v in health.values() if v.get("zero_fraction") == 1),
        }
    if tg.val_datagen is not None:
        out["Validation data"] = _datagen_section(tg.val_datagen)
    out["Latest metrics"] = {
        **{f"train {k}": v for k, v in _last(tg.history).items()},
        **{f"val {k}": v for k, v in _last(tg.val_history).items()},
    }
    out["Timings (this process)"] = {k: f"{v:.1f} s" for k, v in tg._timings.items()}
    return out


def _freq(freq: Any) -> str:
    return "never" if freq is None else f"every {freq.n} {freq.unit}"


def _number(value: Any) -> Any:
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return value
