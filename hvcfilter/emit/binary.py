"""The ``bin`` format: the payload itself, 24 bytes per record, exactly what KVM receives."""

from __future__ import annotations

from hvcfilter.table.compiler import CompiledTable
from hvcfilter.table.payload import ByteOrder

__all__ = ["emit"]


def emit(table: CompiledTable, byte_order: ByteOrder = "little") -> bytes:
    """The records as ``struct kvm_smccc_filter`` bytes, in install order.

    Raises:
        PayloadError: unknown byte order.
    """
    return table.encode(byte_order)
