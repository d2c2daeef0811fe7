"""What a run shows and writes besides its checkpoints.

Each is handed what it reads (the loop state, the run folder, the timings), never the
trainer; nothing in the loop depends on what they print or draw:

* `progress`: the lines printed while it runs;
* `run_logs`: `metrics.csv`, the provenance log and TensorBoard scalars, cut back to a
  checkpoint's row counts on resume;
* `figures`: `history.png` and the run report.
"""
