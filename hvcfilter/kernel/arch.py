"""KVM's answers to the Arm Architecture calls: SMCCC_VERSION and SMCCC_ARCH_FEATURES.

Source: arch/arm64/kvm/hypercalls.c; reference 3.6. The ARCH_WORKAROUND
answers depend on the host CPU (:class:`~hvcfilter.kernel.profiles.HostCpu`),
not on the kernel. The HVC fast path for the workaround IDs is taken before
the filter, in the pipeline of :mod:`hvcfilter.kernel.vm`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hvcfilter import smccc
from hvcfilter.kernel.calls import (
    PV_TIME_FEATURES,
    SMCCC_ARCH_FEATURES,
    SMCCC_VERSION,
    WORKAROUND_1,
    WORKAROUND_2,
    WORKAROUND_3,
)
from hvcfilter.kernel.results import NOT_SUPPORTED, CallResult, GuestCall, answer

if TYPE_CHECKING:
    from hvcfilter.kernel.services import Handler
    from hvcfilter.kernel.vm import KvmVm

__all__ = ["HANDLERS"]

_U32 = 0xFFFF_FFFF


def _smccc_version(vm: KvmVm, c: GuestCall) -> CallResult:
    v = vm.profile.smccc_version
    return answer(c, "arch", f"SMCCC_VERSION: KVM reports {v >> 16}.{v & 0xFFFF}", (v, 0, 0, 0))


def _arch_features(vm: KvmVm, c: GuestCall) -> CallResult:
    if c.x1 is None:
        return answer(c, "arch", "SMCCC_ARCH_FEATURES: answer depends on x1", (None, 0, 0, 0))
    feature = c.x1 & _U32  # the kernel reads a u32 [src hypercalls.c]
    host = vm.host
    answers = {
        WORKAROUND_1: host.wa1_answer,
        WORKAROUND_2: host.wa2_answer,
        WORKAROUND_3: host.wa3_answer,
    }
    if feature in answers:
        val = answers[feature]
        why = f"host {host.name} state for {smccc.format_id(feature)}"
    elif feature == PV_TIME_FEATURES:
        on = vm.feature_enabled("std_hyp", "pv-time")
        val = 0 if on else NOT_SUPPORTED
        why = "PV_TIME " + ("enabled" if on else "disabled") + " in the std_hyp firmware bitmap"
    else:
        val = NOT_SUPPORTED
        why = f"{smccc.format_id(feature)} is not an architecture feature KVM reports"
    return answer(c, "arch", f"SMCCC_ARCH_FEATURES: {why}", (val, 0, 0, 0))


HANDLERS: dict[int, Handler] = {
    SMCCC_VERSION: _smccc_version,
    SMCCC_ARCH_FEATURES: _arch_features,
}
