"""examples/10_nan_hunt: NonFiniteLossError names the poisoned sample; repaired, resumed."""

from __future__ import annotations

from notebook_helpers import figures, output_text, read_executed


def test_the_nan_hunt_finds_the_poisoned_sample_and_resumes_repaired(executed_notebooks):
    text = output_text(read_executed(executed_notebooks, "10_nan_hunt"))  # its asserts passed
    assert "NonFiniteLossError: The train loss was nan at epoch 0" in text
    assert "non-finite inputs in samples [1000]" in text
    assert "bad_inputs=[1000] bad_labels=[]" in text
    assert "mlp/hidden/kernel nonfinite= 2048" in text  # every weight NaN after the step
    assert "tg.checkpoint(): RuntimeError: tg.checkpoint() refused" in text
    assert "resumed from the checkpoint at iter 4" in text
    assert "layer 'hidden': non-finite rows [40] (the poisoned sample is row 40)" in text
    assert "done: epoch 2, iters_fit 40" in text  # 2 small epochs of 20 batches
    assert "non-finite weights now: 0" in text
    assert "20 introspection records, iters 2..40" in text


def test_the_nan_hunt_shows_gradient_norms_and_history_png(executed_notebooks):
    introspection, history = figures(read_executed(executed_notebooks, "10_nan_hunt"))
    assert len(introspection) > 10_000 and len(history) > 10_000  # drawn PNGs (base64)
