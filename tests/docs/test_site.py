"""The documentation site builds from the working tree, warnings as errors, and is complete.

One build per module (`site`), from the same functions `bash dev/docs.sh` runs
(`dev/docs_site.py`), into temporary folders: the repository's `docs/` is only read.

The example pages are made from the session fixture `executed_notebooks`
(tests/conftest.py), so the notebooks run once per suite and their pages show what the
tests ran.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import sys
from html import unescape
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The public contract, as a user calls it: class -> the members the guides promise.
CONTRACT = {
    "trainkit.DataGenerator": [
        "get", "update_state", "on_epoch_end", "plan", "state_dict", "load_state_dict",
        "as_tf_dataset", "as_py_dataset", "close", "epoch", "set_num", "set_name",
        "set_nums_original", "set_nums_to_process", "batch_loaded", "batch_exhausted",
        "slice_idx", "slices_per_batch", "all_data_exhausted", "batch_size",
    ],
    "trainkit.Preprocessor": [
        "batch_loaded", "batch_exhausted", "slice_idx", "slices_per_batch", "rng",
        "on_batch_load", "process", "update_state", "reset_state", "on_epoch_end",
        "state_dict", "load_state_dict", "post_process",
    ],
    "trainkit.TrainGenerator": [
        "train", "evaluate", "predict", "checkpoint", "state_dict", "load_state_dict",
        "model", "datagen", "val_datagen", "epochs", "epoch", "iters_fit", "batches_fit",
        "iters_validated", "batches_validated", "times_validated", "history", "val_history",
        "key_metric_history", "best_key_metric", "stop_training",
    ],
    "trainkit.callbacks.Callback": [
        "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
        "on_train_batch_begin", "on_train_iter_end", "on_train_batch_end", "on_val_begin",
        "on_val_batch_begin", "on_val_batch_end", "on_val_end", "on_save", "on_load",
        "state_dict", "load_state_dict", "trainer",
    ],
    "trainkit.training.evaluation.prediction.Predictions": ["in_sample_order"],
    "trainkit.NonFiniteLossError": [],
    "trainkit.WorkerLostError": [],
    "trainkit.write_sets": [],
    "trainkit.write_store": [],
    "trainkit.introspection": ["gradient_norms", "weight_health", "layer_outputs"],
    "trainkit.testing": [
        "assert_resumes_identically", "check_preprocessor", "assert_resume_equivalent",
    ],
}  # fmt: skip

# Modules whose `__all__` is public: every name in it must have an entry.
EXPORTING_MODULES = {
    "trainkit": "trainkit/__init__.py",
    "trainkit.data": "trainkit/data/__init__.py",
    "trainkit.preprocessors": "trainkit/preprocessors.py",
    "trainkit.callbacks": "trainkit/callbacks/__init__.py",
    "trainkit.introspection": "trainkit/introspection.py",
    "trainkit.reports": "trainkit/reports/__init__.py",
    "trainkit.training": "trainkit/training/__init__.py",
}


def _load_dev_module(name: str):
    """`dev/<name>.py` as a module (dev/ is not a package)."""
    path = ROOT / "dev" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"trainkit_dev_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


docs_site = _load_dev_module("docs_site")
diagrams = _load_dev_module("diagrams")


@pytest.fixture(scope="module")
def notebooks(executed_notebooks) -> tuple[list[Path], bool]:
    """The executed notebooks the example pages are made of."""
    return docs_site.example_notebooks(executed_notebooks), True


@pytest.fixture(scope="module")
def site(tmp_path_factory, notebooks) -> Path:
    work = tmp_path_factory.mktemp("site")
    entries = docs_site.stage(work / "docs", notebooks[0])
    docs_site.build(work / "docs", work / "site", entries)
    return work / "site"


def _anchors(site: Path) -> set[str]:
    """Every object the API reference documents, by its dotted path."""
    ids = set()
    for page in (site / "api").rglob("*.html"):
        ids.update(re.findall(r'id="(trainkit[\w.]*)"', page.read_text(encoding="utf-8")))
    return ids


def _exported(relative: str) -> list[str]:
    """A module's `__all__`, read without importing it (TensorFlow stays unloaded)."""
    tree = ast.parse((ROOT / relative).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return list(ast.literal_eval(node.value))
    raise AssertionError(f"{relative} has no literal __all__")


def test_the_site_builds_from_the_working_tree_with_warnings_as_errors(site):
    assert (site / "index.html").is_file()
    pages = ("why", "how_it_works", "migrating", "performance", "distributed", "data")
    for page in pages:
        assert (site / f"{page}.html").is_file(), page


def test_a_page_with_a_broken_link_fails_the_build(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\nSee [the missing page](missing.md).\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text("site_name: t\nnav:\n  - index.md\n  - Examples: []\n")
    with pytest.raises(docs_site.SiteBuildError, match=r"missing\.md"):
        docs_site.build(docs, tmp_path / "site", [], config=config)


def test_every_name_of_the_public_contract_has_an_entry_in_the_api_reference(site):
    anchors = _anchors(site)
    missing = [
        path
        for owner, members in CONTRACT.items()
        for path in [owner, *(f"{owner}.{member}" for member in members)]
        if path not in anchors
    ]
    assert not missing, f"not in the API reference: {missing}"


@pytest.mark.parametrize("module", sorted(EXPORTING_MODULES))
def test_every_name_a_public_module_exports_has_an_entry_in_the_api_reference(site, module):
    anchors = _anchors(site)
    top = set(_exported(EXPORTING_MODULES["trainkit"]))
    missing = [
        name
        for name in _exported(EXPORTING_MODULES[module])
        if f"{module}.{name}" not in anchors and not (name in top and f"trainkit.{name}" in anchors)
    ]
    assert not missing, f"{module} exports names the API reference lacks: {missing}"


def test_docstring_doctests_render_as_code_in_the_api_reference(site):
    for page in sorted((site / "api").glob("*.html")):
        html = page.read_text(encoding="utf-8")
        assert "<blockquote>\n<blockquote>" not in html, f"{page.name}: >>> read as quotes"
    data = (site / "api" / "data.html").read_text(encoding="utf-8")
    code = " ".join(re.findall(r"<pre>.*?</pre>", data, flags=re.DOTALL))
    assert ">>> dg = DataGenerator(" in unescape(re.sub(r"<[^>]+>", "", code))


def test_the_api_reference_shows_no_internal_code_for_the_trainers_settings(site):
    html = unescape((site / "api" / "training.html").read_text(encoding="utf-8"))
    assert "reset_statefuls" in html and "_setting(" not in html


@pytest.mark.parametrize("name", sorted(diagrams.DIAGRAMS))
def test_each_committed_diagram_is_what_dev_diagrams_py_draws_and_is_on_a_page(site, name):
    committed = (ROOT / "docs" / "diagrams" / name).read_text(encoding="utf-8")
    assert committed == diagrams.DIAGRAMS[name](), f"run `python dev/diagrams.py` ({name})"
    pages = [p for p in site.rglob("*.html") if f"diagrams/{name}" in p.read_text("utf-8")]
    assert pages, f"docs/diagrams/{name} is on no page"


def test_the_site_loads_nothing_from_the_network(site):
    assert docs_site.external_assets(site) == []


def test_the_external_asset_check_finds_scripts_stylesheets_and_css_fonts(tmp_path):
    (tmp_path / "page.html").write_text(
        '<script src="https://cdn.example.org/mermaid.js"></script>'
        '<link rel="stylesheet" href="//fonts.example.org/css">'
        '<a href="https://example.org/">a link is not an asset</a>'
        '<script src="assets/local.js"></script>'
    )
    (tmp_path / "style.css").write_text(
        "@font-face { src: url('https://fonts.example.org/f.woff2') }"
    )
    assert docs_site.external_assets(tmp_path) == [
        "page.html: https://cdn.example.org/mermaid.js",
        "page.html: //fonts.example.org/css",
        "style.css: https://fonts.example.org/f.woff2",
    ]


def test_search_works_offline_from_a_built_in_index(site):
    index = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))
    text = " ".join(doc["text"] for doc in index["docs"])
    assert "slices_per_batch" in text and "batch_exhausted" in text


