"""The ``sha256`` format: the canonical digest of the effective table, for migration checks.

See :func:`hvcfilter.table.effective.digest` for the canonical form a VMM can
recompute. Equivalent tables get the same digest whatever their layout.
"""

from __future__ import annotations

from hvcfilter.table.compiler import CompiledTable

__all__ = ["emit"]


def emit(table: CompiledTable) -> bytes:
    """``sha256:<64 hex digits>`` and a newline."""
    return f"{table.digest()}\n".encode("ascii")
