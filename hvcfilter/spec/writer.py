"""Writing specs: a spec document as canonical TOML, with function IDs in hex.

The one writer of spec text, for ``decompile`` and for every command that
writes a spec: block-form tables, tomli-w's quoting, and ``base``, ``end``
and ``nr_functions`` as ``0x84000000`` and ``0x20``, checked by parsing
the text back.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from typing import Any

import tomli_w

from hvcfilter import smccc
from hvcfilter.errors import HvcFilterError

__all__ = ["dump_document"]

# Lines tomli-w writes for the integer ID fields. With multiline strings off
# (the default) every newline inside a string is escaped, so a line can only
# start with a key if it is a key line.
_INT_LINE = re.compile(r"^(base|end|nr_functions) = (\d+)$", re.MULTILINE)


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_HEX_KEYS = frozenset({"base", "end", "nr_functions"})


class _Writer:
    """Block-form tables, with the lines of plain tables written here instead of by tomli-w.

    A decompiled 100,000-record table is 100,000 small tables of one shape:
    bare keys, strings and integers. Their lines are what tomli-w writes
    (each distinct string is quoted by tomli-w once, and checked by parsing
    its line back), and the IDs come out in hex directly. Any other table
    goes through tomli-w whole, and the document is then parsed back.
    """

    def __init__(self) -> None:
        self.needs_check = False
        self._strings: dict[str, str] = {}

    def table(self, table: Mapping[str, Any]) -> str:
        if any(isinstance(v, Mapping) for v in table.values()):
            raise HvcFilterError("internal error: a spec table cannot hold a nested table")
        lines = []
        for key, value in table.items():
            kind = type(value)
            if kind is str and _BARE_KEY.fullmatch(key):
                lines.append(f"{key} = {self._string(value)}\n")
            elif kind is int and _BARE_KEY.fullmatch(key):
                if key in _HEX_KEYS and value >= 0:
                    shown = f"0x{value:X}" if key == "nr_functions" else smccc.format_id(value)
                else:
                    shown = str(value)
                lines.append(f"{key} = {shown}\n")
            else:
                self.needs_check = True
                return _INT_LINE.sub(_to_hex, tomli_w.dumps(table, multiline_strings=False))
        return "".join(lines)

    def _string(self, value: str) -> str:
        # A TOML basic string holds anything but '"', '\\' and control characters
        # as it is: most comments need no escape, and no round trip through tomli-w.
        if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
            return f'"{value}"'
        quoted = self._strings.get(value)
        if quoted is None:
            quoted = tomli_w.dumps({"s": value}, multiline_strings=False)[4:-1]
            if tomllib.loads(f"s = {quoted}") != {"s": value}:
                raise HvcFilterError(f"internal error: cannot write the string {value!r}")
            self._strings[value] = quoted
        return quoted


def _to_hex(match: re.Match[str]) -> str:
    key, value = match.group(1), int(match.group(2))
    shown = f"0x{value:X}" if key == "nr_functions" else smccc.format_id(value)
    return f"{key} = {shown}"


def dump_document(document: Mapping[str, Any]) -> str:
    """Canonical TOML for a spec document, with function IDs and counts in hex.

    The spec shape is fixed: top-level tables (``[filter]``, ``[vm]``) and
    arrays of tables (``[[range]]``) of plain values. Each table's values
    are written by tomli-w (quoting and escaping), always in block form: a
    ``[[range]]`` header per entry, never an inline table, whatever the line
    length. Then the integer values of ``base``, ``end`` and ``nr_functions``
    lines are rewritten as ``0x84000000`` (IDs, eight digits) and ``0x20``
    (counts). Tables of only strings and integers under bare keys are
    written line by line with the same result (each distinct string quoted
    by tomli-w and parsed back once); if any other table was written, the
    whole result is parsed back and compared with the input, so the rewrite
    can never change a value.

    Raises:
        HvcFilterError: the document does not have the spec shape.
    """
    blocks: list[str] = []
    writer = _Writer()
    try:
        for key, value in document.items():
            name = tomli_w.dumps({key: 0}).split(" = ")[0]  # quotes the key if it needs it
            if isinstance(value, Mapping):
                blocks.append(f"[{name}]\n{writer.table(value)}")
            elif isinstance(value, list) and all(isinstance(v, Mapping) for v in value):
                blocks.extend(f"[[{name}]]\n{writer.table(v)}" for v in value)
            else:
                raise HvcFilterError(f"internal error: top-level {key!r} is not a table")
    except (TypeError, ValueError) as exc:
        raise HvcFilterError(f"cannot write the spec as TOML: {exc}") from exc
    text = "\n".join(blocks)
    if writer.needs_check and tomllib.loads(text) != document:
        raise HvcFilterError("internal error: the hex rewrite changed the spec document")
    return text
