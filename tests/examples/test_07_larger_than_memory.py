"""examples/07_larger_than_memory: a memory-mapped .npy by rows, prefetch, an offline store."""

from __future__ import annotations

import re

from notebook_helpers import figures, output_text, read_executed


def test_the_large_file_is_read_by_rows_and_trained_from_a_store(executed_notebooks):
    text = output_text(read_executed(executed_notebooks, "07_larger_than_memory"))
    assert "signals.npy: 64,000 signals x 512 steps, 131 MB" in text
    read, grew = re.search(r"read (\d+) MB in 256 batches; .* at\nmost (\d+) MB", text).groups()
    assert int(grew) < int(read) / 2  # the notebook asserts it too
    assert "one slice: 250 signals -> features (250, 33)" in text
    assert "16 slices, the same with and without prefetch: True" in text
    assert "0.6 MB of features for 8.2 MB of signals" in text  # 16 batches stored
    assert "store: 16 batches" in text
    raw = int(re.search(r"reading \+ spectrogram: (\d+) ms per batch", text).group(1))
    store = int(re.search(r"training from the store: (\d+) ms per batch", text).group(1))
    assert store < raw  # a whole training batch from the store beats computing features
    accuracy = re.search(r"val accuracy per epoch: \[(.*)\]", text).group(1).split(", ")
    assert len(accuracy) == 4 and float(accuracy[-1]) > 0.5


def test_the_large_file_example_plots_memory_and_batch_times(executed_notebooks):
    (figure,) = figures(read_executed(executed_notebooks, "07_larger_than_memory"))
    assert len(figure) > 10_000  # a drawn PNG (base64)
