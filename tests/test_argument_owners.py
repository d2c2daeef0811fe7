"""Arguments given to the wrong object name the object that takes them."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from trainkit import DataGenerator, TrainGenerator
from trainkit._argument_owners import DATA_GENERATOR_ARGUMENTS, TRAIN_GENERATOR_ARGUMENTS
from trainkit.data.generator import RARE_OPTIONS as DATA_RARE_OPTIONS
from trainkit.training.construction.keywords import RARE_OPTIONS as TRAIN_RARE_OPTIONS


def keywords(init, rare):
    params = inspect.signature(init).parameters
    named = {p for p, v in params.items() if v.kind not in (v.VAR_KEYWORD, v.VAR_POSITIONAL)}
    return (named - {"self"}) | set(rare)


def test_the_tables_list_every_argument_each_object_takes():
    assert keywords(DataGenerator.__init__, DATA_RARE_OPTIONS) == DATA_GENERATOR_ARGUMENTS
    assert keywords(TrainGenerator.__init__, TRAIN_RARE_OPTIONS) == TRAIN_GENERATOR_ARGUMENTS


@pytest.mark.parametrize(
    ("key", "pattern"),
    [
        ("labels_path", r"does not take `labels_path`: it is an argument of DataGenerator: "
         r"TrainGenerator\(model, DataGenerator\(\.\.\., labels_path=\.\.\.\)\)"),
        ("superbatch", r"does not take `superbatch`: it is an argument of DataGenerator"),
        ("batch_size", r"set `batch_size` on the DataGenerator"),
    ],
)  # fmt: skip
def test_a_generator_argument_given_to_the_trainer_names_the_data_generator(key, pattern):
    from tests.data_sources.test_indexed_sources import build_model

    datagen = DataGenerator(data=np.zeros((4, 4), "float32"), labels=np.zeros(4), batch_size=2)
    with pytest.raises(ValueError, match=pattern):
        TrainGenerator(build_model(), datagen, **{key: "y.h5"})
