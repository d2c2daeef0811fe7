"""A custom preprocessor without get_config() is fingerprinted by its __init__ arguments."""

import json

import numpy as np
import pytest

from trainkit import Chain, DataGenerator, Preprocessor, TimeseriesPreprocessor
from trainkit.data.preprocessors.base import IdentityPreprocessor

X = np.arange(24, dtype="float32").reshape(6, 4)


class Noise(Preprocessor):
    def __init__(self, sigma=0.1, clip=None):
        super().__init__()
        self.sigma = sigma
        self._clip = clip

    def process(self, batch, labels):
        return batch + self.sigma * self.rng.standard_normal(batch.shape), labels


class KeepsNothing(Preprocessor):
    def __init__(self, factor, *members, **options):
        super().__init__()
        self.scale = factor  # kept under another name: not an argument by name

    def process(self, batch, labels):
        return batch * self.scale, labels


def generator(preprocessor):
    return DataGenerator(data=X, batch_size=2, preprocessor=preprocessor)


def test_a_resume_with_other_init_arguments_is_refused_naming_what_differs():
    state = json.loads(json.dumps(generator(Noise(0.1)).state_dict()))
    with pytest.raises(
        ValueError, match=r"preprocessor\.arguments\.sigma: saved 0\.1, this generator has 5\.0"
    ):
        generator(Noise(sigma=5.0)).load_state_dict(state)
    generator(Noise(0.1)).load_state_dict(state)  # the same arguments load


def test_a_custom_member_of_a_chain_is_fingerprinted_too():
    state = generator(Chain(TimeseriesPreprocessor(window_size=2), Noise(0.1))).state_dict()
    with pytest.raises(
        ValueError, match=r"members\[1\]\.arguments\.sigma: saved 0\.1, this generator has 0\.2"
    ):
        generator(Chain(TimeseriesPreprocessor(window_size=2), Noise(0.2))).load_state_dict(state)


def test_arguments_are_found_as_attributes_of_their_name_or_with_an_underscore():
    config = Noise(0.1, clip=np.float32(2.0)).get_config()
    assert config == {"class": "Noise", "arguments": {"sigma": 0.1, "clip": 2.0}}
    assert KeepsNothing(3).get_config() == {"class": "KeepsNothing"}


def test_the_builtins_keep_their_own_fingerprints():
    assert IdentityPreprocessor().get_config() == {"class": "IdentityPreprocessor"}
    config = TimeseriesPreprocessor(window_size=2).get_config()
    assert "arguments" not in config and config["class"] == "TimeseriesPreprocessor"
