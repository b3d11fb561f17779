"""Where things are in a spec's TOML source: key paths, and the lines and columns they sit on.

tomllib reports no positions, and a full position-keeping parser would slow
every load, so :class:`SourceMap` recovers them by a line scan that runs
only when a diagnostic needs a position: a clean spec pays nothing for it.
"""

from __future__ import annotations

import re

from hvcfilter.diagnostics import Location
from hvcfilter.model import FilterSpec

__all__ = ["KeyPath", "SourceMap", "format_key_path", "locate", "location", "split_toml_error"]

KeyPath = tuple[str | int, ...]


def format_key_path(path: KeyPath) -> str:
    """``("range", 3, "base")`` -> ``"range[3].base"``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def location(filename: str, source: SourceMap, path: KeyPath) -> Location:
    found = source.locate(path)
    key = format_key_path(path) or None
    if found is None:
        return Location(filename, key=key)
    return Location(filename, found[0], found[1], key)


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def split_toml_error(message: str) -> tuple[str, int | None, int | None]:
    match = _TOML_POSITION.search(message)
    if not match:
        return message, None, None
    return message[: match.start()], int(match.group(1)), int(match.group(2))


_HEADER = re.compile(r"\s*(\[\[?)\s*([A-Za-z0-9_\-\"'. ]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"\s*([A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*')\s*=")


class SourceMap:
    """Positions of tables and keys in TOML source, found by a line scan on first use.

    tomllib reports no positions, and a full position-keeping parser would
    slow every load; this scan understands just enough TOML (table headers,
    arrays of tables, ``key =`` lines, multi-line strings) to point at a line.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._index: dict[KeyPath, tuple[int, int]] | None = None

    def locate(self, path: KeyPath) -> tuple[int, int] | None:
        """The (line, column) of the longest known prefix of ``path``."""
        index = self._index if self._index is not None else self._build()
        for end in range(len(path), 0, -1):
            found = index.get(path[:end])
            if found is not None:
                return found
        return None

    def _build(self) -> dict[KeyPath, tuple[int, int]]:
        index: dict[KeyPath, tuple[int, int]] = {}
        counts: dict[str, int] = {}
        table: KeyPath = ()
        in_string: str | None = None
        for number, line in enumerate(self._text.splitlines(), start=1):
            if in_string:
                if line.count(in_string) % 2 == 1:
                    in_string = None
                continue
            stripped = line.lstrip()
            if not stripped or stripped.startswith("#"):
                continue
            column = len(line) - len(stripped) + 1
            header = _HEADER.match(line) if stripped.startswith("[") else None
            if header:
                name = header.group(2).strip().strip("\"'")
                if header.group(1) == "[[":
                    position = counts.get(name, 0)
                    counts[name] = position + 1
                    table = (name, position)
                else:
                    table = tuple(name.split("."))
                index.setdefault(table, (number, column))
                continue
            key = _KEY.match(line)
            if key:
                index.setdefault((*table, key.group(1).strip("\"'")), (number, column))
            # The character scan is slow; most lines have no triple quote at all.
            if '"""' in line or "'''" in line:
                in_string = _open_multiline(line)
        self._index = index
        return index


def _open_multiline(line: str) -> str | None:
    """The delimiter of a multi-line string that ``line`` opens and leaves open, if any.

    Triple quotes inside one-line literal strings and comments do not count.
    """
    i = 0
    while i < len(line):
        char = line[i]
        if char == "#":
            return None
        delimiter = line[i : i + 3]
        if delimiter in ('"""', "'''"):
            end = line.find(delimiter, i + 3)
            if end < 0:
                return delimiter
            i = end + 3
        elif char in "\"'":
            i += 1
            while i < len(line) and line[i] != char:
                i += 2 if char == '"' and line[i] == "\\" else 1
            i += 1
        else:
            i += 1
    return None


def locate(spec: FilterSpec, path: KeyPath) -> Location:
    """The :class:`Location` of a key path in a loaded spec, e.g. ``("range", 3, "base")``."""
    found = spec.locate(path)
    key = format_key_path(path) or None
    if found is None:
        return Location(spec.path, key=key)
    return Location(spec.path, found[0], found[1], key)
