"""`iter_verbosity`: 0 silent (Keras' verbose=0), 'epoch' DeepTrain's epoch lines, 1, 2."""

from __future__ import annotations

import re

import pytest
from training_helpers import dense_datagens, dense_model

from trainkit import TrainGenerator

EPOCHS = 2  # 30 samples in batches of 8: 4 batches an epoch, validated every epoch


def printed_kinds(capsys, iter_verbosity) -> list[str]:
    datagen, val_datagen = dense_datagens()
    tg = TrainGenerator(
        dense_model(), datagen, val_datagen, epochs=EPOCHS, iter_verbosity=iter_verbosity
    )
    capsys.readouterr()
    tg.train()
    lines = capsys.readouterr().out.splitlines()
    return [re.sub(r"^\s*(\w+).*", r"\1", line) for line in lines]


def test_zero_prints_nothing_as_keras_verbose_zero(capsys):
    assert printed_kinds(capsys, 0) == []


def test_epoch_prints_a_line_per_validation_and_per_epoch_and_none_per_batch(capsys):
    assert printed_kinds(capsys, "epoch") == ["validation", "epoch"] * EPOCHS


@pytest.mark.parametrize(("iter_verbosity", "kind", "per_epoch"), [(1, "epoch", 5), (2, "iter", 4)])
def test_one_adds_batch_lines_and_two_slice_lines(capsys, iter_verbosity, kind, per_epoch):
    kinds = printed_kinds(capsys, iter_verbosity)
    assert kinds.count(kind) == per_epoch * EPOCHS  # with 1: 4 batch lines + 'epoch 1/2 done'
    assert kinds.count("validation") == EPOCHS


def test_an_unknown_level_lists_epoch_among_the_choices():
    datagen, val_datagen = dense_datagens()
    with pytest.raises(ValueError, match=r"one of 0, 'epoch', 1, 2\. Received: iter_verbosity="):
        TrainGenerator(dense_model(), datagen, val_datagen, iter_verbosity="epochs")


def test_epoch_can_be_assigned_on_a_built_trainer(capsys):
    datagen, val_datagen = dense_datagens()
    tg = TrainGenerator(dense_model(), datagen, val_datagen, epochs=1, iter_verbosity=0)
    tg.iter_verbosity = "epoch"
    tg.train()
    assert capsys.readouterr().out.startswith("validation 1:")
