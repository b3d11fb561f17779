"""A fast parser for the plain TOML that specs are written in, deferring to tomllib for the rest.

tomllib parses a 100,000-range spec at about 4 µs a line, which made parsing
most of the cost of ``check`` and ``compile`` on large generated specs. Specs
use a small part of TOML: ``[table]`` and ``[[array]]`` headers with bare
names, ``key = value`` lines with bare keys, and values that are basic or
literal strings without escapes, integers, booleans or one-line arrays of
those. :func:`parse` reads exactly that subset with two regular-expression
passes and returns what ``tomllib.loads`` returns for it, key order and
types included.

Anything else (escapes, floats, dates, dotted or quoted keys, inline tables,
multi-line arrays and strings, a redefined table or key, a syntax error)
makes it return ``None``, and the caller asks tomllib, so tomllib stays the
one judge of what is valid TOML and the one author of syntax errors.

The parsed lines are kept, one per line of the text, so that finding where a
key sits (for a diagnostic) needs no second scan of the text.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

__all__ = ["PlainLine", "PlainToml", "parse"]

# One line of plain TOML: (key, value, array-of-tables name, table name); all
# empty for blank and comment lines.
PlainLine = tuple[str, str, str, str]


class PlainToml(NamedTuple):
    """A document the subset parser read, and its lines: ``lines[i]`` is line ``i + 1``."""

    document: dict[str, Any]
    lines: list[PlainLine]


# TOML forbids control characters other than tab in strings and comments.
# Possessive single-character repeats keep the regex engine in its fast loops;
# each pattern still describes exactly the TOML syntax it names.
_STRING = r"\"[^\"\\\x00-\x08\x0a-\x1f\x7f]*+\"|'[^'\x00-\x08\x0a-\x1f\x7f]*+'"
# Hex, or decimal without leading zeros; "_" only between two digits.
_INTEGER = r"0x[0-9A-Fa-f]++(?:_[0-9A-Fa-f]++)*+|[+-]?+(?:0|[1-9][0-9]*+(?:_[0-9]++)*+)"
_SCALAR = rf"{_STRING}|{_INTEGER}|true|false"
# Items each followed by a comma, then perhaps one without: "[]", "[1]", "[1,]", "[1, 2]".
_ARRAY = rf"\[[ \t]*+(?:(?:{_SCALAR})[ \t]*+,[ \t]*+)*+(?:(?:{_SCALAR})[ \t]*+)?\]"
_NAME = r"[A-Za-z0-9_-]++"
# One line: (key, value, array-of-tables name, table name). "^" anchors each
# match at a line start and none can hold a newline but its last character,
# so as many matches as newlines means every line matched in full.
_LINE = re.compile(
    rf"^[ \t]*+(?:({_NAME})[ \t]*+=[ \t]*+({_SCALAR}|{_ARRAY})"
    rf"|\[\[[ \t]*+({_NAME})[ \t]*+\]\]|\[[ \t]*+({_NAME})[ \t]*+\])?"
    r"[ \t]*+(?:#[^\x00-\x08\x0a-\x1f\x7f]*+)?\r?\n",
    re.MULTILINE,
)
_ARRAY_ITEM = re.compile(_SCALAR)


def parse(text: str) -> PlainToml | None:
    """What ``tomllib.loads(text)`` returns, or ``None`` if ``text`` is outside the subset."""
    if not text:
        return PlainToml({}, [])
    if not text.endswith("\n"):
        if text.endswith("\r"):
            return None  # a lone CR is an error tomllib words
        text += "\n"
    lines: list[PlainLine] = _LINE.findall(text)
    if len(lines) != text.count("\n"):
        return None
    root: dict[str, Any] = {}
    table = root
    arrays: set[str] = set()  # names that [[name]] created, which [[name]] may extend
    for key, value, array_name, table_name in lines:
        if key:
            if key in table:
                return None
            table[key] = _value(value)
        elif array_name:
            if array_name in arrays:
                table = {}
                root[array_name].append(table)
            elif array_name in root:
                return None
            else:
                arrays.add(array_name)
                table = {}
                root[array_name] = [table]
        elif table_name:
            if table_name in root:
                return None
            table = {}
            root[table_name] = table
    return PlainToml(root, lines)


def _value(text: str) -> str | bool | int | list[Any]:
    first = text[0]
    if first in "\"'":
        return text[1:-1]
    if first == "t":
        return True
    if first == "f":
        return False
    if first == "[":
        return [_value(item) for item in _ARRAY_ITEM.findall(text, 1)]
    return int(text, 16) if text.startswith("0x") else int(text)
