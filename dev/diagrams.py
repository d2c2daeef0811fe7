"""Draw the documentation's diagrams as SVG files (no network, no drawing tool needed).

    python dev/diagrams.py          # rewrite docs/diagrams/*.svg
    python dev/diagrams.py --check  # exit 1 if a committed diagram differs from this script

Each diagram is a function returning SVG text; `tests/docs/test_site.py` checks that the
committed files are what this script draws.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from xml.sax.saxutils import escape

OUT = Path(__file__).resolve().parents[1] / "docs" / "diagrams"
FONT = "ui-sans-serif, system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"
MONO = "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace"
INK, MUTED, LINE = "#1f2937", "#4b5563", "#6b7280"

# (title, fill, owned state) per box of the data flow, left to right.
SHAPE_BOXES = [
    ("Source", "#f3f4f6", ["reads rows or sets", "holds no position"]),
    ("DataGenerator", "#dbeafe", ["epoch, batch index", "set_name, the plan",
                                  "all_data_exhausted"]),
    ("Preprocessor", "#dcfce7", ["slices_per_batch", "batch_exhausted", "its state_dict()"]),
    ("TrainGenerator", "#fef3c7", ["iters_fit, batches_fit", "histories, callbacks",
                                   "checkpoints, reports"]),
    ("Keras model", "#f3f4f6", ["weights, optimizer", "compiled step"]),
]  # fmt: skip
SHAPE_LABELS = ["read(rows)", "on_batch_load, process", "get() → (x, y)", "fit the slice"]


def _text(x: float, y: float, text: str, *, size: int = 13, weight: str = "normal",
          fill: str = INK, family: str = FONT, anchor: str = "middle") -> str:  # fmt: skip
    return (
        f'<text x="{x:g}" y="{y:g}" font-family="{family}" font-size="{size}" '
        f'font-weight="{weight}" fill="{fill}" text-anchor="{anchor}">{escape(text)}</text>'
    )


def _arrow(x1: float, y1: float, x2: float, y2: float, dashed: bool = False) -> str:
    dash = ' stroke-dasharray="5 4"' if dashed else ""
    return (
        f'<line x1="{x1:g}" y1="{y1:g}" x2="{x2:g}" y2="{y2:g}" stroke="{LINE}" '
        f'stroke-width="1.6" marker-end="url(#arrow)"{dash}/>'
    )


def _svg(width: int, height: int, parts: list[str], title: str) -> str:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">\n'
        f"<title>{escape(title)}</title>\n"
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        f'fill="{LINE}"/></marker></defs>\n'
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>\n'
    )
    return head + "\n".join(parts) + "\n</svg>\n"


def shape() -> str:
    """The data flow: who owns which state, and the calls between them."""
    box_w, box_h, gap, top, left = 150, 112, 46, 40, 16
    parts = []
    for i, (title, fill, state) in enumerate(SHAPE_BOXES):
        x = left + i * (box_w + gap)
        parts.append(
            f'<rect x="{x}" y="{top}" width="{box_w}" height="{box_h}" rx="8" '
            f'fill="{fill}" stroke="{LINE}" stroke-width="1.2"/>'
        )
        parts.append(_text(x + box_w / 2, top + 26, title, size=15, weight="bold"))
        for j, line in enumerate(state):
            parts.append(_text(x + box_w / 2, top + 52 + j * 19, line, size=12, fill=MUTED))
        if i < len(SHAPE_BOXES) - 1:
            y = top + box_h / 2
            parts.append(_arrow(x + box_w + 2, y, x + box_w + gap - 2, y))
            label_y = top + box_h + 24
            parts.append(_text(x + box_w + gap / 2, label_y, SHAPE_LABELS[i], size=11, family=MONO))
    # The loop's way back: the trainer advances the generator's cursor after each fit.
    trainer_x = left + 3 * (box_w + gap) + box_w / 2
    datagen_x = left + 1 * (box_w + gap) + box_w / 2
    back_y = top + box_h + 62
    parts.append(
        f'<path d="M{trainer_x:g},{top + box_h} L{trainer_x:g},{back_y} L{datagen_x:g},{back_y} '
        f'L{datagen_x:g},{top + box_h + 4}" fill="none" stroke="{LINE}" stroke-width="1.6" '
        'stroke-dasharray="5 4" marker-end="url(#arrow)"/>'
    )
    parts.append(
        _text(
            (trainer_x + datagen_x) / 2, back_y + 18,
            "update_state() after each slice · on_epoch_end() after the last batch",
            size=11, family=MONO,
        )
    )  # fmt: skip
    width = left * 2 + len(SHAPE_BOXES) * box_w + (len(SHAPE_BOXES) - 1) * gap
    parts.insert(0, _text(width / 2, 24, "One owner per piece of state", size=14, weight="bold"))
    return _svg(width, back_y + 34, parts, "trainkit's data flow and the state each part owns")


DIAGRAMS = {"shape.svg": shape}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    stale = []
    for name, draw in DIAGRAMS.items():
        path, text = OUT / name, draw()
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            OUT.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print(f"stale diagrams (run python dev/diagrams.py): {', '.join(stale)}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
