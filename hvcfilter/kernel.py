"""The emulated KVM/arm64 VM: what a real kernel answers for SMCCC filter installs and calls.

:class:`KvmVm` reproduces, per kernel profile (``profiles.py``), the errno of
every ``KVM_SET_DEVICE_ATTR`` filter install and firmware-register write, and
the result of every guest HVC or SMC: the filter's decision, the firmware
bitmap gates, KVM's in-kernel services (SMCCC arch calls, PSCI, TRNG, PV time,
the KVM vendor calls) and the registers the guest reads back. It is pure and
deterministic: nothing here touches a real kernel, and answers that depend on
the host (random numbers, clocks) or on an argument the caller did not give
are ``None`` rather than guessed. Which IDs KVM serves, and behind which
gate, is data in :mod:`hvcfilter.kvm_calls`, shared with the linter: this
module attaches a handler to each ID there. The filter tree and its install
rules are :mod:`hvcfilter.ranges`. Facts are marked ``[obs]`` where the
reference saw them on a real kernel and ``[src]`` where they come from the
kernel sources (arch/arm64/kvm/{hypercalls,psci,trng,pvtime,handle_exit}.c).
Nothing else in the module compares kernel versions: every difference is a
:class:`~hvcfilter.profiles.KernelProfile` field.
"""

from __future__ import annotations

import errno
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from hvcfilter import kvm_calls, smccc
from hvcfilter.errors import PayloadError, SpecError, errno_name
from hvcfilter.kvm_calls import (
    HVC_FAST_PATH,
    KVM_CALLS,
    KVM_FEATURES,
    KVM_PSCI_FN_CPU_OFF,
    KVM_PSCI_FN_CPU_ON,
    KVM_PTP,
    KVM_UID,
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
    PV_TIME_FEATURES,
    PV_TIME_ST,
    SMCCC_ARCH_FEATURES,
    SMCCC_VERSION,
    TRNG_FEATURES,
    TRNG_GET_UUID,
    TRNG_RND32,
    TRNG_RND64,
    TRNG_VERSION,
    WORKAROUND_1,
    WORKAROUND_2,
    WORKAROUND_3,
    FirmwareBit,
    KvmCall,
    PsciVersion,
)
from hvcfilter.model import Action, VmConfig, parse_psci_version
from hvcfilter.payload import PAD_SIZE, RECORD
from hvcfilter.profiles import LAB_HOST, HostCpu, KernelProfile, get_profile
from hvcfilter.ranges import RangeTree, cover, validation_errno
from hvcfilter.smccc import CONDUITS, MODES, CallKey, Conduit, Mode

__all__ = [
    "FAST_PATH_IDS",
    "CallKey",
    "CallResult",
    "Conduit",
    "ExitKind",
    "InKernelCall",
    "KvmVm",
    "Mode",
    "Outcome",
    "Segment",
    "in_kernel_calls",
]

Outcome: TypeAlias = Literal["handled", "not_supported", "forwarded", "rejected"]
ExitKind: TypeAlias = Literal["none", "hypercall", "system_event"]
SegmentSource: TypeAlias = Literal["reserved", "installed", "none"]

_U32 = 0xFFFF_FFFF
_U64 = 0xFFFF_FFFF_FFFF_FFFF

# uapi kvm.h
KVM_HYPERCALL_EXIT_SMC = 1 << 0
KVM_HYPERCALL_EXIT_16BIT = 1 << 1
KVM_SYSTEM_EVENT_SHUTDOWN = 1
KVM_SYSTEM_EVENT_RESET = 2
KVM_SYSTEM_EVENT_SUSPEND = 5
KVM_SYSTEM_EVENT_RESET_FLAG_PSCI_RESET2 = 1
KVM_SYSTEM_EVENT_SHUTDOWN_FLAG_PSCI_OFF2 = 1

# SMCCC and PSCI return codes (DEN0028, DEN0022).
NOT_SUPPORTED = -1
PSCI_INVALID_PARAMS = -2
PSCI_ALREADY_ON = -4
PSCI_INTERNAL_FAILURE = -6
TRNG_INVALID_PARAMETER = -2
PSCI_TOS_MP = 2  # MIGRATE_INFO_TYPE: Trusted OS is MP or absent

# UUID 28b46fb6-2ec5-11e9-a9ca-4b564d003a74, byte 0 in the low bits of w0 [obs 7.2].
_KVM_UID_WORDS = (0xB66F_B428, 0xE911_C52E, 0x564B_CAA9, 0x743A_004D)
# UUID 0d21e000-4384-11eb-8070-5244554e5a4c packed the same way [obs section 9; trng.c].
_TRNG_UUID_WORDS = (0x00E0_210D, 0xEB11_8443, 0x4452_7080, 0x4C5A_4E55)
_TRNG_VERSION_1_0 = 0x10000
# TRNG_FEATURES answers 0 for the TRNG calls themselves [src trng.c].
_TRNG_IDS = frozenset(call.fid for call in KVM_CALLS if call.service == "trng")
# HVC with these W0 values is answered at EL2, before the filter (see kvm_calls).
FAST_PATH_IDS = HVC_FAST_PATH

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


@dataclass(frozen=True, slots=True)
class CallResult:
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


