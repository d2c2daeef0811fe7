"""Find the Python snippets of a Markdown page and run them, in order, in one namespace.

The conventions are written down in `tests/docs/test_snippets.py`'s docstring; this module
implements them. `read_page(path)` returns the page's runnable pieces (visible ```python
blocks and hidden `<!-- snippet-setup -->` / `<!-- snippet-check -->` comments) and the
blocks it opts out of; `run_page(page, namespace, deadline_s)` executes them.
"""

from __future__ import annotations

import dataclasses
import difflib
import doctest
import io
import re
import signal
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

RUN_LANGUAGES = frozenset({"python", "py", "python3", "pycon"})
HIDDEN_KINDS = ("setup", "check")
DIRECTIVES = (*HIDDEN_KINDS, "skip")

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n]*)$")
_DIRECTIVE = re.compile(r"^[ \t]*<!--[ \t]*snippet-(?P<kind>[A-Za-z_-]*)(?P<rest>.*)$")


class SnippetSyntaxError(ValueError):
    """A page breaks the snippet conventions (an unknown directive, a skip without reason)."""


class SnippetFailure(AssertionError):
    """A snippet raised, a doctest's output differed, or a page ran past its deadline."""


class SnippetTimeout(BaseException):
    """Raised inside a snippet by the deadline's alarm (BaseException: `except Exception`
    in a snippet must not swallow it)."""


@dataclasses.dataclass(frozen=True)
class Snippet:
    """One piece of code to run: `line` is the page line of its first code line."""

    source: str
    line: int
    kind: str  # "block" (visible), "setup" or "check" (hidden in an HTML comment)

    @property
    def is_doctest(self) -> bool:
        return self.source.lstrip().startswith(">>>")


@dataclasses.dataclass(frozen=True)
class OptOut:
    """A visible ```python block that is not run, with the reason the page gives."""

    line: int
    reason: str


@dataclasses.dataclass(frozen=True)
class Page:
    path: Path
    snippets: tuple[Snippet, ...]
    opt_outs: tuple[OptOut, ...]

    @property
    def blocks_run(self) -> int:
        return sum(snippet.kind == "block" for snippet in self.snippets)


