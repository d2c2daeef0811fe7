"""history.png and report.png: long run names, metric names and keys stay inside the image."""

from __future__ import annotations

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

from trainkit.reports import plot_history, render_report

LONG_RUN = "M7__" + "_".join(f"WideWord{k}" for k in range(24))  # about 250 characters
LONG_METRIC = "sparse_top_k_categorical_accuracy_of_the_second_output_head"


@pytest.fixture
def saved_figures(monkeypatch):
    """The Figures saved while the test runs, as they were when saved."""
    figures: list[Figure] = []
    savefig = Figure.savefig

    def record(self, *args, **kwargs):
        figures.append(self)
        return savefig(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    return figures


def reach(figure: Figure) -> tuple[float, float, float, float]:
    """How far past each edge (left, bottom, right, top; inches) what is drawn reaches."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    drawn = figure.get_tightbbox(canvas.get_renderer())  # every drawn artist, in inches
    width, height = figure.get_size_inches()
    return (-drawn.x0, -drawn.y0, drawn.x1 - width, drawn.y1 - height)


def fits(figure: Figure) -> bool:
    return all(past <= 0.01 for past in reach(figure))


def test_a_long_run_name_and_a_best_label_at_the_right_edge_fit_the_history_png(
    tmp_path, saved_figures
):
    rising = [0.1 + 0.02 * k for k in range(30)]  # the best value is the last, top right
    plot_history(
        str(tmp_path / "history.png"),
        {"loss": rising[::-1], LONG_METRIC: rising},
        {"loss": [0.8, 0.5, 0.4], LONG_METRIC: [0.3, 0.5, 0.7]},
        val_batches=[10, 20, 30],
        epoch_batches=[10, 20, 30],
        key_metric=LONG_METRIC,
        best_index=2,
        title=LONG_RUN,
    )
    (figure,) = saved_figures
    assert any(f"best {LONG_METRIC}" in t.get_text() for t in figure.findobj(Text))
    assert fits(figure), reach(figure)


def test_a_long_run_name_and_long_keys_fit_the_report_png(tmp_path, saved_figures):
    sections = {
        "Model": {"name": LONG_RUN, "configs": {"units": 8}},
        "Best": {f"val_{LONG_METRIC}": 0.71, "val_loss": 0.4},
        "Trainer": {"epoch": 2, f"{LONG_METRIC}_threshold": 0.5},
    }
    render_report(str(tmp_path / "report"), LONG_RUN, sections)
    (figure,) = saved_figures
    assert fits(figure), reach(figure)
    renderer, middle = FigureCanvasAgg(figure).get_renderer(), figure.bbox.width / 2
    columns = [t for t in figure.findobj(Text) if "monospace" in t.get_family()]
    extents = [t.get_window_extent(renderer) for t in columns]  # the title spans both
    assert all(e.x1 <= middle for e in extents if e.x0 < middle), "runs into the next column"
    shown = "".join(t.get_text() for t in figure.findobj(Text)).replace("\n", "")
    assert f"val_{LONG_METRIC}" in shown.replace(" ", "")  # kept whole, on a line of its own
