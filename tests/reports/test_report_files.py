"""Report files on their own: PNGs that open, CSV rows that truncate, provenance lines."""

import matplotlib.image as mpimg
import numpy as np
import pytest

from trainkit.reports import MetricsLog, ProvenanceLog, plot_history, render_report


def test_history_png_is_a_readable_image_of_a_sensible_size(tmp_path):
    history = {"loss": list(np.linspace(1, 0.1, 30)), "accuracy": list(np.linspace(0.1, 0.9, 30))}
    val_history = {"loss": [0.8, 0.5, 0.6], "accuracy": [0.3, 0.6, 0.5]}
    path = plot_history(
        str(tmp_path / "history.png"),
        history,
        val_history,
        val_batches=[10, 20, 30],
        epoch_batches=[10, 20, 30],
        key_metric="loss",
        best_index=1,
        title="M1__model",
    )
    image = mpimg.imread(path)
    assert image.shape[0] >= 300 and image.shape[1] >= 800
    assert image.std() > 0.01  # not a blank canvas
    assert not (tmp_path / "history.png.tmp.png").exists()


def test_many_metrics_get_a_second_pane(tmp_path):
    history = {name: [1.0, 0.5] for name in ("loss", "mae", "accuracy", "auc")}
    one = mpimg.imread(
        plot_history(
            str(tmp_path / "a.png"),
            {"loss": [1.0]},
            {},
            val_batches=[],
            epoch_batches=[],
            key_metric="loss",
            best_index=None,
        )
    )
    two = mpimg.imread(
        plot_history(
            str(tmp_path / "b.png"),
            history,
            {},
            val_batches=[],
            epoch_batches=[1],
            key_metric="loss",
            best_index=None,
        )
    )
    assert two.shape[0] > 1.5 * one.shape[0]


def test_report_writes_text_and_png_with_every_section(tmp_path):
    sections = {
        "Model": {"name": "m", "configs": {"units": 8}},
        "Trainer": {"epoch": 2, "iters_fit": 40},
    }
    text_path, png_path = render_report(str(tmp_path / "report"), "M1__m", sections)
    with open(text_path) as file:
        text = file.read()
    assert "Model" in text and "iters_fit : 40" in text and "units" in text
    assert mpimg.imread(png_path).shape[1] >= 800


def test_metrics_log_rows_parse_and_truncate_to_a_saved_count(tmp_path):
    log = MetricsLog(str(tmp_path / "metrics.csv"), ["loss", "accuracy"])
    for k in range(5):
        log.append(
            "train",
            {"epoch": 0, "iters_fit": k + 1, "batches_fit": k + 1, "set_name": str(k)},
            {"loss": 1.0 / (k + 1), "accuracy": 0.5},
        )
    log.append("val", {"epoch": 1, "iters_fit": 5, "batches_fit": 5, "set_name": ""}, {"loss": 0.3})
    rows = log.read()
    assert [r["kind"] for r in rows] == ["train"] * 5 + ["val"]
    assert float(rows[2]["loss"]) == pytest.approx(1 / 3)
    assert rows[5]["accuracy"] == ""
    log.truncate(3)
    assert log.row_count() == 3
    with pytest.raises(ValueError, match="not columns"):
        log.append("train", {}, {"f1": 0.1})
    with pytest.raises(ValueError, match="has columns"):
        MetricsLog(str(tmp_path / "metrics.csv"), ["loss"])


def test_provenance_log_round_trips_and_truncates_by_iter(tmp_path):
    log = ProvenanceLog(str(tmp_path / "provenance.jsonl"))
    for k in range(1, 6):
        log.append({"iter": k, "set_name": str(k), "pieces": [[str(k), 0, 4]], "slice_idx": 0})
    assert [r["iter"] for r in log.read()] == [1, 2, 3, 4, 5]
    log.truncate(2)
    assert [r["set_name"] for r in ProvenanceLog(log.path).read()] == ["1", "2"]


def test_metrics_log_rows_are_on_disk_at_once_and_counted_without_rereading(tmp_path):
    path = tmp_path / "metrics.csv"
    log = MetricsLog(str(path), ["loss"])
    for k in range(3):
        log.append("train", {"epoch": 0, "iters_fit": k + 1}, {"loss": 0.5})
        assert len(path.read_text().splitlines()) == k + 2  # visible before any close
    path.write_text(path.read_text() + "train,0,9,9,torn")  # as a kill mid-row leaves it
    assert log.row_count() == 3  # the count is the log's own, the file is not reread
    reopened = MetricsLog(str(path), ["loss"])
    assert reopened.row_count() == 3  # an existing file: whole rows, the torn one is not
    reopened.truncate(2)
    assert reopened.row_count() == 2
    reopened.append("val", {"epoch": 1}, {"loss": 0.25})  # appends to the new file
    assert reopened.row_count() == 3 and [r["kind"] for r in reopened.read()] == [
        "train",
        "train",
        "val",
    ]
    assert MetricsLog(str(path), ["loss"]).row_count() == 3
