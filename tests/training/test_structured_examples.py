"""examples/multi_output.py runs at small size and learns.

(The point-cloud example is the notebook examples/09_point_clouds, tested in
tests/examples/test_09_point_clouds.py.)
"""

import runpy
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, *argv: str) -> dict:
    """The example's `main(argv)` result; it exits non-zero below its accuracy floor."""
    namespace = runpy.run_path(str(EXAMPLES / name), run_name="example")
    return namespace["main"](list(argv))


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
