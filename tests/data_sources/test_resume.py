"""Every source type resumes identically from a state dict taken anywhere."""

from __future__ import annotations

import pytest

from tests.data_sources.layouts import LAYOUTS, build
from trainkit import DataGenerator, TimeseriesPreprocessor
from trainkit.testing import assert_resumes_identically

SETTINGS = [
    {"batch_size": 3, "shuffle": True, "seed": 1},
    {"batch_size": 1, "shuffle": True, "shuffle_group_batches": True, "drop_remainder": True},
    {"batch_size": 5, "shuffle": "samples", "preprocessor": TimeseriesPreprocessor(1)},
]


# Each layout with one of the settings in turn, so every setting meets several source types.
CASES = [(layout, SETTINGS[k % len(SETTINGS)]) for k, layout in enumerate(LAYOUTS)]


@pytest.mark.parametrize(("layout", "settings"), CASES, ids=[f.__name__ for f in LAYOUTS])
def test_every_source_type_resumes_identically(layout, settings, tmp_path):
    keywords, _, _ = build(layout, tmp_path)

    def make() -> DataGenerator:
        options = dict(settings)
        if "preprocessor" in options:
            options["preprocessor"] = TimeseriesPreprocessor(1)  # a fresh one per generator
        return DataGenerator(**keywords, **options)

    assert_resumes_identically(make, epochs=2)
