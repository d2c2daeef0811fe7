"""examples/01_quick_start: dict-configured training, checkpoints, history.png, resume."""

from __future__ import annotations

import base64

from notebook_helpers import figures, output_text, read_executed


def test_the_quick_start_trains_validates_checkpoints_and_continues(executed_notebooks):
    notebook = read_executed(executed_notebooks, "01_quick_start")  # its asserts passed
    text = output_text(notebook)
    assert "epoch=3 iters_fit=75 batches_fit=75" in text  # 3 small epochs of 25 batches
    assert "validation 3:" in text and "* new best accuracy" in text
    for name in ("ckpt-000000050-2", "ckpt-000000075-3", "history.png", "metrics.csv"):
        assert f"    {name}\n" in text
    assert "epoch=4 batches_fit=100" in text  # one more epoch after resume=True


def test_the_quick_start_shows_history_png(executed_notebooks):
    (history,) = figures(read_executed(executed_notebooks, "01_quick_start"))
    png = base64.b64decode(history)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width > 400 and height > 200, (width, height)
