"""Find the set files of a directory and name each set by the number in its file name.

The set number is the digit run that varies across the file names: `batch32_0.h5 …
batch32_7.h5` are sets `'0'`…`'7'` (32 is the same in every name), `data_007.npy` is set
`'007'`. Sets are ordered by the integer value of their number (`data2` before `data10`).
"""

from __future__ import annotations

import errno
import os
import re
import warnings
from dataclasses import dataclass

from trainkit.data.sources.formats import FORMATS

_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True)
class SetFile:
    set_num: str
    path: str


_LABELS_NAME = re.compile(r"^labels?(?![a-z])", re.IGNORECASE)


def is_labels_name(name: str) -> bool:
    """Files named `labels…`/`label…` are labels, never data (`labels.h5`, `label_3.npy`).

    A name that merely starts with the letters (`labeled_images_0.npy`) is data.
    """
    return _LABELS_NAME.match(name) is not None


def list_set_files(
    directory: str,
    *,
    arg: str,
    any_extension: bool,
    exclude: str | None = None,
    skip_labels: bool = True,
    names: list[str] | None = None,
) -> list[SetFile]:
    """The numbered files of `directory` in numeric order.

    Args:
        directory: the folder to list.
        arg: the argument name used in errors (`data_path`, `labels_path`).
        any_extension: accept every extension (a `loader=` reads the files).
        exclude: a path to leave out (the labels file when it lives in the data folder).
        skip_labels: leave out `label*` files (a data folder's labels file).
        names: the `candidate_names()` of the folder, when the caller already has them.
    """
    if names is None:
        names = candidate_names(
            directory,
            arg=arg,
            any_extension=any_extension,
            exclude=exclude,
            skip_labels=skip_labels,
        )
    extensions = sorted({_family(name) for name in names})
    if len(extensions) > 1:
        raise ValueError(
            f"`{arg}`={directory!r} mixes file types {extensions}: a directory source holds "
            "one set per file, all of one format. Move the other files out. "
            f"Received: {arg}={directory!r}"
        )
    numbers = set_numbers(
        [os.path.splitext(name)[0] for name in names], directory=directory, arg=arg
    )
    files = [SetFile(num, os.path.join(directory, name)) for num, name in zip(numbers, names)]
    return sorted(files, key=lambda f: int(f.set_num))


def candidate_names(
    directory: str,
    *,
    arg: str,
    any_extension: bool,
    exclude: str | None = None,
    skip_labels: bool = True,
) -> list[str]:
    """The file names of `directory` that may be sets (sorted by name).

    Links to missing files and link loops are skipped with a warning naming them.
    """
    excluded = os.path.realpath(exclude) if exclude else None
    entries = _list(directory, arg)
    names = [
        name
        for name in entries
        if not name.startswith(".")
        and not (skip_labels and is_labels_name(name))
        and (any_extension or os.path.splitext(name)[1].lower() in FORMATS)
    ]
    _warn_broken_links(directory, [name for name in names if _is_broken_link(directory, name)])
    names = [
        name
        for name in names
        if os.path.isfile(os.path.join(directory, name))
        and os.path.realpath(os.path.join(directory, name)) != excluded
    ]
    if not names:
        found = f"It holds {entries[:8]}" if entries else "It is empty"
        supported = "any file (a loader is given)" if any_extension else ", ".join(sorted(FORMATS))
        raise ValueError(
            f"`{arg}`={directory!r} holds no set files. {found}; expected numbered files "
            f"of one of: {supported} (labels* files are skipped). Received: {arg}={directory!r}"
        )
    return names


def _list(directory: str, arg: str) -> list[str]:
    try:
        return sorted(os.listdir(directory))
    except PermissionError as error:
        raise PermissionError(
            f"`{arg}`={directory!r} cannot be listed: permission denied. Give the user running "
            f"trainkit read access to the folder (e.g. `chmod a+rx {directory}`). "
            f"Received: {arg}={directory!r}"
        ) from error