@dataclass(frozen=True, slots=True)
class Segment:
    """One stretch of the 32-bit function-ID space and what the filter says about it.

    ``action`` None means no entry (the kernel treats it as HANDLE).
    ``order`` is the install order of an installed range (0 = first success).
    """

    first: int
    last: int
    action: Action | None
    source: SegmentSource
    order: int | None = None


@dataclass(slots=True)
class _Call:
    """One call on its way through the pipeline (internal)."""

    x0: int
    fid: int
    x1: int | None
    x2: int | None
    x3: int | None
    conduit: Conduit
    aarch32: bool
    mask: int
    action: Action
    matched: tuple[int, int] | None


_Handler: TypeAlias = Callable[["KvmVm", _Call], CallResult]


@dataclass(frozen=True, slots=True)
class InKernelCall:
    """An ID KVM serves itself, its gate (a firmware-bitmap feature) and its handler."""

    fid: int
    name: str
    service: str
    # (bitmap register name, feature name) as in profiles.BitmapRegister.bits;
    # None: on the default allow-list (reference 3.4).
    gate: tuple[str, str] | None
    handler: _Handler


def _narrow(value: int | None) -> int | None:
    """PSCI's narrowing of x1-x3 for a 32-bit function ID [src psci.c]."""
    return None if value is None else value & _U32


