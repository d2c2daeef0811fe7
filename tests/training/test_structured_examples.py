"""examples/point_clouds.py and examples/multi_output.py run at small size and learn."""

import runpy
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, *argv: str) -> dict:
    """The example's `main(argv)` result; it exits non-zero below its accuracy floor."""
    namespace = runpy.run_path(str(EXAMPLES / name), run_name="example")
    return namespace["main"](list(argv))


def test_the_point_cloud_example_trains_and_predicts_each_cloud_at_its_own_length(capsys):
    result = run_example("point_clouds.py", "--small")
    out = capsys.readouterr().out
    tg = result["tg"]
    assert np.mean(tg.history["loss"][-3:]) < 0.5 * np.mean(tg.history["loss"][:3])
    assert tg.val_history["accuracy"][-1] > 0.9
    points, _, labels = result["test"]
    predictions = result["predictions"]
    assert [p.shape for p in predictions] == [(len(c), 3) for c in points]
    np.testing.assert_allclose(np.concatenate(predictions).sum(axis=-1), 1.0, rtol=1e-5)
    for predicted, alone in zip(predictions, result["alone"]):
        np.testing.assert_allclose(predicted, alone, atol=1e-5)
    decided = np.concatenate([p.argmax(axis=-1) for p in predictions])
    assert np.mean(decided == np.concatenate(labels)) > 0.9
    assert "lengths equal the clouds' own: True" in out
    assert "max |tg.predict - model.predict(cloud alone)|:" in out


def test_the_multi_output_example_scores_each_output_and_restores_sample_order(capsys):
    result = run_example("multi_output.py", "--small")
    out = capsys.readouterr().out
    tg = result["tg"]
    assert set(tg.val_history) >= {"loss", "digit_accuracy", "parity_f1", "parity_roc_auc"}
    assert tg.best_key_metric == max(tg.val_history["digit_accuracy"])
    assert tg.val_history["loss"][-1] < tg.val_history["loss"][0]
    assert tg.best_key_metric > 0.85
    test_x, test_y = result["test"]
    served, ordered = result["result"], result["ordered"]
    assert not np.array_equal(served.sample_indices, np.arange(len(test_x["pixels"])))
    np.testing.assert_array_equal(ordered.sample_indices, np.arange(len(test_x["pixels"])))
    assert set(ordered.predictions) == {"digit", "parity"}
    assert ordered.predictions["digit"].shape == (len(test_x["pixels"]), 10)
    assert ordered.predictions["parity"].shape == (len(test_x["pixels"]), 1)
    for key in ("digit", "parity"):
        np.testing.assert_allclose(ordered.predictions[key], result["expected"][key], atol=1e-5)
        np.testing.assert_array_equal(ordered.labels[key], test_y[key])
    assert "labels line up with the test arrays: True" in out
