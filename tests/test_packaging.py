"""The distributions a user installs or unpacks: what the wheel and the sdist hold.

The wheel and the sdist are built once for the module, with `python -m build --no-isolation`
(the venv's setuptools, no network), from a copy of the source tree so that nothing is
written into the checkout. `build` makes the sdist, then the wheel from the unpacked sdist,
so a wheel here also shows that the sdist is complete enough to build from.
"""

from __future__ import annotations

import email.parser
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pytest

import trainkit

ROOT = Path(__file__).resolve().parents[1]

# The name users install (`pip install keras-trainkit`; the registry's `trainkit` is another
# project) and its normalized form in file names (PEP 427, PEP 625); the import name stays
# `trainkit`.
DISTRIBUTION = "keras-trainkit"
FILE_STEM = "keras_trainkit"

# What the sdist carries besides the package: enough to run the tests and read the docs.
SDIST_FOLDERS = ("tests", "docs", "examples", "benchmarks", "dev")
SDIST_FILES = ("README.md", "LICENSE", "CHANGELOG.md", "conftest.py", "mkdocs.yml")
SDIST_BUILD_FILES = ("setup.py", "pyproject.toml", "MANIFEST.in")

# Never copied into the build, never in a distribution (MANIFEST.in prunes the same names).
CACHE_NAMES = {
    "__pycache__",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    ".ipynb_checkpoints",
    "logs",
}
# Left out of the copy at the top of the tree only: the checkout's own machinery and outputs.
TOP_LEVEL_SKIPPED = {".git", ".venv", "build", "dist", "site"}


@dataclass(frozen=True)
class Built:
    source: Path  # the copy of the source tree the distributions were built from
    wheel: Path
    sdist: Path


