"""`as_py_dataset` / `as_tf_dataset`: read-only views of one epoch (one TF import here)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from trainkit import DataGenerator, Preprocessor, RandomCropPreprocessor, TimeseriesPreprocessor

IMAGES = np.arange(20 * 4 * 4, dtype="float32").reshape(20, 4, 4, 1)
SERIES = np.arange(20 * 6, dtype="float32").reshape(20, 6)
IDS = np.arange(20)


def slices(dg: DataGenerator) -> list[Any]:
    return [(np.array(x), np.array(y)) for x, y in dg]


def assert_same_slices(expected: list[Any], actual: list[Any]) -> None:
    assert len(expected) == len(actual)
    for (ex, ey), (ax, ay) in zip(expected, actual):
        np.testing.assert_array_equal(ex, ax)
        np.testing.assert_array_equal(ey, ay)


def test_importing_the_data_side_imports_neither_keras_nor_tensorflow():
    code = (
        "import sys, trainkit, trainkit.data, trainkit.data.adapters, trainkit.data.writers\n"
        "bad = [m for m in ('keras', 'tensorflow') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def make_crops() -> DataGenerator:
    return DataGenerator(data=IMAGES, labels=IDS, batch_size=3, shuffle="samples", seed=5,
                         preprocessor=RandomCropPreprocessor(2))  # fmt: skip


def test_view_item_i_is_the_generators_slice_i_and_the_cursor_never_moves():
    dg = make_crops()
    dg.get()
    dg.update_state()  # mid-epoch
    state = dg.state_dict()
    view = dg.as_py_dataset()
    items = [view[i] for i in reversed(range(len(view)))][::-1]  # random access, any order
    assert dg.state_dict() == state
    assert_same_slices(slices(make_crops()), items)


def test_a_view_of_another_epoch_matches_that_epoch_of_the_generator():
    def make() -> DataGenerator:
        pre = TimeseriesPreprocessor(2, slide_size=2, start_increments=[0, 1])
        return DataGenerator(data=SERIES, labels=IDS, batch_size=4, shuffle=True, preprocessor=pre)

    reference = make()
    list(reference)
    reference.on_epoch_end()  # epoch 1: windows start at 1, so 2 slices per batch
    expected = slices(reference)
    view = make().as_py_dataset(epoch=1)
    assert len(view) == 5 * 2
    assert_same_slices(expected, [view[i] for i in range(len(view))])


class EndsEarly(Preprocessor):
    """Cuts two slices per batch, but ends a batch early when its update_state says so."""

    def on_batch_load(self, batch: Any, labels: Any) -> None:
        self.slices_per_batch = 2

    def update_state(self) -> None:
        super().update_state()
        self.batch_exhausted = True

    def process(self, batch: Any, labels: Any) -> tuple[Any, Any]:
        return batch + self.slice_idx, labels


def test_len_raises_type_error_when_slice_counts_need_update_state_but_iteration_works():
    dg = DataGenerator(data=SERIES, labels=IDS, batch_size=4, preprocessor=EndsEarly())
    view = dg.as_py_dataset()
    with pytest.raises(TypeError, match=r"EndsEarly\.count_slices\(\) returned None.*update_state"):
        len(view)
    expected = slices(
        DataGenerator(data=SERIES, labels=IDS, batch_size=4, preprocessor=EndsEarly())
    )
    assert_same_slices(expected, list(view))


def test_tf_dataset_serves_the_epochs_slices_with_known_cardinality():
    dg = make_crops()
    dataset = dg.as_tf_dataset()
    assert int(dataset.cardinality()) == len(dg)
    actual = [(x.numpy(), y.numpy()) for x, y in dataset]
    assert_same_slices(slices(make_crops()), actual)
    assert dg.epoch == 0 and dg.batch_index == 0 and not dg.batch_loaded


def test_model_fit_on_the_py_dataset_sees_every_sample_once_per_epoch():
    import keras

    seen: list[np.ndarray] = []

    class Recording(keras.Model):
        def train_step(self, data: Any) -> Any:
            seen.append(np.asarray(data[1]))
            return super().train_step(data)

    inputs = keras.Input((6,))
    model = Recording(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse", run_eagerly=True)
    dg = DataGenerator(
        data=SERIES, labels=IDS.astype("float32"), batch_size=3, shuffle=True, seed=2
    )
    state = dg.state_dict()
    view = dg.as_py_dataset()
    assert len(view) == 7  # 20 samples in batches of 3: the last holds 2
    model.fit(view, epochs=2, verbose=0)
    assert len(seen) == 2 * len(view)
    for epoch in range(2):
        labels = np.concatenate(seen[epoch * len(view) : (epoch + 1) * len(view)])
        np.testing.assert_array_equal(np.sort(labels), IDS)
    assert dg.state_dict() == state
