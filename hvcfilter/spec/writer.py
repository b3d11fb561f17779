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


def _flat_table(table: Mapping[str, Any]) -> str:
    if any(isinstance(v, Mapping) for v in table.values()):
        raise HvcFilterError("internal error: a spec table cannot hold a nested table")
    return tomli_w.dumps(table, multiline_strings=False)


def dump_document(document: Mapping[str, Any]) -> str:
    """Canonical TOML for a spec document, with function IDs and counts in hex.

    The spec shape is fixed: top-level tables (``[filter]``, ``[vm]``) and
    arrays of tables (``[[range]]``) of plain values. Each table's values
    are written by tomli-w (quoting and escaping), always in block form: a
    ``[[range]]`` header per entry, never an inline table, whatever the line
    length. Then the integer values of ``base``, ``end`` and ``nr_functions``
    lines are rewritten as ``0x84000000`` (IDs, eight digits) and ``0x20``
    (counts). The result is parsed back and compared with the input, so the
    rewrite can never change a value.

    Raises:
        HvcFilterError: the document does not have the spec shape.
    """
    blocks: list[str] = []
    try:
        for key, value in document.items():
            name = tomli_w.dumps({key: 0}).split(" = ")[0]  # quotes the key if it needs it
            if isinstance(value, Mapping):
                blocks.append(f"[{name}]\n{_flat_table(value)}")
            elif isinstance(value, list) and all(isinstance(v, Mapping) for v in value):
                blocks.extend(f"[[{name}]]\n{_flat_table(v)}" for v in value)
            else:
                raise HvcFilterError(f"internal error: top-level {key!r} is not a table")
    except (TypeError, ValueError) as exc:
        raise HvcFilterError(f"cannot write the spec as TOML: {exc}") from exc

    def to_hex(match: re.Match[str]) -> str:
        key, value = match.group(1), int(match.group(2))
        shown = f"0x{value:X}" if key == "nr_functions" else smccc.format_id(value)
        return f"{key} = {shown}"

    text = _INT_LINE.sub(to_hex, "\n".join(blocks))
    if tomllib.loads(text) != document:
        raise HvcFilterError("internal error: the hex rewrite changed the spec document")
    return text
