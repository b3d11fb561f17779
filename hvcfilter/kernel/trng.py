"""KVM's answers to the Arm TRNG calls (DEN0098): version, features, UUID, random bits.

Source: arch/arm64/kvm/trng.c; reference 3.6 and section 9. Gated by the
``std`` firmware bitmap (``trng``). Random data is the host's and unknowable
here, so those registers are None.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hvcfilter.kernel.calls import (
    KVM_CALLS,
    TRNG_FEATURES,
    TRNG_GET_UUID,
    TRNG_RND32,
    TRNG_RND64,
    TRNG_VERSION,
)
from hvcfilter.kernel.results import NOT_SUPPORTED, CallResult, GuestCall, answer

if TYPE_CHECKING:
    from hvcfilter.kernel.services import Handler
    from hvcfilter.kernel.vm import KvmVm

__all__ = ["HANDLERS", "TRNG_UUID_WORDS"]

_U32 = 0xFFFF_FFFF
TRNG_INVALID_PARAMETER = -2
# UUID 0d21e000-4384-11eb-8070-5244554e5a4c packed the same way [obs section 9; trng.c].
TRNG_UUID_WORDS = (0x00E0_210D, 0xEB11_8443, 0x4452_7080, 0x4C5A_4E55)
_TRNG_VERSION_1_0 = 0x10000
# TRNG_FEATURES answers 0 for the TRNG calls themselves [src trng.c].
_TRNG_IDS = frozenset(call.fid for call in KVM_CALLS if call.service == "trng")


def _trng(vm: KvmVm, c: GuestCall) -> CallResult:
    fid = c.fid
    if fid == TRNG_VERSION:
        return answer(c, "trng", "TRNG_VERSION: 1.0", (_TRNG_VERSION_1_0, 0, 0, 0))
    if fid == TRNG_FEATURES:
        if c.x1 is None:
            return answer(c, "trng", "TRNG_FEATURES: answer depends on x1", (None, 0, 0, 0))
        # The full register is compared, not a u32 [src trng.c].
        ok = c.x1 in _TRNG_IDS
        return answer(c, "trng", "TRNG_FEATURES", (0 if ok else NOT_SUPPORTED, 0, 0, 0))
    if fid == TRNG_GET_UUID:
        return answer(c, "trng", "TRNG_GET_UUID: the Arm TRNG UUID", TRNG_UUID_WORDS)
    size = 32 if fid == TRNG_RND32 else 64
    name = "TRNG_RND32" if size == 32 else "TRNG_RND64"
    if c.x1 is None:
        return answer(c, "trng", f"{name}: answer depends on x1", (None, None, None, None))
    bits = c.x1 & _U32
    if bits > 3 * size:
        return answer(
            c,
            "trng",
            f"{name}: {bits} bits is over the {3 * size}-bit limit",
            (TRNG_INVALID_PARAMETER, 0, 0, 0),
        )
    # Random data fills the low `bits` bits of x3, then x2, then x1; registers
    # past the request stay zero [src trng.c]. RND32 uses 32 bits per register.
    regs = tuple(None if bits > k * size else 0 for k in (2, 1, 0))
    return answer(c, "trng", f"{name}: {bits} random bits", (0, regs[0], regs[1], regs[2]))


HANDLERS: dict[int, Handler] = {
    fid: _trng for fid in (TRNG_VERSION, TRNG_FEATURES, TRNG_GET_UUID, TRNG_RND32, TRNG_RND64)
}