def _result(
    c: _Call,
    service: str,
    reason: str,
    regs: tuple[int | None, int | None, int | None, int | None],
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


def _not_supported(c: _Call, reason: str, service: str | None = None) -> CallResult:
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


# ----------------------------------------------------------------------------- handlers


def _smccc_version(vm: KvmVm, c: _Call) -> CallResult:
    v = vm.profile.smccc_version
    return _result(c, "arch", f"SMCCC_VERSION: KVM reports {v >> 16}.{v & 0xFFFF}", (v, 0, 0, 0))


def _arch_features(vm: KvmVm, c: _Call) -> CallResult:
    if c.x1 is None:
        return _result(c, "arch", "SMCCC_ARCH_FEATURES: answer depends on x1", (None, 0, 0, 0))
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
    return _result(c, "arch", f"SMCCC_ARCH_FEATURES: {why}", (val, 0, 0, 0))


def _pv_time_features(vm: KvmVm, c: _Call) -> CallResult:
    if vm.stolen_time_ipa is None:
        return _result(
            c,
            "pv-time",
            "PV_TIME_FEATURES: no stolen-time IPA configured",
            (NOT_SUPPORTED, 0, 0, 0),
        )
    if c.x1 is None:
        return _result(c, "pv-time", "PV_TIME_FEATURES: answer depends on x1", (None, 0, 0, 0))
    ok = (c.x1 & _U32) in (PV_TIME_FEATURES, PV_TIME_ST)
    return _result(c, "pv-time", "PV_TIME_FEATURES", (0 if ok else NOT_SUPPORTED, 0, 0, 0))


def _pv_time_st(vm: KvmVm, c: _Call) -> CallResult:
    ipa = vm.stolen_time_ipa
    if ipa is None:
        return _result(
            c, "pv-time", "PV_TIME_ST: no stolen-time IPA configured", (NOT_SUPPORTED, 0, 0, 0)
        )
    return _result(c, "pv-time", "PV_TIME_ST: the stolen-time record's IPA", (ipa, 0, 0, 0))


def _kvm_features(vm: KvmVm, c: _Call) -> CallResult:
    x2 = vm.fw_bitmap(3) if vm.profile.kvm_features_x2 else 0
    return _result(
        c,
        "kvm-vendor",
        "KVM_FEATURES: the vendor_hyp firmware bitmap",
        (vm.fw_bitmap(2), 0, x2, 0),
    )


def _kvm_uid(vm: KvmVm, c: _Call) -> CallResult:
    return _result(c, "kvm-vendor", "VENDOR_HYP_CALL_UID: KVM's UID", _KVM_UID_WORDS)


def _kvm_ptp(vm: KvmVm, c: _Call) -> CallResult:
    if not vm.host.arch_counter_clocksource:
        return _result(
            c,
            "kvm-vendor",
            "KVM_PTP: host clocksource is not the arch counter",
            (NOT_SUPPORTED, 0, 0, 0),
        )
    if c.x1 is None or (c.x1 & _U32) in (0, 1):
        # Wall clock and counter values: host time, unknowable here.
        return _result(c, "kvm-vendor", "KVM_PTP: host time (unknown)", (None, None, None, None))
    return _result(c, "kvm-vendor", "KVM_PTP: x1 names no counter", (NOT_SUPPORTED, 0, 0, 0))


def _trng(vm: KvmVm, c: _Call) -> CallResult:
    fid = c.fid
    if fid == TRNG_VERSION:
        return _result(c, "trng", "TRNG_VERSION: 1.0", (_TRNG_VERSION_1_0, 0, 0, 0))
    if fid == TRNG_FEATURES:
        if c.x1 is None:
            return _result(c, "trng", "TRNG_FEATURES: answer depends on x1", (None, 0, 0, 0))
        # The full register is compared, not a u32 [src trng.c].
        ok = c.x1 in _TRNG_IDS
        return _result(c, "trng", "TRNG_FEATURES", (0 if ok else NOT_SUPPORTED, 0, 0, 0))
    if fid == TRNG_GET_UUID:
        return _result(c, "trng", "TRNG_GET_UUID: the Arm TRNG UUID", _TRNG_UUID_WORDS)
    size = 32 if fid == TRNG_RND32 else 64
    name = "TRNG_RND32" if size == 32 else "TRNG_RND64"
    if c.x1 is None:
        return _result(c, "trng", f"{name}: answer depends on x1", (None, None, None, None))
    bits = c.x1 & _U32
    if bits > 3 * size:
        return _result(
            c,
            "trng",
            f"{name}: {bits} bits is over the {3 * size}-bit limit",
            (TRNG_INVALID_PARAMETER, 0, 0, 0),
        )
    # Random data fills the low `bits` bits of x3, then x2, then x1; registers
    # past the request stay zero [src trng.c]. RND32 uses 32 bits per register.
    regs = tuple(None if bits > k * size else 0 for k in (2, 1, 0))
    return _result(c, "trng", f"{name}: {bits} random bits", (0, regs[0], regs[1], regs[2]))


# ----------------------------------------------------------------------------- PSCI


def _psci_system_event(
    c: _Call, name: str, kind: int, data0: int, regs_kept: tuple[int | None, ...] | None = None
) -> CallResult:
    """SYSTEM_OFF/RESET/...: KVM preloads x0 = INTERNAL_FAILURE before the exit [src psci.c]."""
    regs = (
        (PSCI_INTERNAL_FAILURE, 0, 0, 0)
        if regs_kept is None
        else (PSCI_INTERNAL_FAILURE, *regs_kept)
    )
    label = {KVM_SYSTEM_EVENT_SHUTDOWN: "SHUTDOWN", KVM_SYSTEM_EVENT_RESET: "RESET"}[kind]
    return _result(
        c,
        "psci",
        f"PSCI {name}: KVM_EXIT_SYSTEM_EVENT {label}",
        (regs[0], regs[1], regs[2], regs[3]),
        exit="system_event",
        event=(kind, 1, data0),
    )


def _cpu_on(vm: KvmVm, c: _Call, target: int | None, *, psci01: bool) -> int | None:
    """PSCI CPU_ON's answer; powers the target on when it succeeds [src psci.c]."""
    if target is None:
        return None
    if target & ~_MPIDR_HWID_BITMASK:
        return PSCI_INVALID_PARAMS
    index = vm._vcpu_by_mpidr.get(target)
    if index is None:
        return PSCI_INVALID_PARAMS
    if vm._vcpu_on[index]:
        return PSCI_INVALID_PARAMS if psci01 else PSCI_ALREADY_ON
    vm._vcpu_on[index] = True
    return 0


def _affinity_info(vm: KvmVm, target: int | None, level: int | None) -> int | None:
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
    for index, mpidr in enumerate(vm._mpidrs):
        if mpidr & mask == target:
            matching += 1
            if vm._vcpu_on[index]:
                return 0  # ON
    return PSCI_INVALID_PARAMS if matching == 0 else 1  # OFF


def _psci_args(c: _Call) -> tuple[int | None, int | None, int | None]:
    """x1-x3 as KVM's PSCI code reads them: narrowed to 32 bits for a 32-bit ID [src psci.c]."""
    if c.fid & _PSCI_64BIT:
        return c.x1, c.x2, c.x3
    return _narrow(c.x1), _narrow(c.x2), _narrow(c.x3)


def _psci(vm: KvmVm, c: _Call) -> CallResult:
    """kvm_psci_call: what the VM's PSCI version serves, by the gates in kvm_calls [src psci.c]."""
    fid = c.fid
    if fid & _PSCI_64BIT and c.aarch32:
        return _not_supported(c, "64-bit PSCI function from an AArch32 vCPU", "psci")
    call = _PSCI_CALLS.get(fid)
    if call is not None and vm._serves(call):
        return _HANDLERS[fid](vm, c)
    return _not_supported(c, _psci_refusal(vm, fid, call), "psci")


def _psci_refusal(vm: KvmVm, fid: int, call: KvmCall | None) -> str:
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


def _psci_0_1_cpu_off(vm: KvmVm, c: _Call) -> CallResult:
    return _result(c, "psci", "KVM PSCI 0.1 CPU_OFF: the vCPU stops", (0, 0, 0, 0))


def _psci_0_1_cpu_on(vm: KvmVm, c: _Call) -> CallResult:
    val = _cpu_on(vm, c, c.x1, psci01=True)
    return _result(c, "psci", "KVM PSCI 0.1 CPU_ON", (val, 0, 0, 0))


def _psci_version(vm: KvmVm, c: _Call) -> CallResult:
    major, minor = vm.psci_version
    return _result(c, "psci", f"PSCI_VERSION: {major}.{minor}", ((major << 16) | minor, 0, 0, 0))


def _psci_cpu_suspend(vm: KvmVm, c: _Call) -> CallResult:
    name = _PSCI_CALLS[c.fid].name
    return _result(c, "psci", f"PSCI {name}: a WFI; 0 on wake-up", (0, 0, 0, 0))


def _psci_cpu_off(vm: KvmVm, c: _Call) -> CallResult:
    return _result(c, "psci", "PSCI CPU_OFF: the vCPU stops until a CPU_ON", (0, 0, 0, 0))


def _psci_cpu_on(vm: KvmVm, c: _Call) -> CallResult:
    x1, _, _ = _psci_args(c)
    val = _cpu_on(vm, c, x1, psci01=False)
    return _result(c, "psci", f"PSCI {_PSCI_CALLS[c.fid].name}", (val, 0, 0, 0))


def _psci_affinity_info(vm: KvmVm, c: _Call) -> CallResult:
    x1, x2, _ = _psci_args(c)
    name = _PSCI_CALLS[c.fid].name
    return _result(c, "psci", f"PSCI {name}", (_affinity_info(vm, x1, x2), 0, 0, 0))


def _psci_migrate_info_type(vm: KvmVm, c: _Call) -> CallResult:
    return _result(
        c, "psci", "PSCI MIGRATE_INFO_TYPE: 2 (MP or no Trusted OS)", (PSCI_TOS_MP, 0, 0, 0)
    )


def _psci_system_off(vm: KvmVm, c: _Call) -> CallResult:
    return _psci_system_event(c, "SYSTEM_OFF", KVM_SYSTEM_EVENT_SHUTDOWN, 0)


def _psci_system_reset(vm: KvmVm, c: _Call) -> CallResult:
    return _psci_system_event(c, "SYSTEM_RESET", KVM_SYSTEM_EVENT_RESET, 0)


def _psci_features_call(vm: KvmVm, c: _Call) -> CallResult:
    return _result(c, "psci", "PSCI_FEATURES", (_psci_features(vm, c), 0, 0, 0))


def _psci_system_suspend(vm: KvmVm, c: _Call) -> CallResult:
    x1, x2, x3 = _psci_args(c)
    # The exit leaves every register as the guest set it (x1-x3 narrowed).
    return _result(
        c,
        "psci",
        "PSCI SYSTEM_SUSPEND: KVM_EXIT_SYSTEM_EVENT SUSPEND",
        (c.x0, x1, x2, x3),
        exit="system_event",
        event=(KVM_SYSTEM_EVENT_SUSPEND, 0, 0),
    )


def _psci_system_reset2(vm: KvmVm, c: _Call) -> CallResult:
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
        return _psci_system_event(
            c,
            "SYSTEM_RESET2",
            KVM_SYSTEM_EVENT_RESET,
            KVM_SYSTEM_EVENT_RESET_FLAG_PSCI_RESET2,
            (x1, x2, x3),
        )
    return _result(
        c,
        "psci",
        f"PSCI SYSTEM_RESET2: reset type {kind:#x} is invalid",
        (PSCI_INVALID_PARAMS, 0, 0, 0),
    )


def _psci_system_off2(vm: KvmVm, c: _Call) -> CallResult:
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
        return _result(
            c,
            "psci",
            "PSCI SYSTEM_OFF2: invalid type or nonzero cookie",
            (PSCI_INVALID_PARAMS, 0, 0, 0),
        )
    return _psci_system_event(
        c, "SYSTEM_OFF2", KVM_SYSTEM_EVENT_SHUTDOWN, KVM_SYSTEM_EVENT_SHUTDOWN_FLAG_PSCI_OFF2
    )


def _psci_features(vm: KvmVm, c: _Call) -> int | None:
    """PSCI_FEATURES(x1): 0 (or the call's flags) for each PSCI call this VM serves [src psci.c]."""
    if c.x1 is None:
        return None
    arg = c.x1 & _U32
    if arg & _PSCI_64BIT and c.aarch32:
        return NOT_SUPPORTED
    if arg == SMCCC_VERSION:
        return 0  # PSCI_FEATURES is how a guest learns that SMCCC_VERSION exists
    call = _PSCI_CALLS.get(arg)
    if call is None or not vm._serves(call):
        return NOT_SUPPORTED
    return _PSCI_FEATURE_FLAGS.get(arg, 0)


# Each ID of kvm_calls.KVM_CALLS and the function that answers it here.
_HANDLERS: dict[int, _Handler] = {
    SMCCC_VERSION: _smccc_version,
    SMCCC_ARCH_FEATURES: _arch_features,
    TRNG_VERSION: _trng,
    TRNG_FEATURES: _trng,
    TRNG_GET_UUID: _trng,
    TRNG_RND32: _trng,
    TRNG_RND64: _trng,
    PV_TIME_FEATURES: _pv_time_features,
    PV_TIME_ST: _pv_time_st,
    KVM_FEATURES: _kvm_features,
    KVM_UID: _kvm_uid,
    KVM_PTP: _kvm_ptp,
    KVM_PSCI_FN_CPU_OFF: _psci_0_1_cpu_off,
    KVM_PSCI_FN_CPU_ON: _psci_0_1_cpu_on,
    PSCI_VERSION: _psci_version,
    PSCI_CPU_SUSPEND: _psci_cpu_suspend,
    PSCI_CPU_SUSPEND_64: _psci_cpu_suspend,
    PSCI_CPU_OFF: _psci_cpu_off,
    PSCI_CPU_ON: _psci_cpu_on,
    PSCI_CPU_ON_64: _psci_cpu_on,
    PSCI_AFFINITY_INFO: _psci_affinity_info,
    PSCI_AFFINITY_INFO_64: _psci_affinity_info,
    PSCI_MIGRATE_INFO_TYPE: _psci_migrate_info_type,
    PSCI_SYSTEM_OFF: _psci_system_off,
    PSCI_SYSTEM_RESET: _psci_system_reset,
    PSCI_FEATURES: _psci_features_call,
    PSCI_SYSTEM_SUSPEND: _psci_system_suspend,
    PSCI_SYSTEM_SUSPEND_64: _psci_system_suspend,
    PSCI_SYSTEM_RESET2: _psci_system_reset2,
    PSCI_SYSTEM_RESET2_64: _psci_system_reset2,
    PSCI_SYSTEM_OFF2: _psci_system_off2,
    PSCI_SYSTEM_OFF2_64: _psci_system_off2,
}
# PSCI calls are gated by version and reached through the allow-list (kvm_psci_call);
# the others are matched exactly, behind a firmware bit or none.
_PSCI_CALLS: dict[int, KvmCall] = {
    call.fid: call for call in KVM_CALLS if isinstance(call.gate, PsciVersion)
}


def _bitmap_gate(call: KvmCall) -> tuple[str, str] | None:
    gate = call.gate
    return (gate.register, gate.feature) if isinstance(gate, FirmwareBit) else None


# A KeyError here means kvm_calls lists a call that has no handler.
_IN_KERNEL: dict[int, InKernelCall] = {
    call.fid: InKernelCall(
        call.fid, call.name, call.service, _bitmap_gate(call), _HANDLERS[call.fid]
    )
    for call in KVM_CALLS
    if call.fid not in _PSCI_CALLS
}


def in_kernel_calls() -> dict[int, InKernelCall]:
    """The IDs KVM serves by exact match (PSCI is served by the allow-list rule instead)."""
    return dict(_IN_KERNEL)


# ----------------------------------------------------------------------------- the VM


class KvmVm:
    """One emulated KVM VM on a given kernel profile.

    ``nr_vcpus`` vCPUs exist from the start; vCPU ``i`` has the MPIDR
    affinity KVM gives it (Aff0 = i for i < 16). Calls come from vCPU 0,
    which is always running; the others start powered off when
    ``secondaries_off`` (``KVM_ARM_VCPU_POWER_OFF``, as QEMU and the lab do).
    ``psci_0_2`` is the ``KVM_ARM_VCPU_PSCI_0_2`` vCPU feature;
    ``system_suspend`` is ``KVM_CAP_ARM_SYSTEM_SUSPEND``; ``stolen_time_ipa``
    the PV-time attribute; ``protected`` a pKVM protected VM.

    Raises:
        UnknownProfileError: ``kernel`` names no profile.
        ValueError: an option is out of range or the profile lacks it.
    """

    def __init__(
        self,
        kernel: str | KernelProfile | None = None,
        *,
        nr_vcpus: int = 1,
        secondaries_off: bool = True,
        psci_0_2: bool = True,
        system_suspend: bool = False,
        stolen_time_ipa: int | None = None,
        protected: bool = False,
        host: HostCpu = LAB_HOST,
    ) -> None:
        self.profile: KernelProfile = (
            kernel if isinstance(kernel, KernelProfile) else get_profile(kernel)
        )
        if not 1 <= nr_vcpus <= 4096:
            raise ValueError(f"nr_vcpus={nr_vcpus} is outside 1..4096")
        if protected and self.profile.protected_filter_errno is None:
            raise ValueError(f"kernel profile {self.profile.name} has no protected VM type")
        if stolen_time_ipa is not None and not 0 <= stolen_time_ipa <= _U64:
            raise ValueError("stolen_time_ipa must be a 64-bit address")
        self.host = host
        self.psci_0_2 = psci_0_2
        self.system_suspend = system_suspend
        self.stolen_time_ipa = stolen_time_ipa
        self.protected = protected
        # MPIDR affinity of vCPU i [src sys_regs.c reset_mpidr].
        self._mpidrs = [
            (i & 0xF) | ((i >> 4) & 0xFF) << 8 | ((i >> 12) & 0xFF) << 16 for i in range(nr_vcpus)
        ]
        self._vcpu_by_mpidr = {m: i for i, m in enumerate(self._mpidrs)}
        self._vcpu_on = [i == 0 or not secondaries_off for i in range(nr_vcpus)]
        self._bitmaps = {reg.index: reg.default for reg in self.profile.bitmap_registers}
        major, minor = self.profile.psci_version_default
        self._psci_reg = (major << 16) | minor
        self._ran = False
        self._vcpus_created = False
        # The filter tree: reserved and installed ranges, each with (action, install
        # order); the order is None for a reserved range. Plain tuples, not Segments:
        # they are built once per install, and a frozen dataclass costs ~10x more.
        self._tree: RangeTree[tuple[Action, int | None]] = RangeTree()
        self._installed = 0
        self._reserved_inserted = False
        if self.profile.reserved_insertion == "create":
            self._insert_reserved()
        self._cache: dict[CallKey, CallResult] = {}

    # ------------------------------------------------------------------ configuration

    @classmethod
    def from_config(
        cls, profile: str | KernelProfile | None, vm_config: VmConfig, **options: Any
    ) -> KvmVm:
        """A VM configured by a spec's ``[vm]`` table (PSCI version, bitmaps by register).

        PSCI 0.1 is what a vCPU initialised without ``KVM_ARM_VCPU_PSCI_0_2``
        has (the register refuses 0.1 otherwise), so ``psci_version = "0.1"``
        selects such vCPUs unless ``psci_0_2`` is given.

        Raises:
            UnknownProfileError: ``profile`` names no profile.
            SpecError: the kernel refuses a setting (the message names the errno).
        """
        options.setdefault("psci_0_2", vm_config.psci_version != (0, 1))
        vm = cls(profile, **options)
        if vm_config.psci_version is not None:
            major, minor = vm_config.psci_version
            err = vm.set_psci_version((major, minor))
            if err:
                raise SpecError(
                    f"kernel {vm.profile.name} refuses PSCI version {major}.{minor}: "
                    f"{errno_name(err)}"
                )
        for index, value in sorted(vm_config.bitmaps.items()):
            err = vm.set_fw_bitmap(index, value)
            if err:
                raise SpecError(
                    f"kernel {vm.profile.name} refuses firmware bitmap register {index} "
                    f"= {value:#x}: {errno_name(err)}"
                )
        return vm

    def create_vcpus(self) -> None:
        """``KVM_CREATE_VCPU`` and ``VCPU_INIT``: filters stay writable until the first run.

        [obs 2.1] installs after vCPU creation succeed; only ``KVM_RUN`` locks.
        """
        self._vcpus_created = True

    def run(self) -> None:
        """The first ``KVM_RUN`` of any vCPU: the filter and the bitmaps lock (EBUSY after)."""
        self._vcpus_created = True
        self._ran = True

    @property
    def has_run(self) -> bool:
        """Whether any vCPU has entered ``KVM_RUN``."""
        return self._ran

    # ------------------------------------------------------------------ filter installs

    def set_filter(
        self, base: int, nr_functions: int, action: int, pad: bytes = bytes(PAD_SIZE)
    ) -> int:
        """``KVM_SET_DEVICE_ATTR`` of one filter range: 0 or the errno the kernel returns.

        Checks in the kernel's order (reference 2.1): pad, then the 32-bit
        end and the action byte, then EBUSY after the first run, then the
        lazy insertion of the reserved ranges, then overlap (EEXIST).

        Raises:
            ValueError: a field does not fit its C type (u32, u32, u8, 15 bytes).
        """
        if not (0 <= base <= _U32 and 0 <= nr_functions <= _U32 and 0 <= action <= 0xFF):
            raise ValueError("base and nr_functions must fit u32 and action u8")
        if len(pad) != PAD_SIZE:
            raise ValueError(f"pad must be {PAD_SIZE} bytes, got {len(pad)}")
        prof = self.profile
        if self.protected and prof.protected_filter_errno is not None:
            return prof.protected_filter_errno  # [obs section 10]
        # EINVAL for the pad wins over EEXIST and EBUSY [obs 7.1]; 7.2 rejects
        # (0, 0) before the EBUSY test [obs section 10].
        err = validation_errno(prof, base, nr_functions, action, pad)
        if err:
            return err
        if self._ran:
            return errno.EBUSY  # VM-wide, also for would-be EEXIST [obs 7.1]
        if not self._reserved_inserted:
            self._insert_reserved()  # stays inserted even if this SET fails [src]
        end = (base + nr_functions - 1) & _U32  # u32 arithmetic: (0, 0) is the full range [src]
        if self._tree.conflict(base, end) >= 0:
            return errno.EEXIST
        self._tree.insert(base, end, (Action(action), self._installed))
        self._installed += 1
        self._cache.clear()
        return 0

    def set_filter_record(self, record: bytes) -> int:
        """``KVM_SET_DEVICE_ATTR`` with one 24-byte ``struct kvm_smccc_filter``.

        Raises:
            PayloadError: the record is not 24 bytes.
        """
        try:
            base, nr, action, pad = RECORD.unpack(record)
        except struct.error as e:
            raise PayloadError(f"a filter record is 24 bytes, got {len(record)}") from e
        return self.set_filter(base, nr, action, pad)

    def set_device_attr(self, group: int, attr: int, record: bytes) -> int:
        """``KVM_SET_DEVICE_ATTR`` on the VM fd: ENXIO unless group 0, attr 0 [obs 7.1].

        Raises:
            PayloadError: the record is not 24 bytes.
        """
        if group != 0 or attr != 0:
            return errno.ENXIO
        return self.set_filter_record(record)

    @staticmethod
    def has_device_attr(group: int, attr: int) -> int:
        """``KVM_HAS_DEVICE_ATTR``: 0 for (0, 0), ENXIO otherwise [obs 7.1]."""
        return 0 if group == 0 and attr == 0 else errno.ENXIO

    @staticmethod
    def get_device_attr(group: int, attr: int) -> int:
        """``KVM_GET_DEVICE_ATTR``: the filter is write-only, EINVAL [obs 7.1]."""
        del group, attr
        return errno.EINVAL

    def _insert_reserved(self) -> None:
        for first, last in self.profile.reserved_ranges:
            self._tree.insert(first, last, (Action.HANDLE, None))
        self._reserved_inserted = True

    @property
    def reserved_inserted(self) -> bool:
        """Whether the reserved ranges are in the filter tree yet (internal state, 6.7+ lazy)."""
        return self._reserved_inserted

    # ------------------------------------------------------------------ the effective table

    def lookup(self, fid: int) -> Action | None:
        """The filter's entry for a 32-bit ID; None where no range covers it.

        Reserved ranges are HANDLE.

        O(log n). The reserved ranges count even before their lazy insertion:
        they always behave as HANDLE. Only W0 counts, as for a call.
        """
        fid &= _U32
        tree = self._tree
        i = tree.find(fid)
        if i >= 0:
            return tree.values[i][0]
        for first, last in self.profile.reserved_ranges:
            if first <= fid <= last:
                return Action.HANDLE
        return None

    def installed_ranges(self) -> tuple[Segment, ...]:
        """The ranges successfully installed, in ID order (reserved ranges excluded)."""
        return tuple(s for s in self._entries() if s.source == "installed")

    def _entries(self) -> list[Segment]:
        entries = [
            Segment(first, last, action, "reserved" if order is None else "installed", order)
            for first, last, (action, order) in self._tree.items()
        ]
        if not self._reserved_inserted:
            # Not in the tree yet (6.7+ lazy insertion), but they behave as HANDLE already.
            entries += [
                Segment(f, la, Action.HANDLE, "reserved") for f, la in self.profile.reserved_ranges
            ]
            entries.sort(key=lambda s: s.first)
        return entries

    def effective_segments(self) -> Iterator[Segment]:
        """The whole 32-bit space in order: reserved, installed and uncovered stretches."""
        for first, last, seg in cover((s.first, s.last, s) for s in self._entries()):
            yield seg if seg is not None else Segment(first, last, None, "none")

    # ------------------------------------------------------------------ firmware registers

    def set_fw_bitmap(self, reg: int, value: int) -> int:
        """``KVM_SET_ONE_REG`` of firmware bitmap register ``reg``: 0 or the errno.

        ENOENT for a register the profile lacks, EINVAL for an unsupported
        bit (checked first, also after the run), EBUSY for a different value
        after the first run; the same value is accepted [obs section 9].

        Raises:
            ValueError: ``value`` is not a u64.
        """
        if not 0 <= value <= _U64:
            raise ValueError(f"value {value:#x} is not a u64")
        register = self.profile.register(reg)
        if register is None:
            return errno.ENOENT
        if value & ~register.valid_mask:
            return errno.EINVAL
        if self._ran and value != self._bitmaps[reg]:
            return errno.EBUSY
        if value != self._bitmaps[reg]:
            self._bitmaps[reg] = value
            self._cache.clear()
        return 0

    def get_fw_bitmap(self, reg: int) -> tuple[int, int]:
        """``KVM_GET_ONE_REG``: (0, value), or (ENOENT, 0) for a register the profile lacks."""
        if reg not in self._bitmaps:
            return errno.ENOENT, 0
        return 0, self._bitmaps[reg]

    def fw_bitmap(self, reg: int) -> int:
        """The current value of firmware bitmap register ``reg``.

        Raises:
            ValueError: the profile has no such register.
        """
        if reg not in self._bitmaps:
            known = ", ".join(f"{r.index} {r.name}" for r in self.profile.bitmap_registers)
            raise ValueError(f"kernel {self.profile.name} has no bitmap register {reg} ({known})")
        return self._bitmaps[reg]

    def feature_enabled(self, register: str, feature: str) -> bool:
        """Whether a firmware-bitmap feature bit is set (False where the profile lacks it)."""
        reg = self.profile.register_by_name(register)
        if reg is None or feature not in reg.bits:
            return False
        return kvm_calls.firmware_bit_set(self.profile, self._bitmaps, register, feature)

    def _serves(self, call: KvmCall) -> bool:
        """Whether this VM's setup opens ``call``'s gate (see :func:`kvm_calls.serves`)."""
        return kvm_calls.serves(
            call,
            self.profile,
            self.psci_version,
            self._bitmaps,
            system_suspend=self.system_suspend,
        )

    def set_psci_version(self, version: str | tuple[int, int] | int) -> int:
        """``KVM_SET_ONE_REG`` of the PSCI_VERSION register: 0 or EINVAL.

        ``version`` is ``"1.1"``, ``(1, 1)`` or the raw register value. 0.1
        needs a vCPU without ``PSCI_0_2``; the others need it, and only the
        profile's versions exist. The kernel does not lock this register at
        the first run [src hypercalls.c; UNVERIFIED on a real kernel].

        Raises:
            ValueError: ``version`` cannot be parsed.
        """
        if isinstance(version, str):
            major, minor = parse_psci_version(version)
        elif isinstance(version, tuple):
            major, minor = version
        else:
            major, minor = version >> 16, version & 0xFFFF
            if version >> 32:
                return errno.EINVAL
        if (major, minor) not in self.profile.psci_versions_accepted:
            return errno.EINVAL
        if ((major, minor) == (0, 1)) == self.psci_0_2:
            return errno.EINVAL
        self._psci_reg = (major << 16) | minor
        self._cache.clear()
        return 0

    @property
    def psci_version(self) -> tuple[int, int]:
        """The VM's PSCI version as the register reads (0.1 without ``PSCI_0_2``)."""
        if not self.psci_0_2:
            return (0, 1)
        return self._psci_reg >> 16, self._psci_reg & 0xFFFF

    # ------------------------------------------------------------------ guest calls

    def call(
        self,
        x0: int,
        x1: int | None = None,
        x2: int | None = None,
        x3: int | None = None,
        *,
        conduit: Conduit = "hvc",
        imm: int = 0,
        mode: Mode = "a64",
    ) -> CallResult:
        """One guest HVC or SMC; implies :meth:`run`. x1-x3 None = unknown (a trace).

        AArch32 registers are 32 bits: higher bits of the inputs are dropped.
        Calls run on vCPU 0; a successful CPU_ON powers its target on.

        Raises:
            ValueError: a bad conduit, mode, immediate or register value.
        """
        if x1 is None and x2 is None and x3 is None:
            return self.resolve(x0, conduit, imm, mode)
        self._ran = True
        return self._evaluate(x0, x1, x2, x3, conduit, imm, mode)

    def resolve(
        self, x0: int, conduit: Conduit = "hvc", imm: int = 0, mode: Mode = "a64"
    ) -> CallResult:
        """A call with x1-x3 unknown, memoised per VM; implies :meth:`run`.

        Raises:
            ValueError: a bad conduit, mode, immediate or register value.
        """
        key = (x0, conduit, imm, mode)
        hit = self._cache.get(key)
        if hit is None:
            self._ran = True
            hit = self._cache[key] = self._evaluate(x0, None, None, None, conduit, imm, mode)
        return hit

    def call_batch(self, calls: Iterable[CallKey]) -> list[CallResult]:
        """Results for many ``(x0, conduit, imm, mode)`` calls with unknown x1-x3, in order.

        Raises:
            ValueError: a bad conduit, mode, immediate or register value.
        """
        self._ran = True
        get = self._cache.get
        resolve = self.resolve
        return [get(c) or resolve(*c) for c in calls]

    def tally(self, calls: Iterable[CallKey]) -> Counter[CallResult]:
        """How many calls got each result: the fastest way to replay a long trace.

        Raises:
            ValueError: a bad conduit, mode, immediate or register value.
        """
        self._ran = True
        out: Counter[CallResult] = Counter()
        for key, count in Counter(calls).items():
            out[self.resolve(*key)] += count
        return out

    def _evaluate(  # noqa: PLR0917 - the registers of one call, in order
        self,
        x0: int,
        x1: int | None,
        x2: int | None,
        x3: int | None,
        conduit: Conduit,
        imm: int,
        mode: Mode,
    ) -> CallResult:
        if conduit not in CONDUITS:
            raise ValueError(f"conduit must be 'hvc' or 'smc', got {conduit!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not 0 <= imm <= 0xFFFF:
            raise ValueError(f"imm {imm:#x} is outside 0..0xFFFF")
        for name, value in (("x0", x0), ("x1", x1), ("x2", x2), ("x3", x3)):
            if value is not None and not 0 <= value <= _U64:
                raise ValueError(f"{name}={value:#x} is not a 64-bit register value")
        aarch32 = mode != "a64"
        mask = _U32 if aarch32 else _U64
        if aarch32:
            x0 &= _U32
            x1, x2, x3 = (None if r is None else r & _U32 for r in (x1, x2, x3))
        fid = x0 & _U32  # only W0 is the function ID [obs 1.4]
        if conduit == "hvc" and fid in FAST_PATH_IDS:
            # Answered at EL2: x0 = x1 = 0, x2/x3 untouched, no exit, no trace [obs section 9].
            return CallResult(
                "handled",
                None,
                "ARCH_WORKAROUND fast path at EL2 (HVC): no exit to the host",
                fid,
                "arch",
                x0=0,
                x1=0,
                x2=x2,
                x3=x3,
            )
        if conduit == "smc" and not aarch32 and imm:
            # DEN0028 2.9: nonzero SMC immediates are reserved; x1-x3 untouched [obs 3.1].
            return CallResult(
                "rejected",
                None,
                f"AArch64 SMC #{imm:#x}: a nonzero immediate is rejected before the filter",
                fid,
                None,
                x0=_U64,
                x1=x1,
                x2=x2,
                x3=x3,
            )
        tree = self._tree
        i = tree.find(fid)
        matched = (tree.firsts[i], tree.lasts[i]) if i >= 0 else None
        action, order = tree.values[i] if i >= 0 else (Action.HANDLE, None)
        c = _Call(x0, fid, x1, x2, x3, conduit, aarch32, mask, action, matched)
        where = "" if matched is None else self._describe(matched, installed=order is not None)
        if action is Action.DENY:
            return _not_supported(c, f"{where} denies it")
        if action is Action.FWD_TO_USER:
            # 16BIT is set only for a 16-bit trapped instruction; every HVC/SMC
            # encoding is 32-bit, so it never is [src hypercalls.c; obs 1.4].
            return CallResult(
                "forwarded",
                action,
                f"{where} forwards it to userspace",
                fid,
                None,
                exit="hypercall",
                nr=fid,
                flags=KVM_HYPERCALL_EXIT_SMC if conduit == "smc" else 0,
                matched=matched,
            )
        # HANDLE (explicit or no entry): the bitmaps and the allow-list decide [src; obs 3.3].
        prefix = f"{where} leaves it to KVM; " if order is not None else ""
        known = _IN_KERNEL.get(fid)
        if known is not None:
            if known.gate is not None and not self.feature_enabled(*known.gate):
                reg, feature = known.gate
                label = feature.upper().replace("-", "_")
                return _not_supported(
                    c, f"{prefix}{label} disabled in the {reg} firmware bitmap", known.service
                )
            return known.handler(self, c)
        if kvm_calls.default_allowed(fid):
            # Allowed IDs without a handler of their own go to KVM's PSCI code [src hypercalls.c].
            return _psci(self, c)
        label = smccc.catalogue().label(fid)
        return _not_supported(c, f"{prefix}nothing in KVM implements or enables {label}")

    @staticmethod
    def _describe(matched: tuple[int, int], *, installed: bool) -> str:
        span = smccc.IdRange(*matched)
        if not installed:
            return f"reserved range {span}"
        return f"filter range {span}"
