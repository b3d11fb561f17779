"""What a guest call and a filter table look like from outside the kernel: results and segments.

:class:`CallResult` is what one HVC or SMC did, as the guest and the VMM see
it; :class:`Segment` one stretch of the 32-bit function-ID space and the
filter's entry there. :class:`GuestCall` carries a call through the
pipeline to the service that answers it, and :func:`answer` and
:func:`not_supported` build the results the services return, at the
guest's register width. The SMCCC return codes the services use are here
too (DEN0028, DEN0022).
"""

# No `from __future__ import annotations`: NamedTuple compiles string annotations at start.

from typing import Literal, NamedTuple, TypeAlias

from hvcfilter.kernel.abi import Action
from hvcfilter.smccc import Conduit

__all__ = [
    "NOT_SUPPORTED",
    "CallResult",
    "ExitKind",
    "GuestCall",
    "Outcome",
    "Registers",
    "Segment",
    "SegmentSource",
    "answer",
    "not_supported",
]

Outcome: TypeAlias = Literal["handled", "not_supported", "forwarded", "rejected"]
ExitKind: TypeAlias = Literal["none", "hypercall", "system_event"]
SegmentSource: TypeAlias = Literal["reserved", "installed", "none"]
Registers: TypeAlias = tuple[int | None, int | None, int | None, int | None]

# SMCCC NOT_SUPPORTED, the answer of every call nothing implements (DEN0028).
NOT_SUPPORTED = -1


class CallResult(NamedTuple):
    """What one guest HVC or SMC did, as the guest and the VMM see it.

    ``outcome``: ``handled`` (KVM answered in the kernel), ``not_supported``
    (the guest gets SMCCC NOT_SUPPORTED with x1-x3 zeroed: the filter denies
    it, or nothing in the kernel implements or enables it), ``forwarded``
    (``KVM_EXIT_HYPERCALL``), ``rejected`` (AArch64 SMC with a nonzero
    immediate, answered without consulting the filter).

    ``action`` is the filter table's entry for the ID (HANDLE where no range
    covers it), or None where the filter is not consulted. ``x0``-``x3`` are
    the guest's registers when the call completes in the kernel, at the
    guest's width (64-bit AArch64, 32-bit AArch32); None where they depend on
    an argument the caller did not give, on the host (random data, clocks) or
    on the VMM (a forwarded call). ``exit`` is None only where an unknown
    argument decides between a system event and a plain return.
    """

    outcome: Outcome
    action: Action | None
    reason: str
    fid: int
    service: str | None = None
    exit: ExitKind | None = "none"
    nr: int | None = None
    flags: int | None = None
    event_type: int | None = None
    event_ndata: int | None = None
    event_data0: int | None = None
    x0: int | None = None
    x1: int | None = None
    x2: int | None = None
    x3: int | None = None
    # The filter entry (inclusive) that decided, reserved ranges included.
    matched: tuple[int, int] | None = None


class Segment(NamedTuple):
    """One stretch of the 32-bit function-ID space and what the filter says about it.

    ``action`` None means no entry (the kernel treats it as HANDLE).
    ``order`` is the install order of an installed range (0 = first success).
    """

    first: int
    last: int
    action: Action | None
    source: SegmentSource
    order: int | None = None


class GuestCall:
    """One call on its way from the filter to the service that answers it.

    ``mask`` is the guest's register width (all ones, 32 or 64 bits);
    ``action`` and ``matched`` what the filter said and which entry said it.
    A plain slotted class: one is made per emulated call, and the kernel's
    modules must not import ``dataclasses`` (``check`` loads them).
    """

    __slots__ = ("aarch32", "action", "conduit", "fid", "mask", "matched", "x0", "x1", "x2", "x3")

    def __init__(  # noqa: PLR0917 - one parameter per register and attribute
        self,
        x0: int,
        fid: int,
        x1: int | None,
        x2: int | None,
        x3: int | None,
        conduit: Conduit,
        aarch32: bool,
        mask: int,
        action: Action,
        matched: tuple[int, int] | None,
    ) -> None:
        self.x0 = x0
        self.fid = fid
        self.x1 = x1
        self.x2 = x2
        self.x3 = x3
        self.conduit = conduit
        self.aarch32 = aarch32
        self.mask = mask
        self.action = action
        self.matched = matched


def answer(
    c: GuestCall,
    service: str,
    reason: str,
    regs: Registers,
    *,
    outcome: Outcome = "handled",
    exit: ExitKind | None = "none",
    event: tuple[int, int, int] | None = None,
) -> CallResult:
    """A result at the guest's register width; ``event`` is (type, ndata, data0)."""
    m = c.mask
    x0, x1, x2, x3 = (None if r is None else r & m for r in regs)
    return CallResult(
        outcome=outcome,
        action=c.action,
        reason=reason,
        fid=c.fid,
        service=service,
        exit=exit,
        event_type=None if event is None else event[0],
        event_ndata=None if event is None else event[1],
        event_data0=None if event is None else event[2],
        x0=x0,
        x1=x1,
        x2=x2,
        x3=x3,
        matched=c.matched,
    )


def not_supported(c: GuestCall, reason: str, service: str | None = None) -> CallResult:
    """SMCCC NOT_SUPPORTED: x0 all ones, x1-x3 zeroed [obs 3.2]."""
    return CallResult(
        outcome="not_supported",
        action=c.action,
        reason=reason,
        fid=c.fid,
        service=service,
        x0=c.mask,
        x1=0,
        x2=0,
        x3=0,
        matched=c.matched,
    )
