"""examples/09_point_clouds: classify and segment ragged clouds padded per batch, each
cloud and its coarse shadow (every 4th point) in their own group, to their own length.

The notebook saves its model and its test predictions (`tg.predict` on
`test_datagen.for_prediction()`) in its run folder; these tests run the model on each
cloud alone (with its shadow taken here once more), unpadded, and compare. Nothing
checked here depends on the CPU: the notebook prints no difference below 1e-5, only
whether it is below (oneDNN on and off print the same lines; the predictions differ by
about 5e-7).
"""

from __future__ import annotations

import re
from pathlib import Path

import keras
import numpy as np
from notebook_helpers import figures, output_text, read_executed

NAME = "09_point_clouds"


def run_folder(executed_notebooks: Path) -> Path:
    """The notebook's `$TRAINKIT_EXAMPLES_OUT`: `<work_dir>/09_point_clouds`, where the
    `executed_notebooks` fixture (tests/conftest.py) makes `work_dir` beside its own
    folder with `tmp_path_factory.mktemp("notebook_runs")` (pytest also links it as
    `notebook_runscurrent`)."""
    found = {path.resolve() for path in executed_notebooks.parent.glob(f"notebook_runs*/{NAME}")}
    assert len(found) == 1, f"expected one run folder of {NAME}, found {sorted(found)}"
    return found.pop()


def split(array: np.ndarray, lengths) -> list[np.ndarray]:
    return np.split(array, np.cumsum(lengths)[:-1])


def test_predictions_equal_the_model_on_each_cloud_alone_at_its_own_length(executed_notebooks):
    read_executed(executed_notebooks, NAME)  # every cell ran, its asserts passed
    folder = run_folder(executed_notebooks)
    saved = np.load(folder / "test_predictions.npz")
    model = keras.saving.load_model(folder / "model.keras", compile=False)
    cloud_lengths = saved["cloud_lengths"].tolist()
    assert saved["seg_lengths"].tolist() == cloud_lengths  # seg cut to each cloud's length
    assert len(set(cloud_lengths)) > 1  # ragged: every batch of 4 was padded
    assert saved["cls"].shape == (len(cloud_lengths), 3)  # one row per cloud, never cut
    clouds = zip(
        split(saved["points"], cloud_lengths),
        split(saved["features"], cloud_lengths),
        saved["cls"],
        split(saved["seg"], cloud_lengths),
    )
    for points, features, cls, seg in clouds:
        alone = model.predict_on_batch(
            {
                "points": points[None],
                "features": features[None],
                "shadow_points": points[None, ::4],
                "shadow_features": features[None, ::4],
            }
        )
        np.testing.assert_allclose(cls, alone["cls"][0], atol=1e-5)
        np.testing.assert_allclose(seg, alone["seg"][0], atol=1e-5)
    # Predictions in sample order, not augmented: they score as the notebook says.
    assert np.mean(saved["cls"].argmax(-1) == saved["cls_labels"]) > 0.8
    assert np.mean(saved["seg"].argmax(-1) == saved["seg_labels"]) > 0.9


def test_the_notebook_pads_each_batch_to_its_longest_cloud(executed_notebooks):
    text = output_text(read_executed(executed_notebooks, NAME))
    (length,) = set(
        re.search(r"'points': \(8, (\d+), 3\), 'features': \(8, (\d+), 1\)", text).groups()
    )
    (shadow,) = set(
        re.search(
            r"'shadow_points': \(8, (\d+), 3\), 'shadow_features': \(8, (\d+), 1\)", text
        ).groups()
    )
    # Per-member padding: the shadow's group is padded to its own longest sample, not to
    # the points' length (a shadow has ceil(n / 4) of a cloud's n points).
    assert int(shadow) < int(length)
    assert int(shadow) == -(-int(length) // 4)  # the slice's longest cloud has the longest shadow
    assert f"padded to: points {length} (its longest cloud), shadow {shadow} " in text
    assert f"(its longest shadow, {shadow} points)" in text
    assert f"its labels: {{'cls': (8,), 'seg': (8, {length})}}" in text
    assert f"weights: {{'cls': (8,), 'seg': (8, {length})}}" in text
    real, padding = map(
        int, re.search(r"shortest cloud: 1 on (\d+) points, 0 on (\d+)", text).groups()
    )
    assert real + padding == int(length) and padding > 0 and int(length) < 120


def test_the_notebook_learns_both_outputs(executed_notebooks):
    text = output_text(read_executed(executed_notebooks, NAME))
    first, last = map(float, re.search(r"first 3 batches (\S+) -> last 3 (\S+)", text).groups())
    assert last < 0.5 * first
    for name, minimum in (("cls_accuracy", 0.8), ("seg_accuracy", 0.9)):
        per_epoch = re.search(rf"val {name} per epoch: \[(.*)\]", text).group(1).split(", ")
        assert len(per_epoch) == 8 and float(per_epoch[-1]) > minimum, name


def test_the_notebook_predicts_through_the_prediction_view(executed_notebooks):
    text = output_text(read_executed(executed_notebooks, NAME))
    assert "for_prediction(): shuffle=None, PadPreprocessor" in text  # augmenters dropped
    assert "tg.predict: cls (12, 3), seg 12 clouds" in text
    assert "lengths equal the clouds' own: True" in text
    assert "cls and seg equal the model on each cloud alone within 1e-5: True" in text
    accuracies = re.search(r"per cloud (\S+) over 12 clouds, per point (\S+) over", text)
    assert float(accuracies.group(1)) > 0.8 and float(accuracies.group(2)) > 0.9


def test_the_notebook_shows_true_and_predicted_parts(executed_notebooks):
    (figure,) = figures(read_executed(executed_notebooks, NAME))
    assert len(figure) > 10_000  # a drawn PNG (base64)
