"""Output formats of ``hvcfilter compile``: one module per format, one dispatch here.

Every emitter takes a :class:`~hvcfilter.table.compiler.CompiledTable` and returns
the exact bytes of the output, so the CLI only decides where they go. Output
is deterministic: the same spec gives the same bytes, with no timestamps,
absolute paths or tool versions in it.

Imports: the table pipeline's types (:mod:`hvcfilter.table`) and the
kernel's ABI; never the CLI or the renderers.
"""

from __future__ import annotations

from enum import StrEnum
from typing import assert_never

from hvcfilter.emit import binary, c, digest, hextext, jsondoc, rust
from hvcfilter.table.compiler import CompiledTable
from hvcfilter.table.payload import ByteOrder

__all__ = ["OutputFormat", "emit"]


class OutputFormat(StrEnum):
    """``--format`` of ``hvcfilter compile``."""

    BIN = "bin"
    C = "c"
    RUST = "rust"
    JSON = "json"
    HEX = "hex"
    SHA256 = "sha256"

    @property
    def is_binary(self) -> bool:
        """Raw bytes, which must not go to a terminal."""
        return self is OutputFormat.BIN


def emit(table: CompiledTable, fmt: OutputFormat, *, byte_order: ByteOrder = "little") -> bytes:
    """The bytes of ``table`` in one output format.

    ``byte_order`` matters only to ``bin`` and ``hex``; the other formats
    hold values, not bytes.

    Raises:
        PayloadError: unknown byte order.
    """
    match fmt:
        case OutputFormat.BIN:
            return binary.emit(table, byte_order)
        case OutputFormat.C:
            return c.emit(table)
        case OutputFormat.RUST:
            return rust.emit(table)
        case OutputFormat.JSON:
            return jsondoc.emit(table)
        case OutputFormat.HEX:
            return hextext.emit(table, byte_order)
        case OutputFormat.SHA256:
            return digest.emit(table)
        case _:
            assert_never(fmt)
