"""`history.png`: train metrics per batch, validation metrics per validation."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure  # no pyplot: never touches the user's backend
from matplotlib.text import Text

from trainkit.checkpoints.atomic import atomic_file
from trainkit.reports.gradient_plot import draw_gradient_norms

_LOSS_WORDS = ("loss", "error", "crossentropy", "mae", "mse")
_COLORS = [matplotlib.colormaps["tab10"](k) for k in range(10)]
_FAST_PNG = {"compress_level": 1}  # a few % larger files, several times faster to write
_TITLE_CHARS = 90  # per line of the title; a longer run name wraps
_YLABEL_CHARS = 40  # a longer joined name does not fit the pane's height: "value"


def fit_width(fig: Figure, text: Text, margin: float = 0.01) -> None:
    """Shrink the font of `text` (on `fig`) to fit the figure's width, less `margin` a side.

    Measures the text only (no drawing), so it costs little; a text that fits is left.
    """
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    extent = text.get_window_extent(canvas.get_renderer())
    room = fig.bbox.width * (1 - 2 * margin)
    if extent.width > room:
        text.set_fontsize(float(text.get_fontsize()) * room / extent.width)


def _is_loss(name: str) -> bool:
    return any(word in name for word in _LOSS_WORDS)


def _panes(names: list[str]) -> list[list[str]]:
    """Loss-like metrics on one pane, the rest on a second when there are many."""
    losses = [n for n in names if _is_loss(n)]
    others = [n for n in names if not _is_loss(n)]
    if not losses or not others or len(names) <= 2:
        return [names]
    return [losses, others]


def plot_history(
    path: str,
    history: dict[str, list[float]],
    val_history: dict[str, list[float]],
    *,
    val_batches: Sequence[int],
    epoch_batches: Sequence[int],
    key_metric: str,
    best_index: int | None,
    title: str = "",
    introspection: Sequence[Mapping[str, Any]] = (),
) -> str:
    """Draw the run's histories against batches fit and save a PNG at `path`.

    Args:
        path: where to write the PNG (written aside, then renamed into place).
        history: one value per train batch for each metric.
        val_history: one value per validation for each metric.
        val_batches: batches fit when each validation ran (x positions of `val_history`).
        epoch_batches: batches fit at each epoch end (drawn as vertical lines).
        key_metric: the validation metric that picks the best model.
        best_index: index into `val_history[key_metric]` of the best value, or None.
        title: the figure title (the run name).
        introspection: records of `introspection.jsonl`; when any has gradient norms, a
            last pane shows them against iters fit (`draw_gradient_norms`).

    Returns:
        `path`.

    Raises:
        CheckpointWriteError: the PNG could not be written; `path` is as it was.
    """
    fig = history_figure(
        history,
        val_history,
        val_batches=val_batches,
        epoch_batches=epoch_batches,
        key_metric=key_metric,
        best_index=best_index,
        title=title,
        introspection=introspection,
    )
    with atomic_file(path, "wb") as file:
        fig.savefig(file, format="png", dpi=100, pil_kwargs=_FAST_PNG)
    return path


def history_figure(
    history: dict[str, list[float]],
    val_history: dict[str, list[float]],
    *,
    val_batches: Sequence[int],
    epoch_batches: Sequence[int],
    key_metric: str,
    best_index: int | None,
    title: str = "",
    introspection: Sequence[Mapping[str, Any]] = (),
) -> Figure:
    """The figure `plot_history` saves (same arguments, less `path`), not yet drawn.

    A long title wraps (and shrinks, if a line is still too wide), a long pane label
    becomes "value", and the "best" label sits on the side of its point with room.
    """
    names = list(dict.fromkeys([*history, *val_history]))
    panes = _panes(names) if names else [[]]
    gradients = [record for record in introspection if record.get("gradient_norms")]
    rows = len(panes) + (1 if gradients else 0)
    fig = Figure(figsize=(10, 3.6 * rows))
    axes = fig.subplots(rows, 1, squeeze=False)
    if gradients:
        draw_gradient_norms(axes[-1, 0], gradients)
    for ax, pane in zip(axes[:, 0], panes):
        for name in pane:
            color = _COLORS[names.index(name) % len(_COLORS)]
            _draw_metric(ax, name, color, history, val_history, val_batches)
        for x in epoch_batches:
            ax.axvline(x, color="0.75", linewidth=0.8, linestyle="--", zorder=0)
        if key_metric in pane and best_index is not None and key_metric in val_history:
            best = val_history[key_metric][best_index]
            _mark_best(ax, val_batches[best_index], best, key_metric)
        ax.set_xlabel("batches fit")
        joined = " / ".join(pane)
        ax.set_ylabel(joined if len(pane) <= 2 and len(joined) <= _YLABEL_CHARS else "value")
        ax.grid(alpha=0.3)
        if pane:
            ax.legend(loc="best", fontsize=9, framealpha=0.85)
    epochs = f"{len(epoch_batches)} epochs, " if epoch_batches else ""
    lines = [*textwrap.wrap(title, _TITLE_CHARS), f"{epochs}dashed lines: epoch ends"]
    fit_width(fig, fig.suptitle("\n".join(lines), fontsize=11))
    # Fixed margins instead of tight_layout(), which renders the figure once more; the
    # top one grows with the title's lines.
    height = fig.get_figheight()
    top = (0.35 + 0.2 * len(lines)) / height
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.5 / height, top=1 - top, hspace=0.9 / 3.6)
    return fig


def _draw_metric(ax, name, color, history, val_history, val_batches) -> None:
    train = history.get(name, [])
    if train:
        ax.plot(
            range(1, len(train) + 1),
            train,
            color=color,
            alpha=0.55,
            linewidth=1,
            label=f"train {name}",
        )
    val = val_history.get(name, [])
    if val:
        xs = list(val_batches)[: len(val)]
        ax.plot(xs, val, color=color, marker="o", markersize=4, linewidth=1.6, label=f"val {name}")


def _mark_best(ax, x: float, y: float, name: str) -> None:
    if y is None or (isinstance(y, float) and math.isnan(y)):
        return
    ax.scatter([x], [y], s=160, facecolors="none", edgecolors="crimson", linewidths=2, zorder=5)
    # Label on the side with room: left of a point in the right half, below one near the top.
    left, right = ax.get_xlim()
    bottom, top = ax.get_ylim()
    on_right = x > (left + right) / 2
    near_top = y > bottom + 0.8 * (top - bottom)
    ax.annotate(
        f"best {name} {y:.4g}",
        (x, y),
        textcoords="offset points",
        xytext=(-8 if on_right else 8, -12 if near_top else 10),
        ha="right" if on_right else "left",
        va="top" if near_top else "bottom",
        color="crimson",
        fontsize=9,
    )
