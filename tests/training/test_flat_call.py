"""The compiled steps take slices of plain arrays through the concrete function's flat
call (the fast path), bitwise equal to TensorFlow's ordinary call, and fall back to the
ordinary call wherever the flat inputs would not line up."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.eager.polymorphic_function import concrete_function
from training_helpers import dense_arrays, dense_model, weights_equal

from trainkit import DataGenerator, TrainGenerator
from trainkit.training.slices import steps


class CountOrdinaryCalls:
    """Counts calls that go through TensorFlow's signature matching (`_call_impl`)."""

    def __init__(self, monkeypatch):
        self.count = 0
        original = concrete_function.ConcreteFunction._call_impl

        def counted(function, args, kwargs):
            self.count += 1
            return original(function, args, kwargs)

        monkeypatch.setattr(concrete_function.ConcreteFunction, "_call_impl", counted)


def ordinary_only(monkeypatch):
    monkeypatch.setattr(steps, "flat_call", lambda function, data, owned=False: function)


def train(steps_per_execution=1, weights=False):
    x, y = dense_arrays(40)
    datagen = DataGenerator(data=x, labels=y, batch_size=4, shuffle=True, seed=1, prefetch=0)
    trainer = TrainGenerator(
        dense_model(), datagen, epochs=2, iter_verbosity=0,
        steps_per_execution=steps_per_execution,
        class_weights={0: 1.0, 1: 2.0, 2: 0.5} if weights else None,
    )  # fmt: skip
    trainer.train()
    return trainer


@pytest.mark.parametrize("spe, weights", [(1, False), (1, True), (4, False)])
def test_the_flat_call_trains_bitwise_like_the_ordinary_call(monkeypatch, spe, weights):
    calls = CountOrdinaryCalls(monkeypatch)
    fast = train(spe, weights)
    # Plain arrays never go through the ordinary call once the step is traced (the
    # first call traces through tf.function, which calls it once).
    assert calls.count <= 1
    ordinary_only(monkeypatch)
    ordinary = train(spe, weights)
    assert calls.count >= 5  # every call, fused or not, went the ordinary way
    assert weights_equal(fast.model, ordinary.model)
    assert fast.history == ordinary.history


def two_input_model():
    keras.utils.set_random_seed(0)
    # Keys that sort in the other order than the model's inputs: the flat call must
    # take the leaves in tf.nest order, as the signature does.
    b = keras.Input((3,), name="b_wide")
    a = keras.Input((2,), name="a_narrow")
    out = keras.layers.Dense(1)(keras.layers.Concatenate()([b, a]))
    model = keras.Model({"b_wide": b, "a_narrow": a}, out)
    model.compile("sgd", "mse")
    return model


def test_dict_inputs_take_the_flat_call_in_nest_order(monkeypatch):
    rng = np.random.default_rng(0)
    x = {
        "b_wide": rng.random((8, 3), dtype=np.float32),
        "a_narrow": rng.random((8, 2), dtype=np.float32),
    }
    y = rng.random((8, 1), dtype=np.float32)
    fast_model, ordinary_model = two_input_model(), two_input_model()
    fast = steps.CompiledStep(fast_model, "train")
    for _ in range(3):
        fast(x, y)
    ordinary_only(monkeypatch)
    ordinary = steps.CompiledStep(ordinary_model, "train")
    for _ in range(3):
        ordinary(x, y)
    assert weights_equal(fast_model, ordinary_model)


def one_input_model(kind):
    keras.utils.set_random_seed(0)
    inp = keras.Input((3,), name="a")
    out = keras.layers.Dense(1)(inp)
    model = keras.Model({"a": inp} if kind == "dict" else [inp], out)
    model.compile("sgd", "mse")
    return model


@pytest.mark.parametrize("kind", ["dict", "list"])
@pytest.mark.parametrize("fused", [False, True])
def test_one_array_inside_a_dict_or_list_takes_the_call_that_fits(monkeypatch, kind, fused):
    """`({"a": x}, y)` has as many parts as leaves, but its parts are not arrays."""
    rng = np.random.default_rng(0)
    arrays = [rng.random((4, 3), dtype=np.float32) for _ in range(4)]
    labels = rng.random((4, 1), dtype=np.float32)
    slices = [({"a": a} if kind == "dict" else [a], labels) for a in arrays]

    def train(model):
        step = steps.CompiledStep(model, "train")
        step(*slices[0])
        if fused:
            steps.FusedSteps(step)(slices[1:])
        else:
            for x, y in slices[1:]:
                step(x, y)
        return model

    fast = train(one_input_model(kind))
    ordinary_only(monkeypatch)
    assert weights_equal(fast, train(one_input_model(kind)))


