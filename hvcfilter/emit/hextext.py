"""The ``hex`` format: one record per line as 48 hex digits (``xxd -r -p`` gives the payload)."""

from __future__ import annotations

from hvcfilter.table import payload
from hvcfilter.table.compiler import CompiledTable
from hvcfilter.table.payload import ByteOrder

__all__ = ["emit"]


def emit(table: CompiledTable, byte_order: ByteOrder = "little") -> bytes:
    """Each record's 24 bytes as lower-case hex, one line per record.

    Raises:
        PayloadError: unknown byte order.
    """
    lines = [payload.encode([rec], byte_order).hex() + "\n" for rec in table.raw_records]
    return "".join(lines).encode("ascii")
