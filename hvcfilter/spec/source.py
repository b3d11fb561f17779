"""Where things are in a spec's TOML source: key paths, and the lines and columns they sit on.

tomllib reports no positions, and a full position-keeping parser would slow
every load, so :class:`SourceMap` recovers them by a line scan that runs
only when a diagnostic needs a position: a clean spec pays nothing for it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hvcfilter.diagnostics import Location
from hvcfilter.model import FilterSpec
from hvcfilter.spec.toml_subset import PlainLine

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

    def __init__(self, text: str, plain_lines: Sequence[PlainLine] | None = None) -> None:
        """``plain_lines``: what the plain-TOML parser made of ``text``, if it read it."""
        self._text = text
        self._plain_lines = plain_lines
        self._index: dict[KeyPath, tuple[int, int]] | None = None
        self._lazy: _LazyIndex | _PlainIndex | None = None

    def locate(self, path: KeyPath) -> tuple[int, int] | None:
        """The (line, column) of the longest known prefix of ``path``."""
        if self._index is None and self._lazy is None:
            text = self._text
            if self._plain_lines is not None:
                self._lazy = _PlainIndex(text, self._plain_lines)
            elif '"""' not in text and "'''" not in text and not _ODD_BREAKS.search(text):
                self._lazy = _LazyIndex(self._text)
            else:
                self._build()
        lookup = self._lazy.get if self._lazy is not None else self._full_get
        for end in range(len(path), 0, -1):
            found = lookup(path[:end])
            if found is None and isinstance(path[end - 1], str):
                # A name given as an array of tables ([[ranges]], [[filter]]) is indexed
                # by its first table's header.
                found = lookup((*path[:end], 0))
            if found is not None:
                return found
        return None

    def _full_get(self, path: KeyPath) -> tuple[int, int] | None:
        assert self._index is not None
        return self._index.get(path)

    def _build(self) -> dict[KeyPath, tuple[int, int]]:
        index: dict[KeyPath, tuple[int, int]] = {}
        counts: dict[str, int] = {}
        table: KeyPath = ()
        in_string: str | None = None
        # Only "\n" ends a TOML line: splitlines() would also break at U+2028, U+0085 and
        # other characters a comment or string may hold, and every later line would be off.
        for number, raw in enumerate(self._text.split("\n"), start=1):
            line = raw.removesuffix("\r")
            if in_string:
                end = _close_multiline(line, in_string)
                if end is not None:
                    in_string = _open_multiline(line[end:])
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