def read_page(path: Path) -> Page:
    """Parse `path` into its snippets and opt-outs.

    Raises:
        SnippetSyntaxError: naming the page and line, for an unknown `snippet-` directive,
            a hidden block left unclosed, a `snippet-skip` without a reason or not followed
            by a ```python block, or a fence left open.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    snippets: list[Snippet] = []
    opt_outs: list[OptOut] = []
    pending_skip: tuple[int, str] | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        directive = _DIRECTIVE.match(line)
        fence = _FENCE.match(line)
        if directive:
            kind, rest = directive["kind"], directive["rest"]
            _check_directive(path, index + 1, kind)
            if kind == "skip":
                pending_skip = (index + 1, _skip_reason(path, index + 1, rest))
                index += 1
                continue
            source, after = _hidden_body(path, lines, index, rest)
            snippets.append(Snippet(source, index + 2, kind))
            index = after
            continue
        if fence:
            language = fence["info"].strip().split(" ")[0].lower() if fence["info"] else ""
            source, end = _fenced_body(path, lines, index, fence)
            if pending_skip is not None:
                _check_skip_target(path, pending_skip[0], language, index + 1)
                opt_outs.append(OptOut(index + 1, pending_skip[1]))
                pending_skip = None
            elif language in RUN_LANGUAGES:
                snippets.append(Snippet(source, index + 2, "block"))
            index = end + 1
            continue
        if pending_skip is not None and line.strip():
            _check_skip_target(path, pending_skip[0], "", index + 1)
        index += 1
    if pending_skip is not None:
        _check_skip_target(path, pending_skip[0], "", len(lines))
    return Page(path, tuple(snippets), tuple(opt_outs))


def _check_directive(path: Path, line: int, kind: str) -> None:
    if kind in DIRECTIVES:
        return
    close = difflib.get_close_matches(kind, DIRECTIVES, n=1)
    hint = f" Did you mean `snippet-{close[0]}`?" if close else ""
    raise SnippetSyntaxError(
        f"{path}:{line}: unknown directive `snippet-{kind}`; the known ones are "
        f"{', '.join('snippet-' + name for name in DIRECTIVES)}.{hint}"
    )


def _skip_reason(path: Path, line: int, rest: str) -> str:
    reason = rest.strip()
    reason = reason.removesuffix("-->").strip().lstrip(":").strip()
    if not rest.strip().endswith("-->") or not reason:
        raise SnippetSyntaxError(
            f"{path}:{line}: `snippet-skip` needs a reason on the same line, e.g. "
            "`<!-- snippet-skip: needs two machines -->`. Received: "
            f"{(rest.strip() or '(nothing)')!r}"
        )
    return reason


def _check_skip_target(path: Path, line: int, language: str, target_line: int) -> None:
    if language not in RUN_LANGUAGES:
        raise SnippetSyntaxError(
            f"{path}:{line}: `snippet-skip` must come right before a ```python block "
            f"(blank lines allowed); line {target_line} is not one. Remove the directive "
            "or move it."
        )


def _hidden_body(path: Path, lines: list[str], index: int, rest: str) -> tuple[str, int]:
    """The code of a `<!-- snippet-setup` ... `-->` comment and the index after it."""
    if rest.strip():
        raise SnippetSyntaxError(
            f"{path}:{index + 1}: put the code of a hidden block on the lines after "
            f"`<!-- snippet-...`, and `-->` on a line of its own. Received: {rest.strip()!r}"
        )
    body: list[str] = []
    for end in range(index + 1, len(lines)):
        if lines[end].strip() == "-->":
            return _dedent(body), end + 1
        body.append(lines[end])
    raise SnippetSyntaxError(
        f"{path}:{index + 1}: hidden block never closed; end it with `-->` on a line of its own"
    )


def _fenced_body(path: Path, lines: list[str], index: int, fence: re.Match[str]) -> tuple[str, int]:
    marker = fence["fence"]
    closing = re.compile(rf"^[ \t]*{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$")
    body: list[str] = []
    for end in range(index + 1, len(lines)):
        if closing.match(lines[end]):
            return _dedent(body, len(fence["indent"])), end
        body.append(lines[end])
    raise SnippetSyntaxError(f"{path}:{index + 1}: code fence {marker} never closed")


def _dedent(body: list[str], indent: int | None = None) -> str:
    if indent is None:
        widths = [len(line) - len(line.lstrip()) for line in body if line.strip()]
        indent = min(widths, default=0)
    return "\n".join(line[indent:] if line[:indent].strip() == "" else line for line in body)


def run_page(page: Page, namespace: dict, deadline_s: float) -> None:
    """Run the page's snippets in order in `namespace`, in at most `deadline_s` CPU-seconds.

    The deadline counts the process' CPU time (every thread), not the wall clock, so how
    busy the machine is does not decide whether a page passes; a snippet that hangs
    without using the CPU is left to pytest-timeout.

    Raises:
        SnippetFailure: naming the page and the line of the snippet that failed, with its
            traceback (line numbers are the page's), or the doctest report, or the deadline.
    """
    __tracebackhide__ = True
    started = time.process_time()
    for snippet in page.snippets:
        with _deadline(deadline_s - (time.process_time() - started), page, snippet):
            if snippet.is_doctest:
                _run_doctest(page, snippet, namespace)
            else:
                _run_code(page, snippet, namespace)


def _run_code(page: Page, snippet: Snippet, namespace: dict) -> None:
    __tracebackhide__ = True
    # Padding with blank lines makes the traceback's line numbers the page's own.
    code = compile("\n" * (snippet.line - 1) + snippet.source, str(page.path), "exec")
    try:
        exec(code, namespace)
    except Exception as error:
        # The traceback from the snippet's own first frame down, without this function's.
        trace = traceback.format_exception(type(error), error, error.__traceback__.tb_next)
        raise SnippetFailure(
            f"{_where(page, snippet)} raised {type(error).__name__}: {error}\n\n" + "".join(trace)
        ) from None


def _run_doctest(page: Page, snippet: Snippet, namespace: dict) -> None:
    __tracebackhide__ = True
    parser = doctest.DocTestParser()
    test = parser.get_doctest(
        snippet.source, namespace, _where(page, snippet), str(page.path), snippet.line - 1
    )
    report = io.StringIO()
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    result = runner.run(test, out=report.write, clear_globs=False)
    namespace.update(test.globs)
    if result.failed:
        raise SnippetFailure(f"{_where(page, snippet)}: doctest failed\n{report.getvalue()}")


def _where(page: Page, snippet: Snippet) -> str:
    label = "snippet" if snippet.kind == "block" else f"hidden snippet-{snippet.kind}"
    return f"{page.path}:{snippet.line}: {label}"


class _deadline:
    """Interrupt the snippet when the page's CPU time is spent (SIGPROF, main thread only).

    SIGPROF leaves pytest-timeout's SIGALRM alone; an outer profiling timer, if any, is
    put back afterwards with its remaining time.
    """

    def __init__(self, seconds: float, page: Page, snippet: Snippet) -> None:
        self.seconds = seconds
        self.page, self.snippet = page, snippet
        self.active = hasattr(signal, "setitimer")

    def _fire(self, signum: int, frame: object) -> None:
        raise SnippetTimeout

    def __enter__(self) -> None:
        if self.seconds <= 0:
            raise self._failure()
        if not self.active:
            return
        try:
            self.old_handler = signal.signal(signal.SIGPROF, self._fire)
        except ValueError:  # not the main thread: no alarm, the time is still measured
            self.active = False
            return
        self.started = time.process_time()
        self.old_timer = signal.setitimer(signal.ITIMER_PROF, self.seconds)

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if self.active:
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.signal(signal.SIGPROF, self.old_handler)
            delay, interval = self.old_timer
            if delay:
                left = delay - (time.process_time() - self.started)
                signal.setitimer(signal.ITIMER_PROF, max(left, 0.001), interval)
        if isinstance(error, SnippetTimeout):
            raise self._failure() from None

    def _failure(self) -> SnippetFailure:
        return SnippetFailure(
            f"{_where(self.page, self.snippet)}: the page ran past its deadline (CPU-seconds); "
            "snippets must stay tiny (a few samples, one Dense layer, one epoch)"
        )


def iter_pages(root: Path) -> Iterator[Path]:
    """README.md and every Markdown page under docs/, in a stable order."""
    readme = root / "README.md"
    if readme.exists():
        yield readme
    yield from sorted((root / "docs").rglob("*.md"))
