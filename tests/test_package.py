"""Package-level promises: light imports and the public names."""

import subprocess
import sys


def test_importing_the_data_side_imports_neither_keras_nor_tensorflow():
    code = (
        "import sys, trainkit, trainkit.data, trainkit.preprocessors, trainkit.testing;"
        "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names_are_importable_from_their_documented_homes():
    import trainkit
    import trainkit.preprocessors
    import trainkit.testing

    for name in (
        "DataGenerator",
        "Preprocessor",
        "RandomCropPreprocessor",
        "TimeseriesPreprocessor",
        "Chain",
    ):
        assert getattr(trainkit, name) is getattr(trainkit.data, name)
    for name in ("RandomCropPreprocessor", "TimeseriesPreprocessor", "Chain"):
        assert getattr(trainkit.preprocessors, name) is getattr(trainkit, name)
    assert callable(trainkit.testing.assert_resumes_identically)
    assert callable(trainkit.testing.check_preprocessor)
