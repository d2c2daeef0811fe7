"""examples/10_nan_hunt: the poisoned sample is caught before its step, whatever the CPU.

Every line checked here is one the notebook prints on Intel and AMD CPUs alike, with
oneDNN on or off: nothing computed from NaN data (a loss, a layer output, a gradient
norm) is printed.
"""

from __future__ import annotations

from notebook_helpers import figures, output_text, read_executed


def test_the_nan_hunt_refuses_the_poisoned_slice_before_its_step(executed_notebooks):
    text = output_text(read_executed(executed_notebooks, "10_nan_hunt"))  # its asserts passed
    assert "NonFiniteLossError: The slice to fit holds NaN or inf at epoch 0" in text
    assert "non-finite inputs in samples [1000]" in text
    assert "It was caught before the step: the weights are unchanged." in text
    assert "bad_inputs=[1000] bad_labels=[]" in text
    assert "before_step=True" in text
    assert "mlp/hidden/kernel nonfinite=0" in text
    assert "rows of the slice with NaN or inf: [40]" in text
    assert "their global indices: [1000]" in text


def test_the_nan_hunt_skips_the_bad_slice_and_names_it(executed_notebooks):
    text = output_text(read_executed(executed_notebooks, "10_nan_hunt"))
    assert "done: epoch 2, iters_fit 38, warnings 2" in text  # 2 small epochs, 19 slices fit
    assert text.count("set_name='16' slice_idx=0 holds 1000: True") == 2
    assert "metrics.csv rows of kind 'skipped': 2" in text


def test_the_nan_hunt_resumes_repaired_and_refuses_nan_checkpoints(executed_notebooks):
    text = output_text(read_executed(executed_notebooks, "10_nan_hunt"))
    assert "resumed from the checkpoint at iter 4" in text
    assert "done: epoch 2, iters_fit 40" in text  # 2 small epochs of 20 batches
    assert "non-finite weights now: 0" in text
    assert "NonFiniteWeightsError: The checkpoint at iters_fit=8 was not written" in text
    assert "the model's weights hold NaN or inf: True" in text
    assert "checkpoints kept: 1, every one finite: True" in text
    assert "20 introspection records, iters 2..40" in text


def test_the_nan_hunt_shows_gradient_norms_and_history_png(executed_notebooks):
    introspection, history = figures(read_executed(executed_notebooks, "10_nan_hunt"))
    assert len(introspection) > 10_000 and len(history) > 10_000  # drawn PNGs (base64)
