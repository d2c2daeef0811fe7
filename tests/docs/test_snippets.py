"""Every ```python snippet in README.md and docs/**/*.md runs, and is true.

One test per page (new pages are picked up by themselves): the page's snippets run in the
order they appear, in one namespace of their own, in a fresh temporary working directory,
under a deadline of `PAGE_DEADLINE_S` CPU-seconds (CPU time, so that a busy machine does not
fail a page; pytest-timeout catches a hang). A failure names the page and the line, and the
traceback's line numbers are the page's.

Conventions for writing pages:

* Blocks fenced as ```python (or ```py, ```pycon) are run. Every other block (```bash,
  ```text, output, a directory layout, a bare ```, an indented block) is not: give code
  that is not Python, or that is not code, another language tag.
* A ```python block whose first line starts with `>>>` is a doctest: each statement runs in
  the page's namespace and its printed output must match the block (`...` matches
  anything, whitespace differences are ignored). Use it where the page shows a value.
* A page prepares the names its snippets use (a tiny model, arrays `x`, `y`) in a setup
  block hidden from readers in an HTML comment, placed before the snippet that needs it::

      <!-- snippet-setup
      import numpy as np
      x = np.zeros((8, 4), "float32")
      -->

  A `<!-- snippet-check ... -->` comment, the same way, holds hidden assertions that make
  a page's claims true (`assert dg.set_name == "1+2"`); put it after the snippet. The code
  of a hidden block starts on the line after `<!-- snippet-...` and ends at a line holding
  only `-->`. Hidden blocks run in page order with the visible ones.
* A ```python block that truly cannot run here (code for several machines) is opted out
  by the line right before it (blank lines allowed), with a reason:
  `<!-- snippet-skip: needs two machines -->`. A skip without a reason, an unknown
  `snippet-...` directive and a skip that is not followed by a ```python block are errors.
  Opt-outs are counted and listed at the end of the pytest run ("docs snippets: ...");
  keep them rare.
* Snippets are tiny (a few samples, one Dense layer, one epoch): all pages together run in
  well under a minute. Files a page writes go to its temporary directory (`logs_dir="logs"`
  is fine). Keras' global state is cleared before each page; `sys.path` is put back after
  it and the modules it imported from its directory are forgotten (a page may write a
  module file, e.g. a preprocessor that worker processes import by name).
"""

from __future__ import annotations

import contextlib
import os
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs.markdown_snippets import (
    SnippetFailure,
    SnippetSyntaxError,
    iter_pages,
    read_page,
    run_page,
)

ROOT = Path(__file__).resolve().parents[2]
PAGE_DEADLINE_S = 25.0
PAGES = [path.relative_to(ROOT) for path in iter_pages(ROOT)]


@pytest.fixture(scope="module")
def imported() -> None:
    """Import TensorFlow and trainkit once, outside any page's deadline."""
    import keras  # noqa: F401

    import trainkit  # noqa: F401


@contextlib.contextmanager
def _sys_path_kept(folder: Path) -> Iterator[None]:
    """Undo a page's `sys.path` changes and forget the modules it imported from `folder`."""
    saved = list(sys.path)
    try:
        yield
    finally:
        sys.path[:] = saved
        for name, module in list(sys.modules.items()):
            if str(getattr(module, "__file__", None) or "").startswith(str(folder)):
                del sys.modules[name]


def _clear_global_state() -> None:
    if "keras" in sys.modules:
        sys.modules["keras"].utils.clear_session()
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.mark.parametrize("relative", PAGES, ids=[path.as_posix() for path in PAGES])
def test_the_snippets_of_a_page_run(relative, imported, tmp_path, monkeypatch, record_property):
    page = read_page(ROOT / relative)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__snippets__"}
    if page.snippets:  # layer names ('dense', not 'dense_7') as in a fresh process
        _clear_global_state()
    started, cpu_started = time.monotonic(), time.process_time()
    with _sys_path_kept(tmp_path):
        run_page(page, namespace, PAGE_DEADLINE_S)
    record_property("snippets_run", page.blocks_run)
    record_property("snippets_seconds", round(time.monotonic() - started, 2))
    # CPU seconds (all threads): what the page costs whatever else loads the machine.
    record_property("snippets_cpu_seconds", round(time.process_time() - cpu_started, 2))
    record_property(
        "snippets_opted_out", [f"{relative}:{out.line} ({out.reason})" for out in page.opt_outs]
    )


def test_the_pages_are_found():
    names = {str(path) for path in PAGES}
    assert {"README.md", os.path.join("docs", "training.md")} <= names
    assert all(str(path).endswith(".md") for path in PAGES)


# The conventions themselves, on small pages written here.


