"""What a strategy cannot train is refused at construction, naming the fix (in process).

A stand-in for the trainer's view of a strategy (replicas, workers, this worker's shard)
is enough here: the distributed runs themselves are in test_mirrored.py and
test_multi_worker.py, in processes of their own.
"""

from __future__ import annotations

from types import SimpleNamespace

import keras
import numpy as np
import pytest

from trainkit import DataGenerator
from trainkit.training.construction import strategy_checks
from trainkit.training.frequency import Frequency


def layout(replicas: int, workers: int, index: int = 0) -> SimpleNamespace:
    shard = (index, workers) if workers > 1 else None
    return SimpleNamespace(replicas=replicas, workers=workers, shard=shard)


def generator(samples: int = 40, batch_size: int = 16, **kwargs) -> DataGenerator:
    x = np.arange(samples * 2, dtype="float32").reshape(samples, 2)
    return DataGenerator(data=x, labels=np.zeros(samples), batch_size=batch_size, **kwargs)


def test_each_worker_serves_its_rows_of_every_global_batch():
    whole, first, second = generator(), generator(), generator()
    strategy_checks.check_distributed(layout(2, 2, 0), first, None, False)
    strategy_checks.check_distributed(layout(2, 2, 1), second, None, False)
    assert (first.shard, second.shard) == ((0, 2), (1, 2))
    for _ in range(len(whole)):  # 16, 16 and the partial 8: 8+8, 8+8, 4+4
        x, _ = whole.get()
        np.testing.assert_array_equal(np.concatenate([first.get()[0], second.get()[0]]), x)
        for dg in (whole, first, second):
            dg.update_state()
    assert first.all_data_exhausted and second.all_data_exhausted


def test_a_shard_the_user_set_is_kept():
    dg = generator(shard=(1, 2))
    strategy_checks.check_distributed(layout(2, 2, 0), dg, None, False)
    assert dg.shard == (1, 2)


def test_a_last_batch_with_fewer_rows_than_replicas_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"batch '.*' of 1 samples, fewer than .* 2 replicas"):
        strategy_checks.check_distributed(layout(2, 1), generator(samples=33), None, False)
    with pytest.raises(ValueError, match="drop_remainder=True"):
        strategy_checks.check_distributed(layout(4, 2), None, generator(samples=34), False)
    dropped = generator(samples=33, drop_remainder=True)
    strategy_checks.check_distributed(layout(2, 1), dropped, None, False)


def test_what_a_strategy_does_not_support_is_refused():
    with pytest.raises(NotImplementedError, match="pad_val_batches"):
        strategy_checks.check_distributed(layout(2, 1), generator(), None, True)
    lstm = keras.layers.LSTM(2, stateful=True, name="lstm")
    with pytest.raises(NotImplementedError, match=r"\(lstm\).*reset_statefuls=True"):
        strategy_checks.check_distributed(layout(2, 1), generator(), None, False, [lstm], False)
    with pytest.raises(NotImplementedError, match="checkpoint_freq by 'batch'"):
        strategy_checks.check_distributed(
            layout(2, 1), generator(), None, False, [lstm], True, Frequency("iter", 5)
        )


def test_a_generator_that_served_already_cannot_be_sharded():
    dg = generator()
    dg.get()
    with pytest.raises(RuntimeError, match="before it serves its first slice"):
        strategy_checks.check_distributed(layout(2, 2, 1), dg, None, False)


def test_a_store_trains_on_one_workers_replicas_and_is_refused_on_several(tmp_path):
    from trainkit import write_store

    store = write_store(generator(), str(tmp_path / "store"), chunk_size=2)  # 16, 16, 8 rows
    strategy_checks.check_distributed(layout(2, 1), DataGenerator(data_path=store), None, False)
    short = write_store(generator(samples=33), str(tmp_path / "short"), chunk_size=2)
    with pytest.raises(ValueError, match=r"stored batch '2' holds 1 samples.*2 replicas"):
        strategy_checks.check_distributed(layout(2, 1), DataGenerator(data_path=short), None, False)
    with pytest.raises(ValueError, match=r"cannot be split across 2 workers"):
        strategy_checks.check_distributed(layout(2, 2), DataGenerator(data_path=store), None, False)
