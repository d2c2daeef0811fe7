"""The docs' hook-order page lists the hooks in the order of the loop's hook table."""

from __future__ import annotations

import re
from pathlib import Path

from trainkit.training.loop_state import HOOK_ORDER

PAGE = Path(__file__).resolve().parents[2] / "docs" / "how_it_works.md"


def test_the_hook_order_page_follows_the_hook_table():
    text = PAGE.read_text(encoding="utf-8")
    section = text[text.index("## The hook order") :]
    block = section[section.index("```text") : section.index("```", section.index("```text") + 3)]
    # A callback's hooks, not the generator's `datagen.on_epoch_end()`.
    named = re.findall(r"(?<![.\w])(on_[a-z_]+)", block)
    assert list(dict.fromkeys(named)) == [hook for hook, _ in HOOK_ORDER]
