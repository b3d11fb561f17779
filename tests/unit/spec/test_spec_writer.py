"""Unit tests of hvcfilter.spec.writer: canonical TOML with hex IDs."""

from __future__ import annotations

import tomllib
from typing import Any

import tomli_w

from hvcfilter.spec.writer import _INT_LINE, _to_hex, dump_document


def test_dump_document_rewrites_only_integer_id_lines() -> None:
    document = {
        "range": [
            {"action": "deny", "base": 0x84000000, "end": 0x8400001F, "comment": "x\nbase = 5"},
            {"action": "deny", "base": 0, "nr_functions": 0x80000000},
        ]
    }
    text = dump_document(document)
    assert "base = 0x84000000\nend = 0x8400001F\n" in text
    assert "base = 0x00000000\nnr_functions = 0x80000000\n" in text
    assert '"x\\nbase = 5"' in text
    assert tomllib.loads(text) == document


def _tomli_w_reference(document: dict[str, Any]) -> str:
    """What dump_document wrote before its line-by-line path: tomli-w, then the hex rewrite."""
    blocks: list[str] = []
    for key, value in document.items():
        tables = value if isinstance(value, list) else [value]
        header = f"[[{key}]]" if isinstance(value, list) else f"[{key}]"
        blocks.extend(f"{header}\n{tomli_w.dumps(t, multiline_strings=False)}" for t in tables)
    return _INT_LINE.sub(_to_hex, "\n".join(blocks))


def test_plain_tables_are_written_as_tomli_w_writes_them() -> None:
    document: dict[str, Any] = {
        "filter": {"name": 'quote " back \\ tab \t bell \x07 é \u2028', "layout": "sorted"},
        "vm": {"psci_version": "1.1", "flag": True, "list": ["a", "b"]},  # the tomli-w path
        "range": [
            {"action": "deny", "base": 0x84000000, "nr_functions": 0x20, "comment": "a, b"},
            {"action": "deny", "base": 5, "end": 0xFFFFFFFF, "weird": -3, "comment": ""},
            {"action": "handle", "base": 7, "nr_functions": 1, "comment": "x\nbase = 5"},
        ],
    }
    assert dump_document(document) == _tomli_w_reference(document)
    assert tomllib.loads(dump_document(document)) == document
