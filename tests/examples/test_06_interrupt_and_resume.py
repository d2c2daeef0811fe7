"""examples/06_interrupt_and_resume: a job killed by SIGKILL resumes to the same weights."""

from __future__ import annotations

import re

from notebook_helpers import figures, output_text, read_executed


def test_the_killed_job_resumes_bitwise_equal_to_the_uninterrupted_run(executed_notebooks):
    text = output_text(read_executed(executed_notebooks, "06_interrupt_and_resume"))
    assert "job killed: return code -9" in text
    killed_at = int(re.search(r"batches in metrics.csv when killed: (\d+)", text).group(1))
    checkpoint = int(re.search(r"newest complete checkpoint: \S+ \(iter (\d+)\)", text).group(1))
    # Killed between two checkpoints: batches were fit that no checkpoint holds.
    assert checkpoint >= 16 and killed_at > checkpoint
    assert f"resumed at iter {checkpoint}, epoch {checkpoint // 12}" in text  # 12 per epoch
    assert "done: 36 iters, 3 epochs" in text  # 480 small-size digits in batches of 40
    assert "assert_resume_equivalent: resumed after iters (19,) of 36: equal" in text
    assert "weights bitwise equal: True (4/4 arrays, largest difference 0.0)" in text
    assert "histories equal: True" in text and "validation histories equal: True" in text
    assert "retracing" not in text


def test_the_interrupt_example_plots_the_loss_of_both_runs(executed_notebooks):
    (figure,) = figures(read_executed(executed_notebooks, "06_interrupt_and_resume"))
    assert len(figure) > 10_000  # a drawn PNG (base64), not an empty canvas
