"""trainkit: train Keras 3 models on TensorFlow with full control of the train state."""

import ast
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

# The distribution name: the registry name `trainkit` belongs to an unrelated project, so
# trainkit is published as `keras-trainkit` (`pip install keras-trainkit`); the import name
# stays `trainkit`.
DISTRIBUTION = "keras-trainkit"

# Where trainkit's code, issues and documentation site (`bash dev/docs.sh` builds it from
# docs/) will live. Not decided yet, so these are reserved placeholder addresses (.invalid
# never resolves) rather than guesses that could point at someone else's project: the
# GitHub account `trainkit` belongs to others. Set both before the first upload.
REPOSITORY = "https://trainkit.invalid/source"
DOCUMENTATION = "https://trainkit.invalid/docs"


def read_version() -> str:
    """`__version__` from trainkit/__init__.py, its one source, read without importing
    trainkit (importing it needs NumPy, which a build environment may not have)."""
    init = HERE / "trainkit" / "__init__.py"
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__version__" for target in node.targets
        ):
            return str(ast.literal_eval(node.value))
    raise RuntimeError(
        f"{init} has no `__version__ = '<version>'` line at module level; setup.py reads the "
        "version from it, so put it back there (a string literal, not an import)."
    )


setup(
    name=DISTRIBUTION,
    version=read_version(),
    description="Training-loop toolkit for Keras 3 on TensorFlow with exact resume",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    author="The trainkit maintainers",
    license_expression="MIT",
    license_files=["LICENSE"],
    url=REPOSITORY,
    project_urls={
        "Documentation": DOCUMENTATION,
        "Source": REPOSITORY,
        "Issues": f"{REPOSITORY}/issues",
        "Changelog": f"{REPOSITORY}/blob/main/CHANGELOG.md",
    },
    keywords=["keras", "tensorflow", "training loop", "resume", "checkpoint", "data generator"],
    classifiers=[
        "Development Status :: 3 - Alpha",
        "Intended Audience :: Developers",
        "Intended Audience :: Science/Research",
        "Operating System :: POSIX :: Linux",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Topic :: Software Development :: Libraries :: Python Modules",
        "Typing :: Typed",
    ],
    # 3.10 to 3.13: the versions TensorFlow 2.21 publishes wheels for. Only 3.11 is
    # installed and tested here (see README's Install section).
    python_requires=">=3.10",
    packages=find_packages(include=["trainkit", "trainkit.*"]),
    package_data={"trainkit": ["py.typed"]},
    install_requires=[
        "numpy>=1.26",
        "h5py>=3.10",
        "keras>=3.10",
        "scikit-learn>=1.4",
        "matplotlib>=3.8",
    ],
    extras_require={
        # TensorFlow is an extra: `tensorflow` and `tensorflow-cpu` install into the same
        # place, so users who have one must not be forced to get the other. No h5py upper
        # bound here or above: TensorFlow declares its own (2.21: h5py<3.15) and pip honours
        # it; a copy of it would outlive the TensorFlow release that lifts it and hold
        # users back on an older TensorFlow.
        "tensorflow": ["tensorflow>=2.16"],
        "cpu": ["tensorflow-cpu>=2.16"],
        "test": [
            # pytest-xdist 3.8 groups tests (--dist loadgroup) through Item._nodeid, which
            # pytest 9.2 no longer reads: the groups would be ignored and shared fixtures
            # (the kill -9 matrix, the notebooks) built on both processes.
            "pytest>=8,<9.2",
            "hypothesis>=6.100",
            "pytest-timeout",
            "pytest-xdist>=3.5",  # dev/test.sh runs the suite on 2 processes
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
            # The packaging test builds the sdist and the wheel without build isolation, so
            # the venv needs the build backend pyproject.toml asks for (a venv made by
            # Python 3.11 comes with setuptools 65), twine to check the metadata, and
            # readme-renderer's Markdown renderer, without which twine passes a README it
            # could not render.
            "build>=1.2",
            "setuptools>=77",
            "twine>=6.1",
            "readme-renderer[md]>=42",
        ],
    },
)
