"""examples/08_predict_mode_validation: F1 on the whole set at a tuned threshold, predict."""

from __future__ import annotations

import re

from notebook_helpers import figures, output_text, read_executed


def test_the_tuned_threshold_beats_one_half_on_validation_and_test(executed_notebooks):
    text = output_text(read_executed(executed_notebooks, "08_predict_mode_validation"))
    thresholds = re.search(r"val predict_threshold \[(.*)\]", text).group(1).split(", ")
    assert len(thresholds) == 3  # one tuned threshold per validation (3 small epochs)
    half, tuned = map(float, re.search(r"val F1 at 0.5: (\S+); at .*: (\S+)", text).groups())
    assert tuned > half and float(re.search(r"best F1 on the grid: (\S+)", text).group(1)) == tuned
    half, tuned = map(float, re.search(r"test F1 at 0.5: (\S+); at .*: (\S+)", text).groups())
    assert tuned > half
    assert f"'f1': {round(tuned, 3)}" in text  # tg.evaluate scores at the tuned threshold
    assert "predictions (297, 1) labels (297,)" in text


def test_the_threshold_example_draws_f1_by_threshold_and_the_scores(executed_notebooks):
    (figure,) = figures(read_executed(executed_notebooks, "08_predict_mode_validation"))
    assert len(figure) > 10_000  # a drawn PNG (base64)
