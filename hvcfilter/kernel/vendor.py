"""KVM's answers to its own vendor hypervisor calls: KVM_FEATURES, the call UID and PTP.

Source: arch/arm64/kvm/hypercalls.c; reference 3.6 and section 10. They
are gated by the ``vendor_hyp`` firmware bitmap; 6.15 and later also report
the second vendor bitmap in KVM_FEATURES' x2 (a profile field).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hvcfilter.kernel.calls import KVM_FEATURES, KVM_PTP, KVM_UID
from hvcfilter.kernel.results import NOT_SUPPORTED, CallResult, GuestCall, answer

if TYPE_CHECKING:
    from hvcfilter.kernel.services import Handler
    from hvcfilter.kernel.vm import KvmVm

__all__ = ["HANDLERS", "KVM_UID_WORDS"]

_U32 = 0xFFFF_FFFF
# UUID 28b46fb6-2ec5-11e9-a9ca-4b564d003a74, byte 0 in the low bits of w0 [obs 7.2].
KVM_UID_WORDS = (0xB66F_B428, 0xE911_C52E, 0x564B_CAA9, 0x743A_004D)


def _kvm_features(vm: KvmVm, c: GuestCall) -> CallResult:
    x2 = vm.fw_bitmap(3) if vm.profile.kvm_features_x2 else 0
    return answer(
        c,
        "kvm-vendor",
        "KVM_FEATURES: the vendor_hyp firmware bitmap",
        (vm.fw_bitmap(2), 0, x2, 0),
    )


def _kvm_uid(vm: KvmVm, c: GuestCall) -> CallResult:
    return answer(c, "kvm-vendor", "VENDOR_HYP_CALL_UID: KVM's UID", KVM_UID_WORDS)


def _kvm_ptp(vm: KvmVm, c: GuestCall) -> CallResult:
    if not vm.host.arch_counter_clocksource:
        return answer(
            c,
            "kvm-vendor",
            "KVM_PTP: host clocksource is not the arch counter",
            (NOT_SUPPORTED, 0, 0, 0),
        )
    if c.x1 is None or (c.x1 & _U32) in (0, 1):
        # Wall clock and counter values: host time, unknowable here.
        return answer(c, "kvm-vendor", "KVM_PTP: host time (unknown)", (None, None, None, None))
    return answer(c, "kvm-vendor", "KVM_PTP: x1 names no counter", (NOT_SUPPORTED, 0, 0, 0))


HANDLERS: dict[int, Handler] = {
    KVM_FEATURES: _kvm_features,
    KVM_UID: _kvm_uid,
    KVM_PTP: _kvm_ptp,
}
