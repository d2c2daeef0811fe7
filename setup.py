"""trainkit: train Keras 3 models on TensorFlow with full control of the train state."""

from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="trainkit",
    version="0.1.0",
    description="Training-loop toolkit for Keras 3 on TensorFlow with exact resume",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["trainkit", "trainkit.*"]),
    package_data={"trainkit": ["py.typed"]},
    install_requires=[
        "numpy>=1.26",
        "h5py>=3.10,<3.15",  # TensorFlow 2.21 requires h5py<3.15
        "keras>=3.10",
        "scikit-learn>=1.4",
        "matplotlib>=3.8",
    ],
    extras_require={
        # TensorFlow is an extra: `tensorflow` and `tensorflow-cpu` install into the same
        # place, so users who have one must not be forced to get the other.
        "tensorflow": ["tensorflow>=2.16"],
        "cpu": ["tensorflow-cpu>=2.16"],
        "test": [
            "pytest>=8",
            "hypothesis>=6.100",
            "pytest-timeout",
            "ruff>=0.6",
            "mypy>=1.10",
            "tensorboard",  # Keras' TensorBoard callback; tensorflow-cpu does not bring it
            # Example notebooks: paired with their scripts, executed by the tests.
            "jupytext>=1.16",
            "nbclient>=0.10",
            "nbformat>=5.10",
            "nbconvert>=7.16",
            "ipykernel>=6.29",
            # The documentation site, built by the tests.
            "mkdocs>=1.6",
            "mkdocs-material>=9.5",
            "mkdocstrings[python]>=0.26",
            "pymdown-extensions>=10.8",
            # The packaging test builds the sdist and the wheel.
            "build>=1.2",
        ],
    },
)
