"""KVM's answers to the Standard Hypervisor Service's PV time calls (stolen time).

Source: arch/arm64/kvm/pvtime.c; reference 3.6. Both calls are gated by
the ``std_hyp`` firmware bitmap (``pv-time``) and answer only when the VMM
configured a stolen-time IPA.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hvcfilter.kernel.calls import PV_TIME_FEATURES, PV_TIME_ST
from hvcfilter.kernel.results import NOT_SUPPORTED, CallResult, GuestCall, answer

if TYPE_CHECKING:
    from hvcfilter.kernel.services import Handler
    from hvcfilter.kernel.vm import KvmVm

__all__ = ["HANDLERS"]

_U32 = 0xFFFF_FFFF


def _pv_time_features(vm: KvmVm, c: GuestCall) -> CallResult:
    if vm.stolen_time_ipa is None:
        return answer(
            c,
            "pv-time",
            "PV_TIME_FEATURES: no stolen-time IPA configured",
            (NOT_SUPPORTED, 0, 0, 0),
        )
    if c.x1 is None:
        return answer(c, "pv-time", "PV_TIME_FEATURES: answer depends on x1", (None, 0, 0, 0))
    ok = (c.x1 & _U32) in (PV_TIME_FEATURES, PV_TIME_ST)
    return answer(c, "pv-time", "PV_TIME_FEATURES", (0 if ok else NOT_SUPPORTED, 0, 0, 0))


def _pv_time_st(vm: KvmVm, c: GuestCall) -> CallResult:
    ipa = vm.stolen_time_ipa
    if ipa is None:
        return answer(
            c, "pv-time", "PV_TIME_ST: no stolen-time IPA configured", (NOT_SUPPORTED, 0, 0, 0)
        )
    return answer(c, "pv-time", "PV_TIME_ST: the stolen-time record's IPA", (ipa, 0, 0, 0))


HANDLERS: dict[int, Handler] = {
    PV_TIME_FEATURES: _pv_time_features,
    PV_TIME_ST: _pv_time_st,
}