def _page(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "page.md"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_python_blocks_and_hidden_blocks_run_in_page_order_and_others_do_not(tmp_path):
    path = _page(
        tmp_path,
        """\
        # A page
        <!-- snippet-setup
        order = ["setup"]
        -->
        ```python
        order.append("block")
        ```
        ```bash
        order.append("bash")
        ```
        ```text
        order.append("text")
        ```
          ```py
          order.append("indented")
          ```
        <!-- snippet-check
        assert order == ["setup", "block", "indented"], order
        -->
        """,
    )
    page = read_page(path)
    namespace: dict = {}
    run_page(page, namespace, 5.0)
    assert namespace["order"] == ["setup", "block", "indented"]
    assert page.blocks_run == 2
    assert [snippet.kind for snippet in page.snippets] == ["setup", "block", "block", "check"]


def test_a_failing_snippet_names_the_page_and_its_own_line(tmp_path):
    path = _page(
        tmp_path,
        """\
        Intro.

        ```python
        a = 1
        b = a + missing
        ```
        """,
    )
    with pytest.raises(SnippetFailure, match=r"page\.md:4: snippet raised NameError") as info:
        run_page(read_page(path), {}, 5.0)
    assert f'File "{path}", line 5' in str(info.value)


def test_a_false_hidden_check_fails(tmp_path):
    path = _page(
        tmp_path,
        """\
        ```python
        total = 2 + 2
        ```
        <!-- snippet-check
        assert total == 5
        -->
        """,
    )
    with pytest.raises(SnippetFailure, match=r"page\.md:5: hidden snippet-check raised"):
        run_page(read_page(path), {}, 5.0)


def test_a_doctest_block_checks_its_output_and_shares_the_namespace(tmp_path):
    good = _page(
        tmp_path,
        """\
        ```python
        >>> values = [1, 2, 3]
        >>> sum(values)
        6
        ```
        ```python
        assert values == [1, 2, 3]
        ```
        ```pycon
        >>> len(values)
        3
        ```
        """,
    )
    run_page(read_page(good), {}, 5.0)
    bad = _page(tmp_path, "```python\n>>> 1 + 1\n3\n```\n")
    with pytest.raises(SnippetFailure, match=r"doctest failed(.|\n)*Expected:\s+3"):
        run_page(read_page(bad), {}, 5.0)


def test_an_opt_out_is_not_run_and_is_counted_with_its_reason(tmp_path):
    path = _page(
        tmp_path,
        """\
        <!-- snippet-skip: needs two machines -->

        ```python
        raise SystemExit("must not run")
        ```
        """,
    )
    page = read_page(path)
    run_page(page, {}, 5.0)
    assert page.blocks_run == 0
    assert [(out.line, out.reason) for out in page.opt_outs] == [(3, "needs two machines")]


@pytest.mark.parametrize(
    "text, message",
    [
        ("<!-- snippet-skip -->\n```python\npass\n```\n", "needs a reason"),
        ("<!-- snippet-skip: -->\n```python\npass\n```\n", "needs a reason"),
        ("<!-- snippet-skip: why -->\n\nprose\n```python\npass\n```\n", "right before"),
        ("<!-- snippet-skip: why -->\n```bash\nls\n```\n", "right before"),
        ("<!-- snippet-setpu\nx = 1\n-->\n", "Did you mean `snippet-setup`"),
        ("<!-- snippet-setup\nx = 1\n", "never closed"),
        ("<!-- snippet-setup x = 1 -->\n", "on the lines after"),
        ("```python\nx = 1\n", "never closed"),
    ],
)
def test_a_page_breaking_the_conventions_is_refused_naming_the_line(tmp_path, text, message):
    path = _page(tmp_path, text)
    with pytest.raises(SnippetSyntaxError, match=message) as info:
        read_page(path)
    assert str(path) + ":1" in str(info.value)


def test_a_page_past_its_deadline_fails_naming_the_snippet(tmp_path):
    path = _page(tmp_path, "```python\nwhile True:\n    pass\n```\n")
    started = time.monotonic()
    with pytest.raises(SnippetFailure, match=r"page\.md:2: snippet: the page ran past"):
        run_page(read_page(path), {}, 0.3)
    assert time.monotonic() - started < 10.0  # 0.3 CPU-seconds, however busy the machine


def test_a_page_s_sys_path_and_the_modules_it_wrote_are_forgotten_after_it(tmp_path):
    saved = list(sys.path)
    (tmp_path / "page_module_for_the_test.py").write_text("VALUE = 1\n", encoding="utf-8")
    with _sys_path_kept(tmp_path):
        sys.path.insert(0, str(tmp_path))
        import page_module_for_the_test  # noqa: F401

        assert "page_module_for_the_test" in sys.modules
    assert sys.path == saved and "page_module_for_the_test" not in sys.modules
