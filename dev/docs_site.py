"""Build the documentation site: docs/ plus the executed example notebooks, through MkDocs.

    python dev/docs_site.py                 # execute the notebooks (small sizes), build into site/
    python dev/docs_site.py --full          # the notebooks at their full sizes
    python dev/docs_site.py --notebooks DIR # pages from notebooks already executed into DIR

The repository's `docs/` is never written to: it is copied into a staging folder, each
executed notebook `NN_name.ipynb` becomes a page `examples/NN_name.md` there (figures as
files beside it, added to the nav's "Examples" section in order), and MkDocs builds the
staging folder with `mkdocs.yml` at the repository root, warnings as errors.
`tests/docs/test_site.py` calls the same functions.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Sequence
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CONFIG = ROOT / "mkdocs.yml"
BENCHMARKS = ROOT / "benchmarks" / "README.md"
BENCHMARKS_MARKERS = ("<!-- run_all:begin -->", "<!-- run_all:end -->")
BENCHMARKS_PLACEHOLDER = "<!-- benchmarks-table -->"  # in docs/performance.md
EXAMPLES_SECTION = "Examples"  # the nav section the notebook pages are added to
NOTEBOOK_PATTERN = "[0-9][0-9]_*.ipynb"

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_EXTERNAL = re.compile(r"^(https?:)?//", re.IGNORECASE)
_CSS_URL = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])\s*((?:https?:)?//[^'")\s]+)""")


class SiteBuildError(RuntimeError):
    """MkDocs reported warnings (treated as errors) or failed to build the site."""


def notebook_title(notebook) -> str:
    """The first Markdown heading of a notebook (its page title in the nav)."""
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.startswith("#"):
                return line.lstrip("#").strip()
    raise ValueError(
        "A notebook page needs a title: its first Markdown cell should start with a heading "
        "such as `# Quick start`. Received: a notebook without a Markdown heading."
    )


def _clean_text(text: str) -> str:
    """Terminal output as a reader sees it: no colour codes, progress bars at their end."""
    text = _ANSI.sub("", text)
    lines = []
    for line in text.split("\n"):
        line = line.rstrip("\r").rsplit("\r", 1)[-1]
        while "\b" in line:
            line = re.sub(r"[^\b]\b", "", line, count=1).lstrip("\b")
        lines.append(line)
    return "\n".join(lines)


def _clean_outputs(notebook) -> None:
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                output["text"] = _clean_text(output["text"])
            elif output.get("output_type") == "error":
                output["traceback"] = [_clean_text(line) for line in output["traceback"]]


def notebook_page(notebook_path: Path, out_dir: Path) -> tuple[str, str]:
    """Write `out_dir/<stem>.md` and its figures from an executed notebook.

    Returns:
        `(title, file name)` for the nav.
    """
    import nbformat
    from nbconvert import MarkdownExporter

    notebook = nbformat.read(notebook_path, as_version=4)
    title = notebook_title(notebook)
    _clean_outputs(notebook)
    stem = notebook_path.stem
    body, resources = MarkdownExporter().from_notebook_node(
        notebook, resources={"output_files_dir": f"{stem}_files", "unique_key": stem}
    )
    for name, data in resources.get("outputs", {}).items():
        target = out_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    ran = any(cell.get("execution_count") for cell in notebook.cells)
    how = "executed when the site was built" if ran else "shown without running it"
    note = (
        f"*This page is the notebook `examples/{stem}.ipynb`, {how}; its source is the "
        f"script `examples/{stem}.py`.*\n\n"
    )
    body = _after_first_heading(body, note)
    (out_dir / f"{stem}.md").write_text(body, encoding="utf-8")
    return title, f"{stem}.md"


def _after_first_heading(body: str, note: str) -> str:
    lines = body.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith("# "):
            return "".join([*lines[: i + 1], "\n", note, *lines[i + 1 :]])
    return note + body


def stage(staging: Path, notebooks: Iterable[Path] = (), docs: Path = DOCS) -> list[dict]:
    """Copy `docs` into `staging` and add one page per executed notebook.

    Args:
        staging: a folder that does not exist yet (created).
        notebooks: executed `NN_name.ipynb` files, in nav order.
        docs: the Markdown sources.

    Returns:
        the nav entries of the notebook pages, `[{title: 'examples/NN_name.md'}, ...]`.
    """
    shutil.copytree(docs, staging)
    _insert_benchmarks(staging / "performance.md")
    examples = staging / "examples"
    examples.mkdir(exist_ok=True)
    entries = []
    listed = []
    for path in notebooks:
        title, name = notebook_page(Path(path), examples)
        listed.append((title, name))
        entries.append({_nav_title(title): f"examples/{name}"})
    _list_examples(examples / "index.md", listed)
    return entries


def _nav_title(title: str) -> str:
    """A heading as the nav shows it: plain text (no code marks), no leading number."""
    return re.sub(r"^\d+\.\s+", "", title.replace("`", ""))


def recorded_benchmarks(readme: Path = BENCHMARKS) -> str:
    """The table `benchmarks/run_all.py --write` recorded between its markers."""
    text = readme.read_text(encoding="utf-8")
    begin, end = BENCHMARKS_MARKERS
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise ValueError(
            f"{readme} must hold the benchmark table between {begin!r} and {end!r} (as "
            "`python benchmarks/run_all.py --write` writes it). Received: a file without them."
        )
    return text[start + len(begin) : stop].strip()


