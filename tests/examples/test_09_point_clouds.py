"""examples/09_point_clouds: ragged clouds, two inputs, augmentation, padding, cut back."""

from __future__ import annotations

import re

from notebook_helpers import figures, output_text, read_executed


def test_the_point_cloud_example_learns_and_predicts_each_cloud_at_its_own_length(
    executed_notebooks,
):
    text = output_text(read_executed(executed_notebooks, "09_point_clouds"))  # asserts passed
    # Two inputs padded to 120 points, weights 0 on the padding.
    assert "{'points': (8, 120, 3), 'features': (8, 120, 1)} labels (8, 120)" in text
    first, last = map(float, re.search(r"first 3 batches (\S+) -> last 3 (\S+)", text).groups())
    assert last < 0.5 * first
    assert "tg.predict: 12 clouds" in text
    assert "lengths equal the clouds' own: True" in text
    difference = float(re.search(r"model\(cloud alone\)\|: (\S+)", text).group(1))
    assert difference < 1e-5
    accuracy = float(re.search(r"per-point test accuracy: (\S+)", text).group(1))
    assert accuracy > 0.9


def test_the_point_cloud_example_shows_true_and_predicted_parts(executed_notebooks):
    (figure,) = figures(read_executed(executed_notebooks, "09_point_clouds"))
    assert len(figure) > 10_000  # a drawn PNG (base64)
