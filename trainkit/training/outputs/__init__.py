"""What a run shows and writes besides its checkpoints, read from the trainer.

* `progress`: the lines printed while it runs;
* `run_logs`: `metrics.csv`, the provenance log and TensorBoard scalars, cut back to a
  checkpoint's row counts on resume;
* `figures`: `history.png` and the run report.
"""
