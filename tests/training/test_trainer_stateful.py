"""Stateful layers are reset after the last slice of each batch, and only then."""

import keras
import numpy as np
import pytest
from training_helpers import lstm_model, series_datagen

from trainkit import TrainGenerator
from trainkit.callbacks import Callback
from trainkit.training.slices.steps import stateful_layers


def state_norm(model):
    layer = stateful_layers(model)[0]
    layers = (
        [layer.forward_layer, layer.backward_layer] if hasattr(layer, "forward_layer") else [layer]
    )
    return sum(float(np.abs(v.numpy()).sum()) for rnn in layers for v in rnn.states)


class StateProbe(Callback):
    """Records (hook, index, whether the RNN state is zero) at every batch/iter hook."""

    def __init__(self):
        self.seen = []

    def _probe(self, hook, index):
        self.seen.append((hook, index, state_norm(self.trainer.model) == 0.0))

    def on_train_batch_begin(self, batch, logs=None):
        self._probe("train_batch_begin", batch)

    def on_train_iter_end(self, iteration, logs=None):
        self._probe("train_iter_end", iteration)

    def on_train_batch_end(self, batch, logs=None):
        self._probe("train_batch_end", batch)

    def on_val_batch_end(self, batch, logs=None):
        self._probe("val_batch_end", batch)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_stateful_layers_are_reset_at_batch_ends_never_between_slices(bidirectional):
    probe = StateProbe()
    trainer = TrainGenerator(
        lstm_model(bidirectional=bidirectional), series_datagen(), series_datagen(),
        epochs=1, reset_statefuls=True, callbacks=[probe], iter_verbosity=0,
    )  # fmt: skip
    trainer.train()
    per_batch = [
        ("train_batch_begin", 0, True),
        ("train_iter_end", 0, False),  # 12 timesteps in windows of 4: 3 slices per batch
        ("train_iter_end", 1, False),
        ("train_iter_end", 2, False),
        ("train_batch_end", 0, True),
    ]
    second = [(hook, 1 if "batch" in hook else i, zero) for hook, i, zero in per_batch]
    assert probe.seen == [
        *per_batch,
        *second,
        ("val_batch_end", 0, True),
        ("val_batch_end", 1, True),
    ]


def test_nested_and_bidirectional_stateful_layers_are_found_once():
    plain = stateful_layers(lstm_model())
    assert len(plain) == 1 and isinstance(plain[0], keras.layers.LSTM)
    wrapped = stateful_layers(lstm_model(bidirectional=True))
    assert len(wrapped) == 1 and hasattr(wrapped[0], "forward_layer")
    assert stateful_layers(lstm_model(stateful=False)) == []


def test_a_stateful_model_fed_a_partial_batch_is_refused_suggesting_drop_remainder():
    with pytest.raises(ValueError, match=r"partial batch of 2 samples.*drop_remainder=True"):
        TrainGenerator(lstm_model(), series_datagen(n=10), reset_statefuls=True)
    with pytest.raises(ValueError, match="`val_datagen` serves a partial batch"):
        TrainGenerator(lstm_model(), series_datagen(), series_datagen(n=6), reset_statefuls=True)
    trainer = TrainGenerator(
        lstm_model(), series_datagen(n=10, drop_remainder=True), reset_statefuls=True,
        iter_verbosity=0,
    )  # fmt: skip
    trainer.train()
    assert trainer.batches_fit == 2


def test_stateful_layers_without_reset_statefuls_get_a_warning():
    with pytest.warns(UserWarning, match="reset_statefuls=True"):
        TrainGenerator(lstm_model(), series_datagen())