# Text with none of these has plain "\n" line ends and no multi-line string, so a
# table's keys can be found by scanning that table's lines.
_ODD_BREAKS = re.compile("[\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_BRACKET_LINE = re.compile(r"^[^\S\n]*\[[^\n]*", re.MULTILINE)


class _LazyIndex:
    """The answers of :meth:`SourceMap._build` for plain text, from a scan of table headers.

    A full line scan of a 100,000-range spec costs about what parsing it does,
    and most lookups ask for a handful of keys: headers are indexed by one
    regex pass, and a table's key lines are read only when one is asked for.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._found: dict[KeyPath, tuple[int, int] | None] = {}
        # table -> its segments: (first line number, start offset, end offset).
        self._segments: dict[KeyPath, list[tuple[int, int, int]]] = {}
        counts: dict[str, int] = {}
        table: KeyPath = ()
        seg_line, seg_start = 1, 0
        line, pos = 1, 0
        # Generated tables repeat the same header line: parse each distinct one once.
        parsed: dict[str, tuple[str, str, int] | None] = {}
        for match in _BRACKET_LINE.finditer(text):
            head = match.group()
            start = match.start()
            line += text.count("\n", pos, start)
            pos = start
            if head in parsed:
                known = parsed[head]
            else:
                header = _HEADER.match(head)
                known = parsed[head] = (
                    None
                    if header is None
                    else (
                        header.group(1),
                        header.group(2).strip().strip("\"'"),
                        len(head) - len(head.lstrip()) + 1,
                    )
                )
            if known is None:
                continue
            self._segments.setdefault(table, []).append((seg_line, seg_start, start))
            bracket, name, column = known
            if bracket == "[[":
                position = counts.get(name, 0)
                counts[name] = position + 1
                table = (name, position)
            else:
                table = tuple(name.split("."))
            self._found.setdefault(table, (line, column))
            seg_line, seg_start = line + 1, match.end() + 1
        self._segments.setdefault(table, []).append((seg_line, seg_start, len(text)))

    def get(self, path: KeyPath) -> tuple[int, int] | None:
        if path in self._found:
            return self._found[path]
        found = self._key(path[:-1], path[-1]) if path and isinstance(path[-1], str) else None
        self._found[path] = found
        return found

    def _key(self, table: KeyPath, name: str) -> tuple[int, int] | None:
        for number, start, end in self._segments.get(table, ()):
            for offset, line in enumerate(self._text[start:end].split("\n")):
                stripped = line.lstrip()
                if not stripped or stripped.startswith(("#", "[")):
                    continue
                key = _KEY.match(line)
                if key and key.group(1).strip("\"'") == name:
                    return number + offset, len(line) - len(stripped) + 1
        return None


class _PlainIndex:
    """The answers of :meth:`SourceMap._build` for text the plain-TOML parser read.

    Its lines are already split and classified, so the headers are indexed by
    one pass over them, and a table's key lines are read only when one is
    asked for. Plain TOML defines each table once, so each has one body.
    """

    def __init__(self, text: str, lines: Sequence[PlainLine]) -> None:
        self._text = text
        self._lines = lines
        self._line_texts: list[str] | None = None
        self._found: dict[KeyPath, tuple[int, int] | None] = {}
        self._table_keys: dict[KeyPath, dict[str, int]] = {}
        # table -> the index in `lines` of its header (-1 for the root table)
        # and of its first and past-last body line.
        self._tables: dict[KeyPath, tuple[int, int, int]] = {}
        counts: dict[str, int] = {}
        table: KeyPath = ()
        header = -1
        for index in [i for i, line in enumerate(lines) if line[2] or line[3]]:
            self._tables[table] = (header, header + 1, index)
            _, _, array_name, table_name = lines[index]
            if array_name:
                position = counts.get(array_name, 0)
                counts[array_name] = position + 1
                table = (array_name, position)
            else:
                table = (table_name,)
            header = index
        self._tables[table] = (header, header + 1, len(lines))

    def _column(self, index: int) -> int:
        if self._line_texts is None:
            self._line_texts = self._text.split("\n")
        line = self._line_texts[index]
        return len(line) - len(line.lstrip()) + 1

    def get(self, path: KeyPath) -> tuple[int, int] | None:
        if path in self._found:
            return self._found[path]
        found = None
        if path in self._tables:
            header = self._tables[path][0]
            if header >= 0:
                found = (header + 1, self._column(header))
        elif path and isinstance(path[-1], str) and path[:-1] in self._tables:
            index = self._keys_of(path[:-1]).get(path[-1])
            if index is not None:
                found = (index + 1, self._column(index))
        self._found[path] = found
        return found

    def _keys_of(self, table: KeyPath) -> dict[str, int]:
        """A table's keys and the index of the line of each, read once per table.

        Per key, a scan of the table's lines made a table of many bad keys
        (each one reported) quadratic: 20,000 took 6 s.
        """
        keys = self._table_keys.get(table)
        if keys is None:
            _, start, end = self._tables[table]
            keys = {}
            for index in range(start, end):
                name = self._lines[index][0]
                if name:  # "" on a line of no key (a blank line, a comment)
                    keys.setdefault(name, index)
            self._table_keys[table] = keys
        return keys


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
            end = _close_multiline(line[i + 3 :], delimiter)
            if end is None:
                return delimiter
            i += 3 + end
        elif char in "\"'":
            i += 1
            while i < len(line) and line[i] != char:
                i += 2 if char == '"' and line[i] == "\\" else 1
            i += 1
        else:
            i += 1
    return None


def _close_multiline(text: str, delimiter: str) -> int | None:
    """The offset in ``text`` just past the ``delimiter`` that ends a multi-line string in it.

    In a basic string (three double quotes) a backslash escapes the character
    after it, so an escaped quote and two more do not end the string. Up to
    two quotes just before the closing three belong to the string (TOML 1.0):
    four or five quotes in a row end it too.
    """
    i = 0
    while i < len(text):
        if delimiter == '"""' and text[i] == "\\":
            i += 2
        elif text.startswith(delimiter, i):
            end = i + 3
            while end < len(text) and end - i < 5 and text[end] == delimiter[0]:
                end += 1
            return end
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
