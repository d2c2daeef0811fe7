"""examples/02-05: what each notebook shows, read from its executed copy.

Each notebook asserts its own claims (a failing assert fails the `executed_notebooks`
fixture); these tests check what a reader sees: the printed values and the figure.
"""

from __future__ import annotations

import base64
import re

import pytest
from notebook_helpers import figures, output_text, read_executed


def png_size(encoded: str) -> tuple[int, int]:
    png = base64.b64decode(encoded)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


@pytest.mark.parametrize(
    "name",
    [
        "02_autoencoder",
        "03_stateful_timeseries",
        "04_custom_preprocessor",
        "05_flexible_batch_size",
    ],
)
def test_the_example_shows_one_figure(executed_notebooks, name):
    (figure,) = figures(read_executed(executed_notebooks, name))
    width, height = png_size(figure)
    assert width >= 600 and height >= 200, (name, width, height)


def test_the_autoencoder_reconstructs_crops_better_than_the_mean_crop(executed_notebooks):
    text = output_text(read_executed(executed_notebooks, "02_autoencoder"))
    assert "slice (60, 6, 6, 1), labels None, {'crop': {'batch': [" in text
    model, mean = map(float, re.search(r"mse ([\d.]+); the mean crop's ([\d.]+)", text).groups())
    assert model < 0.7 * mean
    # every valid offset of a 6x6 window in an 8x8 image was drawn
    offsets = [(row, column) for row in range(3) for column in range(3)]
    assert f"offsets seen: {offsets}" in text


def test_the_stateful_lstm_fits_shifted_windows_per_epoch(executed_notebooks):
    text = output_text(read_executed(executed_notebooks, "03_stateful_timeseries"))
    assert "4 windows, the first (32, 10, 1)" in text
    # 4 batches of 32 per epoch: 4 windows at increment 0, 3 at 5; epochs 0-3 -> 56 iters
    assert "epochs=4 iters_fit=56 batches_fit=16" in text
    assert "'window': [0, 10]" in text and "'window': [30, 40]" in text


def test_the_custom_preprocessors_pass_and_the_global_rng_one_is_caught(executed_notebooks):
    text = output_text(read_executed(executed_notebooks, "04_custom_preprocessor"))
    assert "SplitBatch, RandomErase and their Chain pass check_preprocessor" in text
    assert "GlobalNoise.process()" in text and "draw from self.rng instead" in text
    slices = re.findall(r"slice_idx=(\d) x=\(16, 8, 8\)", text)
    assert slices == ["0", "1", "2", "3"]
    assert "resumes identically" in text


def test_the_batch_sizes_name_their_batches(executed_notebooks):
    text = output_text(read_executed(executed_notebooks, "05_flexible_batch_size"))
    assert "batch_size=256 (combine): 6 batches: ['0+1', '2+3'" in text
    assert "batch_size= 64 (split): 24 batches: ['0-a', '0-b', '1-a'" in text
    assert "batch_size= 96 (samples): 16 batches: ['0[0:96]', '0[96:128]+1[0:64]'" in text
    assert "pieces=(('0', 96, 128), ('1', 0, 64))" in text
    assert "every batch size serves all 1,536 samples once" in text