def _ignore(root: Path):
    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = {name for name in names if name in CACHE_NAMES or name.endswith(".egg-info")}
        if Path(folder) == root:
            skipped |= TOP_LEVEL_SKIPPED & set(names)
        return skipped

    return ignore


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=_ignore(ROOT), symlinks=True)
    out = work / "dist"
    command = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (
        f"`{' '.join(command)}` failed (exit {done.returncode}). If it names an unmet "
        "dependency, install the test extra: pip install -e '.[test]'.\n"
        f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return Built(source=source, wheel=wheel, sdist=sdist)


def wheel_names(built: Built) -> list[str]:
    with zipfile.ZipFile(built.wheel) as wheel:
        return wheel.namelist()


def wheel_metadata(built: Built) -> Message:
    dist_info = f"{FILE_STEM}-{trainkit.__version__}.dist-info"
    with zipfile.ZipFile(built.wheel) as wheel:
        text = wheel.read(f"{dist_info}/METADATA").decode("utf-8")
    return email.parser.Parser().parsestr(text)


def sdist_names(built: Built) -> set[str]:
    """The sdist's members, relative to its top folder `keras_trainkit-<version>/`."""
    top = f"{FILE_STEM}-{trainkit.__version__}/"
    with tarfile.open(built.sdist) as sdist:
        names = [member.name for member in sdist.getmembers() if member.isfile()]
    assert all(name.startswith(top) for name in names), f"members outside {top}: {names[:5]}"
    return {name[len(top) :] for name in names}


def files_under(folder: Path, relative_to: Path) -> set[str]:
    return {
        path.relative_to(relative_to).as_posix() for path in folder.rglob("*") if path.is_file()
    }


def test_the_version_has_one_source_and_names_both_distributions(built):
    version = trainkit.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?(?:\.dev\d+)?", version), version
    assert built.wheel.name == f"{FILE_STEM}-{version}-py3-none-any.whl"
    assert built.sdist.name == f"{FILE_STEM}-{version}.tar.gz"
    assert wheel_metadata(built)["Version"] == version
    setup_py = (ROOT / "setup.py").read_text(encoding="utf-8")
    assert version not in setup_py, "setup.py repeats the version; it reads trainkit.__version__"


def test_the_wheel_holds_every_module_of_the_package_and_py_typed_but_no_tests(built):
    names = wheel_names(built)
    dist_info = f"{FILE_STEM}-{trainkit.__version__}.dist-info/"
    outside = [name for name in names if not name.startswith(("trainkit/", dist_info))]
    assert outside == [], "the wheel installs only the trainkit package"
    assert "trainkit/py.typed" in names
    modules = {
        path
        for path in files_under(built.source / "trainkit", built.source)
        if path.endswith(".py")
    }
    assert modules - set(names) == set(), "modules of trainkit/ missing from the wheel"
    assert not [name for name in names if "/tests/" in name or name.endswith((".pyc", ".pyo"))]


def test_the_wheel_metadata_states_license_classifiers_urls_and_requirements(built):
    metadata = wheel_metadata(built)
    assert metadata["Name"] == DISTRIBUTION, "the registry's `trainkit` is another project"
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    dist_info = f"{FILE_STEM}-{trainkit.__version__}.dist-info"
    with zipfile.ZipFile(built.wheel) as wheel:
        license_text = wheel.read(f"{dist_info}/licenses/LICENSE").decode("utf-8")
    assert license_text.startswith("MIT License")
    assert license_text == (ROOT / "LICENSE").read_text(encoding="utf-8")

    urls = dict(entry.split(", ", 1) for entry in metadata.get_all("Project-URL"))
    assert {"Documentation", "Source", "Issues", "Changelog"} <= set(urls)
    assert all(url.startswith("https://") for url in urls.values()), urls

    classifiers = metadata.get_all("Classifier")
    assert "Typing :: Typed" in classifiers
    assert not [c for c in classifiers if c.startswith("License ::")], (
        "License classifiers are superseded by License-Expression (PEP 639)"
    )
    minimum = re.fullmatch(r">=3\.(\d+)", metadata["Requires-Python"])
    assert minimum, metadata["Requires-Python"]
    minors = sorted(
        int(c.rsplit(".", 1)[1]) for c in classifiers if re.fullmatch(r".*Python :: 3\.\d+", c)
    )
    assert minors[0] == int(minimum[1]), "the oldest classifier is the Requires-Python minimum"
    assert minors == list(range(minors[0], minors[-1] + 1)), "no gap in the Python classifiers"
    assert sys.version_info.minor in minors, "the Python running these tests is not listed"


def test_core_requirements_leave_tensorflow_and_its_pins_to_the_extras(built):
    metadata = wheel_metadata(built)
    requirements = metadata.get_all("Requires-Dist")
    core = [r for r in requirements if ";" not in r]
    assert {re.split(r"[<>=!~\[ ]", r, maxsplit=1)[0] for r in core} == {
        "numpy",
        "h5py",
        "keras",
        "scikit-learn",
        "matplotlib",
    }
    assert not [r for r in core if "<" in r], "an upper bound in the core requirements"
    assert set(metadata.get_all("Provides-Extra")) >= {"tensorflow", "cpu", "test"}
    assert 'tensorflow>=2.16; extra == "tensorflow"' in requirements
    assert 'tensorflow-cpu>=2.16; extra == "cpu"' in requirements


def test_the_sdist_carries_the_tests_docs_examples_benchmarks_and_dev_commands(built):
    names = sdist_names(built)
    for folder in SDIST_FOLDERS:
        present = files_under(built.source / folder, built.source)
        assert present, f"{folder}/ is empty in the source tree"
        assert present - names == set(), f"files of {folder}/ missing from the sdist"
    top_level = [name for name in SDIST_FILES + SDIST_BUILD_FILES if (ROOT / name).exists()]
    assert set(top_level) - names == set()
    assert {"README.md", "LICENSE", "CHANGELOG.md", "conftest.py"} <= set(top_level)
    assert "trainkit/py.typed" in names
    cached = [n for n in names if set(n.split("/")) & CACHE_NAMES or n.endswith(".pyc")]
    assert cached == []


def test_the_readme_is_the_long_description_and_renders(built):
    try:
        import readme_renderer.markdown
    except ImportError:  # pragma: no cover - the test extra brings it
        pytest.fail("readme-renderer is missing: install the test extra, pip install -e '.[test]'")
    metadata = wheel_metadata(built)
    assert metadata["Description-Content-Type"] == "text/markdown"
    description = metadata.get_payload()
    assert description.strip() == (ROOT / "README.md").read_text(encoding="utf-8").strip()
    # twine passes a Markdown README that it could not render when readme-renderer's `md`
    # extra is missing, so render it here too.
    html = readme_renderer.markdown.render(description)
    assert html is not None and "<h1" in html, "README.md does not render as Markdown"
    command = [sys.executable, "-m", "twine", "check", "--strict", str(built.wheel)]
    done = subprocess.run([*command, str(built.sdist)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_unpacked_wheel_imports_from_outside_the_checkout(built, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(built.wheel) as wheel:
        wheel.extractall(site)
    code = (
        "import json, sys, numpy as np, trainkit;"
        "dg = trainkit.DataGenerator(data=np.arange(12.0).reshape(6, 2), batch_size=3);"
        "x, _ = dg.get();"
        "print(json.dumps([trainkit.__file__, trainkit.__version__, list(x.shape),"
        " sorted(m for m in ('keras', 'tensorflow') if m in sys.modules)]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": os.environ.get("PATH", "")},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    location, version, shape, heavy = json.loads(done.stdout.splitlines()[-1])
    assert Path(location).is_relative_to(site), "trainkit was imported from somewhere else"
    assert version == trainkit.__version__
    assert shape == [3, 2]
    assert heavy == [], "importing the data side imported Keras or TensorFlow"


def _documents() -> list[Path]:
    """Every page a user reads install lines in: the README, the docs and the examples."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    for pattern in ("*.md", "*.py", "*.ipynb"):
        pages += sorted((ROOT / "examples").rglob(pattern))
    return pages


def _pip_install_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.search(r"\bpip install\b", line)]


def test_every_install_line_names_the_distribution_keras_trainkit(built):
    # The registry's `trainkit` is an unrelated project: an install line that names it (or
    # its extras, `trainkit[cpu]`) installs someone else's code.
    wrong = re.compile(r"(?<![\w-])trainkit\[|pip install\s+[\"']?trainkit(?![\w-])")
    found: list[str] = []
    offenders: list[str] = []
    for page in _documents():
        for line in _pip_install_lines(page.read_text(encoding="utf-8")):
            found.append(line)
            # Prose that warns against the wrong name says so ("does not install this one").
            if wrong.search(line) and "does not install" not in line:
                offenders.append(f"{page.relative_to(ROOT)}: {line.strip()}")
    assert offenders == [], "install lines naming the registry's `trainkit`:\n" + "\n".join(
        offenders
    )
    named = [line for line in found if DISTRIBUTION in line]
    assert named, "no install line names keras-trainkit"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert built.wheel.name in readme, "README.md names a wheel file that the build does not make"
