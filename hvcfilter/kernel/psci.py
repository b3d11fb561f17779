"""KVM's PSCI: what each PSCI call answers, and the vCPUs' power state it keeps.

Source: arch/arm64/kvm/psci.c; reference 3.7, sections 9 and 10. Which PSCI
calls a VM is served (by its PSCI version, the kernel's features and the
VMM's capabilities) is data in :mod:`hvcfilter.kernel.calls`;
:func:`psci_call` is ``kvm_psci_call``, where every ID on the allow-list's
PSCI part arrives, and :data:`HANDLERS` answers the calls it serves.
:class:`Vcpus` is the power state CPU_ON, CPU_OFF and AFFINITY_INFO read and
change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hvcfilter import smccc
from hvcfilter.kernel.abi import (
    KVM_SYSTEM_EVENT_RESET,
    KVM_SYSTEM_EVENT_RESET_FLAG_PSCI_RESET2,
    KVM_SYSTEM_EVENT_SHUTDOWN,
    KVM_SYSTEM_EVENT_SHUTDOWN_FLAG_PSCI_OFF2,
    KVM_SYSTEM_EVENT_SUSPEND,
)
from hvcfilter.kernel.calls import (
    KVM_CALLS,
    KVM_PSCI_FN_CPU_OFF,
    KVM_PSCI_FN_CPU_ON,
    LEGACY_PSCI,
    PSCI_AFFINITY_INFO,
    PSCI_AFFINITY_INFO_64,
    PSCI_CPU_OFF,
    PSCI_CPU_ON,
    PSCI_CPU_ON_64,
    PSCI_CPU_SUSPEND,
    PSCI_CPU_SUSPEND_64,
    PSCI_FEATURES,
    PSCI_MIGRATE_INFO_TYPE,
    PSCI_SYSTEM_OFF,
    PSCI_SYSTEM_OFF2,
    PSCI_SYSTEM_OFF2_64,
    PSCI_SYSTEM_RESET,
    PSCI_SYSTEM_RESET2,
    PSCI_SYSTEM_RESET2_64,
    PSCI_SYSTEM_SUSPEND,
    PSCI_SYSTEM_SUSPEND_64,
    PSCI_VERSION,
    SMCCC_VERSION,
    KvmCall,
    PsciVersion,
)
from hvcfilter.kernel.results import (
    NOT_SUPPORTED,
    CallResult,
    GuestCall,
    Registers,
    answer,
    not_supported,
)

if TYPE_CHECKING:
    from hvcfilter.kernel.services import Handler
    from hvcfilter.kernel.vm import KvmVm

__all__ = ["HANDLERS", "PSCI_CALLS", "Vcpus", "psci_call"]

_U32 = 0xFFFF_FFFF
# PSCI return codes (DEN0022).
PSCI_INVALID_PARAMS = -2
PSCI_ALREADY_ON = -4
PSCI_INTERNAL_FAILURE = -6
PSCI_TOS_MP = 2  # MIGRATE_INFO_TYPE: Trusted OS is MP or absent

_PSCI_64BIT = 1 << 30
_RESET_TYPE_WARM = 0
_RESET_TYPE_VENDOR_START = 0x8000_0000
_OFF2_TYPE_HIBERNATE_OFF = 1
# Aff3 | Aff2 | Aff1 | Aff0 (arm64 MPIDR_HWID_BITMASK).
_MPIDR_HWID_BITMASK = 0xFF_00FF_FFFF
# What PSCI_FEATURES answers for a call it reports, where that is not 0: the
# SYSTEM_OFF2 types KVM supports [src psci.c].
_PSCI_FEATURE_FLAGS = {
    PSCI_SYSTEM_OFF2: _OFF2_TYPE_HIBERNATE_OFF,
    PSCI_SYSTEM_OFF2_64: _OFF2_TYPE_HIBERNATE_OFF,
}
# PSCI calls are gated by version and reached through the allow-list (kvm_psci_call).
PSCI_CALLS: dict[int, KvmCall] = {
    call.fid: call for call in KVM_CALLS if isinstance(call.gate, PsciVersion)
}


class Vcpus:
    """The VM's vCPUs as PSCI sees them: their MPIDR affinities and which are powered on.

    vCPU ``i`` has the affinity KVM gives it (Aff0 = i for i < 16) [src
    sys_regs.c reset_mpidr]. vCPU 0 is always on; the others start off when
    ``secondaries_off`` (``KVM_ARM_VCPU_POWER_OFF``, as QEMU and the lab do).
    """

    __slots__ = ("by_mpidr", "mpidrs", "on")

    def __init__(self, count: int, *, secondaries_off: bool) -> None:
        self.mpidrs = [
            (i & 0xF) | ((i >> 4) & 0xFF) << 8 | ((i >> 12) & 0xFF) << 16 for i in range(count)
        ]
        self.by_mpidr = {m: i for i, m in enumerate(self.mpidrs)}
        self.on = [i == 0 or not secondaries_off for i in range(count)]

    def stop_for_system_event(self) -> None:
        """SYSTEM_OFF/RESET and their 2 forms stop every vCPU before the exit.

        KVM sets every vCPU STOPPED so that none runs on while the VMM shuts
        down or resets [src psci.c kvm_prepare_system_event]. A later call
        comes from vCPU 0, so the VMM has made it runnable again
        (``KVM_SET_MP_STATE``, as the lab's driver does); the others stay off
        until a CPU_ON [obs: lab 6.1, 6.12 and 7.2: AFFINITY_INFO of a
        secondary started before the event gives OFF, and CPU_ON starts it].
        """
        self.on = [i == 0 for i in range(len(self.on))]


def _narrow(value: int | None) -> int | None:
    """PSCI's narrowing of x1-x3 for a 32-bit function ID [src psci.c]."""
    return None if value is None else value & _U32


def _psci_args(c: GuestCall) -> tuple[int | None, int | None, int | None]:
    """x1-x3 as KVM's PSCI code reads them: narrowed to 32 bits for a 32-bit ID [src psci.c]."""
    if c.fid & _PSCI_64BIT:
        return c.x1, c.x2, c.x3
    return _narrow(c.x1), _narrow(c.x2), _narrow(c.x3)


def _system_event(  # noqa: PLR0917 - the exit's fields, as the kernel fills them
    vm: KvmVm,
    c: GuestCall,
    name: str,
    kind: int,
    data0: int,
    regs_kept: Registers | None = None,
) -> CallResult:
    """SYSTEM_OFF/RESET/...: KVM preloads x0 = INTERNAL_FAILURE before the exit [src psci.c].

    Every vCPU is stopped first (:meth:`Vcpus.stop_for_system_event`).
    """
    vm.vcpus.stop_for_system_event()
    regs = (PSCI_INTERNAL_FAILURE, 0, 0, 0) if regs_kept is None else regs_kept
    label = {KVM_SYSTEM_EVENT_SHUTDOWN: "SHUTDOWN", KVM_SYSTEM_EVENT_RESET: "RESET"}[kind]
    return answer(
        c,
        "psci",
        f"PSCI {name}: KVM_EXIT_SYSTEM_EVENT {label}",
        (PSCI_INTERNAL_FAILURE, regs[1], regs[2], regs[3]),
        exit="system_event",
        event=(kind, 1, data0),
    )


def _cpu_on(vcpus: Vcpus, target: int | None, *, psci01: bool) -> int | None:
    """PSCI CPU_ON's answer; powers the target on when it succeeds [src psci.c]."""
    if target is None:
        return None
    if target & ~_MPIDR_HWID_BITMASK:
        return PSCI_INVALID_PARAMS
    index = vcpus.by_mpidr.get(target)
    if index is None:
        return PSCI_INVALID_PARAMS
    if vcpus.on[index]:
        return PSCI_INVALID_PARAMS if psci01 else PSCI_ALREADY_ON
    vcpus.on[index] = True
    return 0


def _affinity_info(vcpus: Vcpus, target: int | None, level: int | None) -> int | None:
    if target is None:
        return None
    if target & ~_MPIDR_HWID_BITMASK:
        return PSCI_INVALID_PARAMS
    if level is None:
        return None
    if level > 3:
        return PSCI_INVALID_PARAMS
    mask = _MPIDR_HWID_BITMASK & ~((1 << (level * 8)) - 1)
    target &= mask
    matching = 0
    for index, mpidr in enumerate(vcpus.mpidrs):
        if mpidr & mask == target:
            matching += 1
            if vcpus.on[index]:
                return 0  # ON
    return PSCI_INVALID_PARAMS if matching == 0 else 1  # OFF


def psci_call(vm: KvmVm, c: GuestCall) -> CallResult:
    """kvm_psci_call: what the VM's PSCI version serves, by the gates of kernel.calls [src]."""
    fid = c.fid
    if fid & _PSCI_64BIT and c.aarch32:
        return not_supported(c, "64-bit PSCI function from an AArch32 vCPU", "psci")
    call = PSCI_CALLS.get(fid)
    if call is not None and vm.serves(call):
        return HANDLERS[fid](vm, c)
    return not_supported(c, _refusal(vm, fid, call), "psci")


def _refusal(vm: KvmVm, fid: int, call: KvmCall | None) -> str:
    """Why KVM's PSCI code answers NOT_SUPPORTED for ``fid`` on this VM."""
    major, minor = vm.psci_version
    if (major, minor) == (0, 1):
        return f"{smccc.format_id(fid)} is not served by KVM's PSCI 0.1"
    gate = None if call is None else call.gate
    # For a call the kernel has but this VM's setup does not open, say what is
    # missing; RESET2 and OFF2 keep the two wordings simulate has always printed.
    if (
        call is not None
        and isinstance(gate, PsciVersion)
        and major == 1
        and gate.implemented_by(vm.profile)
    ):
        short = call.name.removesuffix("_64")  # both widths share the wording
        need = f"PSCI {gate.first[0]}.{gate.first[1]}"
        if (major, minor) < gate.first and gate.kernel_feature is not None:
            return f"{short} needs {need} (the VM has {major}.{minor})"
        if (major, minor) < gate.first:
            return f"{short} needs {need} or later"
        if gate.capability is not None:
            return f"{short} needs {gate.capability}"
    # KVM's PSCI 0.1 IDs have no PSCI name: they are not SMCCC function IDs.
    what = (
        f"PSCI {call.name}" if call is not None and fid not in LEGACY_PSCI else smccc.format_id(fid)
    )
    return f"{what} is not implemented by KVM (PSCI {major}.{minor})"


def _psci_0_1_cpu_off(vm: KvmVm, c: GuestCall) -> CallResult:
    return answer(c, "psci", "KVM PSCI 0.1 CPU_OFF: the vCPU stops", (0, 0, 0, 0))


def _psci_0_1_cpu_on(vm: KvmVm, c: GuestCall) -> CallResult:
    val = _cpu_on(vm.vcpus, c.x1, psci01=True)
    return answer(c, "psci", "KVM PSCI 0.1 CPU_ON", (val, 0, 0, 0))


def _version(vm: KvmVm, c: GuestCall) -> CallResult:
    major, minor = vm.psci_version
    return answer(c, "psci", f"PSCI_VERSION: {major}.{minor}", ((major << 16) | minor, 0, 0, 0))


def _cpu_suspend(vm: KvmVm, c: GuestCall) -> CallResult:
    name = PSCI_CALLS[c.fid].name
    return answer(c, "psci", f"PSCI {name}: a WFI; 0 on wake-up", (0, 0, 0, 0))


def _cpu_off_call(vm: KvmVm, c: GuestCall) -> CallResult:
    return answer(c, "psci", "PSCI CPU_OFF: the vCPU stops until a CPU_ON", (0, 0, 0, 0))


def _cpu_on_call(vm: KvmVm, c: GuestCall) -> CallResult:
    x1, _, _ = _psci_args(c)
    val = _cpu_on(vm.vcpus, x1, psci01=False)
    return answer(c, "psci", f"PSCI {PSCI_CALLS[c.fid].name}", (val, 0, 0, 0))


def _affinity_info_call(vm: KvmVm, c: GuestCall) -> CallResult:
    x1, x2, _ = _psci_args(c)
    name = PSCI_CALLS[c.fid].name
    return answer(c, "psci", f"PSCI {name}", (_affinity_info(vm.vcpus, x1, x2), 0, 0, 0))


def _migrate_info_type(vm: KvmVm, c: GuestCall) -> CallResult:
    return answer(
        c, "psci", "PSCI MIGRATE_INFO_TYPE: 2 (MP or no Trusted OS)", (PSCI_TOS_MP, 0, 0, 0)
    )


def _system_off(vm: KvmVm, c: GuestCall) -> CallResult:
    return _system_event(vm, c, "SYSTEM_OFF", KVM_SYSTEM_EVENT_SHUTDOWN, 0)


def _system_reset(vm: KvmVm, c: GuestCall) -> CallResult:
    return _system_event(vm, c, "SYSTEM_RESET", KVM_SYSTEM_EVENT_RESET, 0)


def _features_call(vm: KvmVm, c: GuestCall) -> CallResult:
    return answer(c, "psci", "PSCI_FEATURES", (_features(vm, c), 0, 0, 0))


def _system_suspend(vm: KvmVm, c: GuestCall) -> CallResult:
    x1, x2, x3 = _psci_args(c)
    # The exit leaves every register as the guest set it, except that the SMC32 ID
    # from AArch64 narrows x1-x3 to 32 bits first; type 5, ndata 0 [obs 6.1.176,
    # 6.12.95, 7.2.13: the lab's suspend-cap-* scenarios, KVM_CAP_ARM_SYSTEM_SUSPEND on].
    return answer(
        c,
        "psci",
        "PSCI SYSTEM_SUSPEND: KVM_EXIT_SYSTEM_EVENT SUSPEND",
        (c.x0, x1, x2, x3),
        exit="system_event",
        event=(KVM_SYSTEM_EVENT_SUSPEND, 0, 0),
    )


def _system_reset2(vm: KvmVm, c: GuestCall) -> CallResult:
    x1, x2, x3 = _psci_args(c)
    if x1 is None:
        return CallResult(
            "handled",
            c.action,
            "PSCI SYSTEM_RESET2: depends on x1 (type)",
            c.fid,
            "psci",
            exit=None,
            matched=c.matched,
        )
    kind = x1 & _U32
    if kind <= _RESET_TYPE_WARM or kind >= _RESET_TYPE_VENDOR_START:
        # Only x0 is written before this exit [src psci.c].
        return _system_event(
            vm,
            c,
            "SYSTEM_RESET2",
            KVM_SYSTEM_EVENT_RESET,
            KVM_SYSTEM_EVENT_RESET_FLAG_PSCI_RESET2,
            (None, x1, x2, x3),
        )
    return answer(
        c,
        "psci",
        f"PSCI SYSTEM_RESET2: reset type {kind:#x} is invalid",
        (PSCI_INVALID_PARAMS, 0, 0, 0),
    )


def _system_off2(vm: KvmVm, c: GuestCall) -> CallResult:
    x1, x2, _ = _psci_args(c)
    if x1 is None or x2 is None:
        return CallResult(
            "handled",
            c.action,
            "PSCI SYSTEM_OFF2: depends on x1 and x2",
            c.fid,
            "psci",
            exit=None,
            x0=None,
            x1=0,
            x2=0,
            x3=0,
            matched=c.matched,
        )
    kind = x1 & _U32
    if (kind and kind != _OFF2_TYPE_HIBERNATE_OFF) or x2 != 0:
        return answer(
            c,
            "psci",
            "PSCI SYSTEM_OFF2: invalid type or nonzero cookie",
            (PSCI_INVALID_PARAMS, 0, 0, 0),
        )
    return _system_event(
        vm, c, "SYSTEM_OFF2", KVM_SYSTEM_EVENT_SHUTDOWN, KVM_SYSTEM_EVENT_SHUTDOWN_FLAG_PSCI_OFF2
    )


def _features(vm: KvmVm, c: GuestCall) -> int | None:
    """PSCI_FEATURES(x1): 0 (or the call's flags) for each PSCI call this VM serves [src psci.c]."""
    if c.x1 is None:
        return None
    arg = c.x1 & _U32
    if arg & _PSCI_64BIT and c.aarch32:
        return NOT_SUPPORTED
    if arg == SMCCC_VERSION:
        return 0  # PSCI_FEATURES is how a guest learns that SMCCC_VERSION exists
    call = PSCI_CALLS.get(arg)
    if call is None or not vm.serves(call):
        return NOT_SUPPORTED
    return _PSCI_FEATURE_FLAGS.get(arg, 0)


HANDLERS: dict[int, Handler] = {
    KVM_PSCI_FN_CPU_OFF: _psci_0_1_cpu_off,
    KVM_PSCI_FN_CPU_ON: _psci_0_1_cpu_on,
    PSCI_VERSION: _version,
    PSCI_CPU_SUSPEND: _cpu_suspend,
    PSCI_CPU_SUSPEND_64: _cpu_suspend,
    PSCI_CPU_OFF: _cpu_off_call,
    PSCI_CPU_ON: _cpu_on_call,
    PSCI_CPU_ON_64: _cpu_on_call,
    PSCI_AFFINITY_INFO: _affinity_info_call,
    PSCI_AFFINITY_INFO_64: _affinity_info_call,
    PSCI_MIGRATE_INFO_TYPE: _migrate_info_type,
    PSCI_SYSTEM_OFF: _system_off,
    PSCI_SYSTEM_RESET: _system_reset,
    PSCI_FEATURES: _features_call,
    PSCI_SYSTEM_SUSPEND: _system_suspend,
    PSCI_SYSTEM_SUSPEND_64: _system_suspend,
    PSCI_SYSTEM_RESET2: _system_reset2,
    PSCI_SYSTEM_RESET2_64: _system_reset2,
    PSCI_SYSTEM_OFF2: _system_off2,
    PSCI_SYSTEM_OFF2_64: _system_off2,
}
