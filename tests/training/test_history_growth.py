"""Appending a batch's values to the histories costs the same at batch 10 and at batch
a million: no copy of a history per append (a run of 100k batches once paid for a list
as long as its history on every batch)."""

import math
import tracemalloc

from trainkit.training.loop_state import append_logs


def test_appending_to_a_long_history_allocates_no_copy_of_it():
    length = 1_000_000
    history = {"loss": [0.5] * length, "accuracy": [0.25] * length}
    append_logs(history, {"loss": 0.5, "accuracy": 0.25})  # the lists grow their spare room
    tracemalloc.start()
    try:
        append_logs(history, {"loss": 0.4, "accuracy": 0.3})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100_000  # a copy of one history would be 8 MB
    assert history["loss"][-1] == 0.4 and len(history["accuracy"]) == length + 2


def test_a_metric_new_to_the_history_is_nan_for_the_batches_before_it():
    history = {"loss": [1.0, 2.0]}
    append_logs(history, {"loss": 3.0, "extra": 7.0})
    append_logs(history, {"extra": 8.0})
    assert history["loss"][:3] == [1.0, 2.0, 3.0] and math.isnan(history["loss"][3])
    assert all(map(math.isnan, history["extra"][:2])) and history["extra"][2:] == [7.0, 8.0]
