"""The spec room: TOML spec files in and out, with positions for every finding.

Loading (:mod:`.loader`) reads a file or text and returns the resolved
:class:`~hvcfilter.model.FilterSpec` with its diagnostics; it goes through
the fast reader (:mod:`.reader`) or the pydantic schema of record
(:mod:`.schema`, whose errors :mod:`.schema_errors` words), then resolves
the document into records (:mod:`.resolve`). :mod:`.source` recovers lines
and columns, :mod:`.input_rules` documents the HVF0xx/HVF1xx codes, and
:mod:`.writer` writes canonical spec TOML (imported on its own: loading never
needs it). :mod:`.json_schema` turns the schema's models, with the key
documentation of :mod:`.schema_docs`, into the JSON Schema editors read.

Imports: :mod:`hvcfilter.model`, :mod:`hvcfilter.diagnostics`,
:mod:`hvcfilter.smccc`, :mod:`hvcfilter.errors` and the kernel's facts
(:mod:`hvcfilter.kernel.profiles`); never the rules, the table pipeline,
the emulator, the CLI or the renderers.
"""

from __future__ import annotations

from hvcfilter.spec.input_rules import INPUT_RULES, InputRule
from hvcfilter.spec.loader import (
    DEFAULT_SPEC,
    LoadResult,
    is_payload,
    is_text,
    is_toml,
    load,
    load_bytes,
    loads,
)
from hvcfilter.spec.resolve import resolve_function
from hvcfilter.spec.source import KeyPath, format_key_path, locate

__all__ = [
    "DEFAULT_SPEC",
    "INPUT_RULES",
    "InputRule",
    "KeyPath",
    "LoadResult",
    "format_key_path",
    "is_payload",
    "is_text",
    "is_toml",
    "load",
    "load_bytes",
    "loads",
    "locate",
    "resolve_function",
]
