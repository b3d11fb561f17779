"""The ``json`` format: the records with their fields, action names and spec provenance.

Plain ``json.dumps`` (no colour, no rich). Numbers are JSON integers, exact
for u32; ``range`` repeats them in hex for readers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hvcfilter.table.compiler import CompiledTable
from hvcfilter.utf8 import utf8_document

__all__ = ["FORMAT_TAG", "emit"]

FORMAT_TAG = "hvcfilter-records-v1"


def document(table: CompiledTable) -> dict[str, Any]:
    """The JSON document as Python data."""
    return {
        "format": FORMAT_TAG,
        "spec": Path(table.spec_path).name,
        "name": table.name,
        "kernel": table.profile.name,
        "layout": table.layout,
        "digest": table.digest(),
        "records": [
            {
                "index": index,
                "base": compiled.record.base,
                "nr_functions": compiled.record.nr_functions,
                "action": compiled.action.label,
                "action_value": compiled.record.action,
                "range": str(compiled.record),
                "sources": [
                    {"entry": s.entry, "label": s.label, "comment": s.comment}
                    for s in compiled.sources
                ],
            }
            for index, compiled in enumerate(table.records)
        ],
    }


def emit(table: CompiledTable) -> bytes:
    """The JSON text, two-space indented, ending in a newline."""
    return utf8_document(json.dumps(document(table), indent=2, ensure_ascii=False) + "\n")
