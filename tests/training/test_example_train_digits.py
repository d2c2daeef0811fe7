"""examples/train_digits.py runs end to end (interrupt included) and learns."""

import runpy
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_digits.py"


def test_the_digits_example_trains_through_an_interrupt_and_learns(monkeypatch, capsys, tmp_path):
    argv = [str(EXAMPLE), "--epochs", "8", "--logs-dir", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(EXAMPLE), run_name="__main__")  # exits non-zero below 85% accuracy
    out = capsys.readouterr().out
    assert "-- interrupted: simulated Ctrl-C after batch 30" in out
    assert "epochs=8 iters_fit=192 batches_fit=192 times_validated=8" in out
    assert "history.png" in out and "report.txt" in out and "metrics.csv" in out