def test_the_performance_page_shows_the_recorded_benchmark_table(site):
    html = (site / "performance.html").read_text(encoding="utf-8")
    assert docs_site.BENCHMARKS_PLACEHOLDER not in html
    first_row = docs_site.recorded_benchmarks().splitlines()[-1].split("|")
    runner = first_row[2].strip().replace("`", "")
    assert "<table>" in html and runner in html, runner


def test_every_example_notebook_is_a_page_in_the_examples_section(site, notebooks):
    paths, _ = notebooks
    assert paths, "no example notebook examples/NN_name.ipynb was found"
    overview = (site / "examples" / "index.html").read_text(encoding="utf-8")
    for notebook in paths:
        page = site / "examples" / f"{notebook.stem}.html"
        assert page.is_file(), f"{notebook.name} has no page"
        assert f'href="{notebook.stem}.html"' in overview, f"{notebook.name} is not listed"
        html = page.read_text(encoding="utf-8")
        assert f"examples/{notebook.stem}.py" in html, f"{notebook.name}: its source is not named"


def test_the_example_pages_show_what_the_executed_notebooks_printed_and_drew(site, notebooks):
    paths, _ = notebooks
    for notebook in paths:
        page = site / "examples" / f"{notebook.stem}.html"
        html = page.read_text(encoding="utf-8")
        for image in re.findall(r'<img[^>]+src="([^"]+)"', html):
            assert (page.parent / image).resolve().is_file(), f"{notebook.name}: {image}"
        assert "\x1b[" not in html, f"{notebook.name}: terminal colour codes left in"
        printed = _first_printed_line(notebook)
        if printed is not None:
            text = unescape(re.sub(r"<[^>]+>", "", html))
            assert printed in text, f"{notebook.name}: its output {printed!r} is not on its page"


def _first_printed_line(path: Path) -> str | None:
    """The first line a code cell printed (no progress bars: those are rewritten)."""
    import nbformat

    for cell in nbformat.read(path, as_version=4).cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stdout":
                for line in output["text"].splitlines():
                    if line.strip() and "\r" not in line and "\x1b" not in line:
                        return line.strip()
    return None
