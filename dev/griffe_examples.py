"""A griffe extension for the API reference: trainkit's docstrings title their doctests
`Example:`, which Google style reads as an admonition (its `>>>` lines then render as
nested quotes); renamed `Examples:`, they render as code. Docstrings are not changed."""

from __future__ import annotations

import re
from typing import Any

import griffe

_SINGULAR = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class DoctestExamples(griffe.Extension):
    """Reads a docstring's `Example:` section as Google style's `Examples:`."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _SINGULAR.sub(r"\1Examples:", obj.docstring.value)