def _is_broken_link(directory: str, name: str) -> bool:
    """A symbolic link whose target is missing, or that loops."""
    path = os.path.join(directory, name)
    return os.path.islink(path) and not os.path.exists(path)


def _link_problem(path: str) -> str:
    try:
        os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "a link loop"
    return f"its target {os.readlink(path)!r} is missing"


def _warn_broken_links(directory: str, names: list[str]) -> None:
    if not names:
        return
    described = [f"{name!r} ({_link_problem(os.path.join(directory, name))})" for name in names[:8]]
    warnings.warn(
        f"{directory!r}: skipping {len(names)} symbolic link(s) that lead to no file: "
        f"{', '.join(described)}. Their sets are not served; fix or remove the links.",
        stacklevel=2,
    )


def _family(name: str) -> str:
    ext = os.path.splitext(name)[1].lower()
    return ".h5" if ext == ".hdf5" else ext


def set_numbers(stems: list[str], *, directory: str, arg: str) -> list[str]:
    """The varying digit run of each stem (the last digit run when there is one file)."""
    parts = [_DIGITS.split(stem) for stem in stems]  # text, digits, text, digits, ..., text
    shapes = {tuple(p[0::2]) for p in parts}
    if len(stems) == 1:
        digits = parts[0][1::2]
        if not digits:
            raise _no_number(stems, directory, arg)
        return [digits[-1]]
    if len(shapes) > 1:
        examples = ", ".join(repr(s) for s in stems[:4])
        raise ValueError(
            f"The file names in `{arg}`={directory!r} do not follow one pattern ({examples}): "
            "name the set files alike, differing only in the set number (data_0.npy, "
            f"data_1.npy, ...). Received: {arg}={directory!r}"
        )
    columns = list(zip(*(p[1::2] for p in parts)))
    varying = [k for k, column in enumerate(columns) if len(set(column)) > 1]
    if len(varying) != 1:
        raise _no_number(stems, directory, arg)
    numbers = [p[1::2][varying[0]] for p in parts]
    _check_unique(numbers, stems, directory, arg)
    return numbers


def _no_number(stems: list[str], directory: str, arg: str) -> ValueError:
    examples = ", ".join(repr(s) for s in stems[:4])
    return ValueError(
        f"Cannot tell the set number from the file names in `{arg}`={directory!r} "
        f"({examples}): exactly one number must vary across the names (data_0.npy, "
        f"data_1.npy, ...). Rename the files or pass a file instead. Received: {arg}={directory!r}"
    )


def _check_unique(numbers: list[str], stems: list[str], directory: str, arg: str) -> None:
    seen: dict[int, str] = {}
    for number, stem in zip(numbers, stems):
        if int(number) in seen:
            raise ValueError(
                f"Files {seen[int(number)]!r} and {stem!r} in `{arg}`={directory!r} carry the "
                f"same set number {int(number)}. Remove or rename one. "
                f"Received: {arg}={directory!r}"
            )
        seen[int(number)] = stem


def numeric_order(keys: list[str]) -> list[str] | None:
    """`keys` sorted by integer value when every key is a number, else None."""
    if not keys or not all(k.isdigit() for k in keys):
        return None
    return sorted(keys, key=int)


def match_keys(keys: list[str], set_nums: list[str]) -> dict[str, str] | None:
    """Map each of `set_nums` to its key when the keys are exactly the set numbers.

    Keys match by string, or by integer value (`'07'` matches set `'7'`). Returns None
    when the keys and the set numbers differ.
    """
    if sorted(keys) == sorted(set_nums):
        return {num: num for num in set_nums}
    if numeric_order(keys) is None or numeric_order(list(set_nums)) is None:
        return None
    by_value = {int(k): k for k in keys}
    if len(by_value) != len(keys) or sorted(by_value) != sorted(int(n) for n in set_nums):
        return None
    return {num: by_value[int(num)] for num in set_nums}