def concrete_for(data):
    def add(data):
        return tf.reduce_sum(tf.cast(data[0], tf.float32)) + tf.reduce_sum(data[1])

    return tf.function(add).get_concrete_function(data)


def test_the_flat_call_is_taken_only_where_the_inputs_line_up():
    data = (np.ones((2, 3), np.int64), np.ones((2,), np.float32))
    function = concrete_for(data)
    fast = steps.flat_call(function, data)
    assert fast is not function and float(fast(data)) == 8.0
    # Another dtype or shape than the signature's: the ordinary call (which converts
    # or refuses as TensorFlow does).
    assert steps.flat_call(function, (data[0].astype(np.int32), data[1])) is function
    assert steps.flat_call(function, (np.ones((2, 4), np.int64), data[1])) is function
    # A leaf that is not a NumPy array: a ragged tensor has other flat parts.
    ragged = tf.RaggedTensor.from_tensor(tf.constant(data[0]))
    assert steps.flat_call(function, (ragged, data[1])) is function
    # One leaf too few.
    assert steps.flat_call(function, (data[0],)) is function


def test_a_tensorflow_without_the_flat_call_gets_the_ordinary_call():
    data = (np.ones((2, 3), np.float32), np.ones((2,), np.float32))
    function = concrete_for(data)

    class WithoutFlatCall:
        """A concrete function as another TensorFlow might have it: callable only."""

        structured_input_signature = function.structured_input_signature

        def __call__(self, data):
            return function(data)

    wrapped = WithoutFlatCall()
    assert steps.flat_call(wrapped, data) is wrapped


def test_a_slice_becomes_a_tensor_of_its_own_with_the_same_values_and_dtype():
    for array in (
        np.arange(12, dtype=np.float32).reshape(3, 4),
        np.arange(4096, dtype=np.float64).reshape(64, 64)[:, ::2],  # not contiguous
        np.array([1, 2], dtype=np.int64),
        np.array([True, False]),
    ):
        expected = array.copy()
        tensor = steps.array_to_tensor()(array)
        assert tensor.dtype == tf.as_dtype(array.dtype) and tensor.shape == array.shape
        # Never the caller's memory (TensorFlow shares aligned buffers): an op writing its
        # input in place, or a variable assigned from it, must not reach the user's data.
        array[...] = array[::-1] if array.ndim == 1 else 7
        assert np.array_equal(tensor.numpy(), expected)


DEVICE_SCRIPT = """
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from trainkit.training.slices import steps
array = np.arange(6, dtype=np.float32)
for copy in (True, False):
    convert = steps.array_to_tensor(copy=copy)
    assert convert(array).device == tf.constant(array).device, copy
    with tf.device("/CPU:1"):
        assert convert(array.copy()).device == tf.constant(array).device, copy
        assert convert(array.copy()).device.endswith("CPU:1"), copy
print("ok")
"""


def test_a_slice_becomes_a_tensor_where_tf_constant_puts_it_in_and_out_of_a_device_scope():
    # Outside a scope the tensor is made on the host without TensorFlow's copy to the
    # default device (the same device where there is no accelerator); inside one, there.
    done = subprocess.run([sys.executable, "-c", DEVICE_SCRIPT], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


def test_outside_a_device_scope_a_host_tensor_is_made_without_the_default_device_op(
    monkeypatch,
):
    # With the host's CPU as default device, the tensor is made with no device name (an
    # empty one makes TensorFlow run an op to put it on the default device: 2.5 µs per
    # array); with an accelerator, the empty name is passed on, as tf.constant does.
    from tensorflow.python.framework import ops

    names = []
    real = ops.EagerTensor

    def recorded(value, device, dtype):
        names.append(device)
        return real(value, device, dtype)

    monkeypatch.setattr(ops, "EagerTensor", recorded)
    convert = steps.array_to_tensor()
    names.clear()  # the probe's two tensors
    convert(np.arange(4, dtype=np.float32))
    accelerated = bool(tf.config.list_logical_devices("GPU"))
    assert names == ["" if accelerated else None]
