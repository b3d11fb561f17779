"""Which of KVM's in-kernel services answers each function ID the kernel serves itself.

Each service module (:mod:`~hvcfilter.kernel.arch`, :mod:`~hvcfilter.kernel.psci`,
:mod:`~hvcfilter.kernel.trng`, :mod:`~hvcfilter.kernel.pvtime`,
:mod:`~hvcfilter.kernel.vendor`) maps the IDs it answers to a handler; the
facts about those IDs (names, gates) are :data:`hvcfilter.kernel.calls.KVM_CALLS`.
A new service is one module here plus its rows in that table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, TypeAlias

from hvcfilter.kernel import arch, psci, pvtime, trng, vendor
from hvcfilter.kernel.calls import KVM_CALLS, FirmwareBit, KvmCall
from hvcfilter.kernel.results import CallResult, GuestCall

if TYPE_CHECKING:
    from hvcfilter.kernel.vm import KvmVm

__all__ = ["EXACT", "Handler", "InKernelCall", "in_kernel_calls"]

Handler: TypeAlias = Callable[["KvmVm", GuestCall], CallResult]


class InKernelCall(NamedTuple):
    """An ID KVM serves itself, its gate (a firmware-bitmap feature) and its handler."""

    fid: int
    name: str
    service: str
    # (bitmap register name, feature name) as in profiles.BitmapRegister.bits;
    # None: on the default allow-list (reference 3.4).
    gate: tuple[str, str] | None
    handler: Handler


_HANDLERS: dict[int, Handler] = {
    **arch.HANDLERS,
    **pvtime.HANDLERS,
    **trng.HANDLERS,
    **vendor.HANDLERS,
}


def _bitmap_gate(call: KvmCall) -> tuple[str, str] | None:
    gate = call.gate
    return (gate.register, gate.feature) if isinstance(gate, FirmwareBit) else None


# The IDs KVM matches exactly, behind a firmware bit or none; PSCI is reached
# through the allow-list instead (psci.psci_call). A KeyError here means
# kernel.calls lists a call that has no handler.
EXACT: dict[int, InKernelCall] = {
    call.fid: InKernelCall(
        call.fid, call.name, call.service, _bitmap_gate(call), _HANDLERS[call.fid]
    )
    for call in KVM_CALLS
    if call.fid not in psci.PSCI_CALLS
}
assert set(psci.PSCI_CALLS) == set(psci.HANDLERS), "every PSCI call needs a handler"


def in_kernel_calls() -> dict[int, InKernelCall]:
    """The IDs KVM serves by exact match (PSCI is served by the allow-list rule instead)."""
    return dict(EXACT)
