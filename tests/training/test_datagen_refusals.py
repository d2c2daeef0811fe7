"""What a Keras user passes as `datagen` is refused with the DataGenerator that fits it,
and a PyDataset is wrapped into one (`argument_checks.as_datagen`)."""

import keras
import numpy as np
import pytest
from training_helpers import dense_arrays, dense_model

from trainkit import DataGenerator, TrainGenerator
from trainkit.training.construction import argument_checks, strategy_checks


@pytest.fixture(scope="module")
def model():
    return dense_model()


class Batches(keras.utils.PyDataset):
    def __init__(self):
        super().__init__()
        self.x, self.y = dense_arrays(30)

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return self.x[index * 8 : (index + 1) * 8], self.y[index * 8 : (index + 1) * 8]


def test_a_tuple_of_arrays_names_the_data_generator_that_takes_them(model):
    x, y = dense_arrays()
    with pytest.raises(TypeError, match=r"DataGenerator\(data=x, labels=y, batch_size=\.\.\.\)"):
        TrainGenerator(model, (x, y))


def test_a_tf_dataset_says_why_it_cannot_resume_and_what_to_pass_instead(model):
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices(dense_arrays()).batch(8)
    with pytest.raises(TypeError, match=r"cannot resume exactly: it has no random access.*"
                       r"DataGenerator\(data=x, labels=y"):  # fmt: skip
        TrainGenerator(model, dataset)


def test_a_py_dataset_the_trainer_is_given_is_wrapped_with_its_batch_size():
    wrapped = argument_checks.as_datagen("datagen", Batches())
    assert isinstance(wrapped, DataGenerator)
    assert wrapped.batch_size == 8 and wrapped.set_nums_original == ["0", "1", "2", "3"]
    assert argument_checks.as_datagen("val_datagen", None) is None
    dg = DataGenerator(data=np.zeros((4, 8), "float32"), batch_size=2)
    assert argument_checks.as_datagen("datagen", dg) is dg


def test_a_py_dataset_left_unwrapped_names_the_wrapper(model):
    with pytest.raises(TypeError, match=r"DataGenerator\(data=py_dataset, batch_size="):
        argument_checks.check_datagen("datagen", Batches(), required=True)


def test_a_model_built_outside_the_strategy_scope_is_refused_naming_the_scope():
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    outside = dense_model()
    with pytest.raises(ValueError, match=r"outside any strategy's scope.*with strategy\.scope\(\)"):
        strategy_checks.check_model_strategy(outside, strategy)
    with strategy.scope():
        inside = dense_model()
    strategy_checks.check_model_strategy(inside, strategy)
    other = tf.distribute.MirroredStrategy(["/cpu:0"])
    with pytest.raises(ValueError, match="in another strategy"):
        strategy_checks.check_model_strategy(inside, other)


def test_the_trainer_wraps_py_datasets_for_train_and_validation_and_resumes_them(tmp_path):
    def build(**kwargs):
        return TrainGenerator(
            dense_model(), Batches(), Batches(), epochs=2, iter_verbosity=0,
            logs_dir=str(tmp_path), checkpoint_freq={"batch": 2}, **kwargs,
        )  # fmt: skip

    tg = build()
    assert isinstance(tg.datagen, DataGenerator) and isinstance(tg.val_datagen, DataGenerator)
    tg.train()
    assert tg.iters_fit == 8 and tg.times_validated == 2
    resumed = build(resume=True)  # the last checkpoint: after the last batch
    assert resumed.iters_fit == 8 and resumed.history == tg.history


def test_a_model_built_outside_the_strategy_scope_is_refused_by_the_trainer():
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    x, y = dense_arrays(16)
    with pytest.raises(ValueError, match=r"with strategy\.scope\(\)"):
        TrainGenerator(
            dense_model(), DataGenerator(data=x, labels=y, batch_size=8), strategy=strategy
        )
