"""What `write_store` compares before handing back a finished store: the epoch, too."""

import numpy as np
import pytest

from trainkit import DataGenerator
from trainkit.data import write_store


def test_a_store_of_one_epoch_is_not_handed_back_for_another(tmp_path):
    x = np.arange(48, dtype="float32").reshape(24, 2)
    dg = DataGenerator(data=x, labels=np.arange(24), batch_size=4, shuffle=True, seed=1)
    out = write_store(dg, tmp_path / "store", chunk_size=2, progress=False)
    assert write_store(dg, out, chunk_size=2, progress=False) == out  # same inputs: reused
    dg.on_epoch_end()  # epoch 1 has another order
    with pytest.raises(ValueError, match=r"epoch: saved 0, now 1"):
        write_store(dg, out, chunk_size=2, progress=False)