def _insert_benchmarks(page: Path) -> None:
    if page.exists() and BENCHMARKS_PLACEHOLDER in (text := page.read_text(encoding="utf-8")):
        page.write_text(text.replace(BENCHMARKS_PLACEHOLDER, recorded_benchmarks()), "utf-8")


def _list_examples(index: Path, pages: list[tuple[str, str]]) -> None:
    """Append the list of notebook pages `(title, file name)` to the staged overview."""
    lines = [f"* [{title}]({name})" for title, name in pages]
    text = "\n".join(lines) if lines else "*No example notebook was given to this build.*"
    with index.open("a", encoding="utf-8") as handle:
        handle.write("\n" + text + "\n")


def _with_examples(nav: list, entries: list[dict]) -> list:
    """`nav` with the notebook pages appended to its Examples section."""
    for item in nav:
        if isinstance(item, dict) and EXAMPLES_SECTION in item:
            item[EXAMPLES_SECTION] = [*item[EXAMPLES_SECTION], *entries]
            return nav
    raise ValueError(
        f"mkdocs.yml's nav needs a section {EXAMPLES_SECTION!r} for the notebook pages. "
        f"Received: nav sections {[next(iter(i)) for i in nav if isinstance(i, dict)]}."
    )


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def build(staging: Path, site_dir: Path, entries: list[dict], config: Path = CONFIG) -> None:
    """Build `staging` into `site_dir` with `config`; any MkDocs warning is an error.

    Raises:
        SiteBuildError: listing every warning MkDocs logged.
    """
    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    warnings = _Warnings()
    logger = logging.getLogger("mkdocs")
    logger.addHandler(warnings)
    try:
        settings = load_config(
            str(config), docs_dir=str(staging), site_dir=str(site_dir), strict=True
        )
        settings["nav"] = _with_examples(settings["nav"], entries)
        mkdocs_build(settings)
    except MkDocsException as error:
        raise SiteBuildError(_failure(warnings.messages, str(error))) from None
    finally:
        logger.removeHandler(warnings)
    if warnings.messages:
        raise SiteBuildError(_failure(warnings.messages, "warnings are errors"))


def _failure(messages: list[str], reason: str) -> str:
    listed = "".join(f"\n  {message}" for message in messages)
    return f"The documentation site did not build ({reason}):{listed}"


class _Assets(HTMLParser):
    """Collects the addresses of scripts, stylesheets, fonts and images a page loads."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "video", "audio"):
            self.loaded.append(values.get("src") or "")
        elif tag == "link" and (values.get("rel") or "") != "canonical":
            self.loaded.append(values.get("href") or "")
        elif "style" in values:
            self.loaded.extend(_CSS_URL.findall(values["style"] or ""))

    def handle_data(self, data: str) -> None:
        self.loaded.extend(_CSS_URL.findall(data))  # <style> blocks


def external_assets(site_dir: Path) -> list[str]:
    """Every script, stylesheet, font or image the built site would load from the network,
    as `'<file>: <address>'` (links a reader may follow are not assets)."""
    found = []
    for path in sorted(site_dir.rglob("*")):
        if path.suffix == ".html":
            parser = _Assets()
            parser.feed(path.read_text(encoding="utf-8"))
            addresses = [a for a in parser.loaded if _EXTERNAL.match(a)]
        elif path.suffix == ".css":
            addresses = _CSS_URL.findall(path.read_text(encoding="utf-8"))
        else:
            continue
        found.extend(f"{path.relative_to(site_dir)}: {address}" for address in addresses)
    return found


def example_notebooks(examples: Path = ROOT / "examples") -> list[Path]:
    """The example notebooks `examples/NN_name.ipynb`, in order."""
    return sorted(examples.glob(NOTEBOOK_PATTERN))


def execute_examples(out_dir: Path, *, small: bool) -> list[Path]:
    """Execute every example notebook into `out_dir` (dev/notebooks.py's `execute`)."""
    sys.path.insert(0, str(Path(__file__).parent))
    import notebooks

    paths = example_notebooks()
    notebooks.execute(paths, out_dir, small=small)
    return [out_dir / path.name for path in paths]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site-dir", type=Path, default=ROOT / "site")
    parser.add_argument("--notebooks", type=Path, help="a folder of executed NN_*.ipynb")
    parser.add_argument("--full", action="store_true", help="notebooks at their full sizes")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="trainkit-site-") as work:
        if args.notebooks:
            executed = example_notebooks(args.notebooks)
        else:
            executed = execute_examples(Path(work) / "executed", small=not args.full)
        staging = Path(work) / "docs"
        entries = stage(staging, executed)
        try:
            build(staging, args.site_dir, entries)
        except SiteBuildError as error:
            print(error, file=sys.stderr)
            return 1
    external = external_assets(args.site_dir)
    if external:
        print("The site loads assets from the network:", *external, sep="\n  ", file=sys.stderr)
        return 1
    print(
        f"Built {args.site_dir} ({len(executed)} example notebooks): open index.html, or serve "
        f"it for search: python -m http.server -d {args.site_dir}"
    )
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)-7s - %(message)s")
    logging.getLogger("mkdocs").setLevel(logging.INFO)  # its progress, not the kernels' chatter
    sys.exit(main())
