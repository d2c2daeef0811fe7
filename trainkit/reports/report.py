"""The run report: configuration and state at a glance, as text and as a PNG."""

from __future__ import annotations

import textwrap
from typing import Any

from matplotlib.figure import Figure  # no pyplot: never touches the user's backend

from trainkit.checkpoints.atomic import atomic_file, write_text
from trainkit.reports.history_plot import fit_width

_WIDTH = 48  # characters per value column in the PNG
_KEY_WIDTH = 30  # a longer key gets a line of its own, its value indented below it
_TITLE_CHARS = 110  # per line of the PNG's title; a longer run name wraps


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)) and len(value) > 12:
        shown = ", ".join(str(v) for v in value[:12])
        return f"[{shown}, ... ({len(value)} in all)]"
    return str(value)


def report_text(title: str, sections: dict[str, dict[str, Any]]) -> str:
    """The report as plain text: one block per section, `key : value` lines."""
    lines = [title, "=" * len(title), ""]
    for section, items in sections.items():
        lines += [section, "-" * len(section)]
        width = max((len(k) for k in items), default=0)
        lines += [f"{key:<{width}} : {_format_value(value)}" for key, value in items.items()]
        lines.append("")
    return "\n".join(lines)


def _section_lines(section: str, items: dict[str, Any]) -> list[tuple[str, str]]:
    """(style, text) lines of one section, values wrapped to the PNG's column width.

    Keys are padded to the longest key up to `_KEY_WIDTH`; a longer key stands on a line
    of its own, so no line runs into the next column.
    """
    out = [("head", section)]
    width = min(max((len(k) for k in items), default=0), _KEY_WIDTH)
    for key, value in items.items():
        wrapped = textwrap.wrap(_format_value(value), _WIDTH) or [""]
        if len(key) > width:  # the key on its own line(s), its value indented below
            out += [("body", line) for line in textwrap.wrap(key, width + 2 + _WIDTH)]
        else:
            out.append(("body", f"{key:<{width}}  {wrapped.pop(0)}"))
        out += [("body", f"{'':<{width}}  {more}") for more in wrapped]
    out.append(("gap", ""))
    return out


def render_report(
    path_stem: str, title: str, sections: dict[str, dict[str, Any]]
) -> tuple[str, str]:
    """Write `<path_stem>.txt` and `<path_stem>.png`; return both paths.

    Args:
        path_stem: path without extension, e.g. `<run folder>/report`.
        title: the heading (the run name).
        sections: ordered `{section: {key: value}}`, e.g. Model, Trainer, Data, Best.

    Raises:
        CheckpointWriteError: a file could not be written; it is as it was.
    """
    text_path, png_path = f"{path_stem}.txt", f"{path_stem}.png"
    write_text(text_path, report_text(title, sections))

    blocks = [_section_lines(name, items) for name, items in sections.items()]
    half = (sum(len(b) for b in blocks) + 1) // 2
    columns: list[list[tuple[str, str]]] = [[], []]
    for block in blocks:  # fill the left column first, keeping sections whole
        target = (
            columns[0] if len(columns[0]) + len(block) <= half or not columns[0] else columns[1]
        )
        target.extend(block)
    rows = max(len(columns[0]), len(columns[1]), 1)
    title_lines = textwrap.wrap(title, _TITLE_CHARS) or [""]
    head = 0.6 + 0.22 * (len(title_lines) - 1)  # inches above the columns
    height = head + 0.22 * rows
    fig = Figure(figsize=(13, height))
    heading = fig.text(
        0.01, 1 - head / 2 / height, "\n".join(title_lines), fontsize=13, weight="bold", va="center"
    )
    fit_width(fig, heading)
    for c, column in enumerate(columns):
        for r, (style, line) in enumerate(column):
            y = 1 - (head + 0.22 * (r + 0.5)) / height
            fig.text(
                0.01 + 0.5 * c,
                y,
                line,
                family="monospace",
                fontsize=10.5 if style == "head" else 9,
                weight="bold" if style == "head" else "normal",
                color="#1f4e79" if style == "head" else "black",
                va="center",
            )
    with atomic_file(png_path, "wb") as file:
        fig.savefig(file, format="png", dpi=100, pil_kwargs={"compress_level": 1})
    return text_path, png_path
