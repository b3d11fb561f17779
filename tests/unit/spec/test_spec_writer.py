"""Unit tests of hvcfilter.spec.writer: canonical TOML with hex IDs."""

from __future__ import annotations

import tomllib

from hvcfilter.spec.writer import dump_document


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
