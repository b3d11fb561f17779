"""What KVM/arm64 answers in the kernel itself, as data: each call, its gate, the allow-list.

:data:`KVM_CALLS` lists every function ID that KVM serves without exiting
to the VMM: its name, its service family, the gate that must be open for
KVM to answer it, and the one line the linter prints about it. A gate is
:class:`Always` (the arch calls on the default allow-list), a
:class:`FirmwareBit` (reference 3.5) or a :class:`PsciVersion` range of the
VM's PSCI version, which some calls also tie to a kernel feature or a VM
capability (reference 3.7); :func:`serves` is the one place a gate is
evaluated. Around the table: the HVC fast path answered at EL2 before the
filter (:data:`HVC_FAST_PATH`, reference 3.1 step 1), the default allow-list
for IDs without a bitmap bit (:func:`default_allowed`, reference 3.4) and
KVM's private PSCI 0.1 IDs (:data:`LEGACY_PSCI`). Sources: reference
sections 3.1, 3.4-3.7 and 10; linux arch/arm64/kvm/{hypercalls,psci}.c. The
linter (``checks.kernel_calls``) and the emulator (``kernel.py``, which
attaches a handler to each ID here) both derive from this table, so they
cannot disagree about what KVM answers.
"""

# No `from __future__ import annotations`: NamedTuple compiles string annotations at start.

from collections.abc import Mapping
from typing import Literal, NamedTuple, TypeAlias, assert_never

from hvcfilter import smccc
from hvcfilter.kernel.profiles import KernelProfile

__all__ = [
    "DISCOVERY",
    "HVC_FAST_PATH",
    "KVM_CALLS",
    "KVM_CALLS_BY_ID",
    "KVM_FEATURES",
    "KVM_PSCI_FN_BASE",
    "KVM_PSCI_FN_CPU_OFF",
    "KVM_PSCI_FN_CPU_ON",
    "KVM_PTP",
    "KVM_UID",
    "LEGACY_PSCI",
    "PSCI_AFFINITY_INFO",
    "PSCI_AFFINITY_INFO_64",
    "PSCI_CPU_OFF",
    "PSCI_CPU_ON",
    "PSCI_CPU_ON_64",
    "PSCI_CPU_SUSPEND",
    "PSCI_CPU_SUSPEND_64",
    "PSCI_FEATURES",
    "PSCI_FUNCTION_NUMBER_MAX",
    "PSCI_MIGRATE_INFO_TYPE",
    "PSCI_SYSTEM_OFF",
    "PSCI_SYSTEM_OFF2",
    "PSCI_SYSTEM_OFF2_64",
    "PSCI_SYSTEM_RESET",
    "PSCI_SYSTEM_RESET2",
    "PSCI_SYSTEM_RESET2_64",
    "PSCI_SYSTEM_SUSPEND",
    "PSCI_SYSTEM_SUSPEND_64",
    "PSCI_VERSION",
    "PV_TIME_FEATURES",
    "PV_TIME_ST",
    "SMCCC_ARCH_FEATURES",
    "SMCCC_VERSION",
    "TRNG_FEATURES",
    "TRNG_GET_UUID",
    "TRNG_RND32",
    "TRNG_RND64",
    "TRNG_VERSION",
    "WORKAROUND_1",
    "WORKAROUND_2",
    "WORKAROUND_3",
    "Always",
    "FirmwareBit",
    "Gate",
    "KvmCall",
    "PsciVersion",
    "ServiceName",
    "default_allowed",
    "firmware_bit_set",
    "in_psci_block",
    "reaches_psci",
    "serves",
]

ServiceName: TypeAlias = Literal["arch", "psci", "trng", "pv-time", "kvm-vendor"]

# Arm Architecture calls (DEN0028).
SMCCC_VERSION = 0x8000_0000
SMCCC_ARCH_FEATURES = 0x8000_0001
WORKAROUND_1 = 0x8000_8000
WORKAROUND_2 = 0x8000_7FFF
WORKAROUND_3 = 0x8000_3FFF
# HVC with these W0 values is answered at EL2 before any exit to the host or
# any filter lookup (hyp entry vectors) [obs 3.1 row 1 and section 9]; by SMC
# they take the normal path.
HVC_FAST_PATH = frozenset({WORKAROUND_1, WORKAROUND_2, WORKAROUND_3})

# Standard hypervisor and vendor-hypervisor calls (reference 3.6).
PV_TIME_FEATURES = 0xC500_0020
PV_TIME_ST = 0xC500_0021
KVM_FEATURES = 0x8600_0000
KVM_PTP = 0x8600_0001
KVM_UID = 0x8600_FF01
TRNG_VERSION = 0x8400_0050
TRNG_FEATURES = 0x8400_0051
TRNG_GET_UUID = 0x8400_0052
TRNG_RND32 = 0x8400_0053
TRNG_RND64 = 0xC400_0053

# PSCI function IDs (DEN0022). "_64" IDs have bit 30 set.
PSCI_VERSION = 0x8400_0000
PSCI_CPU_SUSPEND = 0x8400_0001
PSCI_CPU_SUSPEND_64 = 0xC400_0001
PSCI_CPU_OFF = 0x8400_0002
PSCI_CPU_ON = 0x8400_0003
PSCI_CPU_ON_64 = 0xC400_0003
PSCI_AFFINITY_INFO = 0x8400_0004
PSCI_AFFINITY_INFO_64 = 0xC400_0004
PSCI_MIGRATE_INFO_TYPE = 0x8400_0006
PSCI_SYSTEM_OFF = 0x8400_0008
PSCI_SYSTEM_RESET = 0x8400_0009
PSCI_FEATURES = 0x8400_000A
PSCI_SYSTEM_SUSPEND = 0x8400_000E
PSCI_SYSTEM_SUSPEND_64 = 0xC400_000E
PSCI_SYSTEM_RESET2 = 0x8400_0012
PSCI_SYSTEM_RESET2_64 = 0xC400_0012
PSCI_SYSTEM_OFF2 = 0x8400_0015
PSCI_SYSTEM_OFF2_64 = 0xC400_0015
# The default allow-list sends owner-4 IDs up to this function number to the
# PSCI code (reference 3.4; hypercalls.c kvm_smccc_default_allowed).
PSCI_FUNCTION_NUMBER_MAX = 0x1F
# KVM's own pre-SMCCC PSCI 0.1 IDs (uapi asm/kvm.h KVM_PSCI_FN_BASE + 0..3:
# CPU_SUSPEND, CPU_OFF, CPU_ON, MIGRATE), allow-listed as a block (reference 3.4).
KVM_PSCI_FN_BASE = 0x95C1_BA5E
KVM_PSCI_FN_CPU_OFF = KVM_PSCI_FN_BASE + 1
KVM_PSCI_FN_CPU_ON = KVM_PSCI_FN_BASE + 2
LEGACY_PSCI = smccc.IdRange(KVM_PSCI_FN_BASE, KVM_PSCI_FN_BASE + 3)


# The value types below are named tuples, not dataclasses: `hvcfilter check`
# imports this module at start-up, and four dataclasses cost ~1.2 ms more to
# define (measured, Python 3.11). They are as immutable.


class Always(NamedTuple):
    """Answered whatever the VM's setup: on the default allow-list, outside the bitmaps (3.4)."""


class FirmwareBit(NamedTuple):
    """Answered while a firmware-bitmap feature bit is set (reference 3.5).

    ``register`` is a :class:`~hvcfilter.kernel.profiles.BitmapRegister` name and
    ``feature`` a key of its ``bits``; a profile without them never answers.
    """

    register: str
    feature: str


class PsciVersion(NamedTuple):
    """Answered by KVM's PSCI code while the VM's PSCI version is in ``first..last`` (3.7).

    ``last`` None means every later version. ``kernel_feature`` names the
    profile field a kernel needs to implement the call at all, and
    ``capability`` the VM capability the VMM must enable for it.
    """

    first: tuple[int, int]
    last: tuple[int, int] | None = None
    kernel_feature: Literal["system_off2"] | None = None
    capability: Literal["KVM_CAP_ARM_SYSTEM_SUSPEND"] | None = None

    def implemented_by(self, profile: KernelProfile) -> bool:
        """Whether ``profile``'s kernel has the call at all (any PSCI version, any capability)."""
        if self.kernel_feature is None:
            return True
        if self.kernel_feature == "system_off2":
            return profile.system_off2
        assert_never(self.kernel_feature)


Gate: TypeAlias = Always | FirmwareBit | PsciVersion


class KvmCall(NamedTuple):
    """One function ID KVM answers in the kernel, the gate that opens it, and what it does.

    ``answer`` completes "KVM ..." in the linter's words (``explain``, HVF303).
    """

    fid: int
    name: str
    service: ServiceName
    gate: Gate
    answer: str


# The call that tells a guest which calls of its service KVM implements, by
# service. It answers from what KVM serves the VM (PSCI version, firmware
# bitmaps), never from the filter: a call a table denies or forwards is still
# reported [src psci.c, trng.c, hypercalls.c; obs 6.12.95 and 7.2.13, the
# lab's discovery-under-filter-* and suspend-cap-filter-* scenarios].
# KVM_FEATURES answers with a bitmap of the vendor calls. PV_TIME_FEATURES is
# left out: it answers only once the VMM gave a stolen-time address.
DISCOVERY: dict[str, int] = {
    "psci": PSCI_FEATURES,
    "trng": TRNG_FEATURES,
    "kvm-vendor": KVM_FEATURES,
}

_PSCI_0_2 = PsciVersion((0, 2))
_TRNG = FirmwareBit("std", "trng")
_PV_TIME = FirmwareBit("std_hyp", "pv-time")
_FUNC_FEAT = FirmwareBit("vendor_hyp", "func-feat")
_SHUTDOWN = "exits to the VMM with KVM_EXIT_SYSTEM_EVENT (SHUTDOWN)"
_RESET = "exits to the VMM with KVM_EXIT_SYSTEM_EVENT (RESET)"

# In the order checks.kernel_calls lists them: arch, PSCI (legacy 0.1 first), then gated.
KVM_CALLS: tuple[KvmCall, ...] = (
    # Reserved and allow-listed: no bitmap bit can turn them off (3.4, 3.6).
    KvmCall(
        SMCCC_VERSION, "SMCCC_VERSION", "arch", Always(), "answers SMCCC version 1.1 (0x10001)"
    ),
    KvmCall(
        SMCCC_ARCH_FEATURES,
        "SMCCC_ARCH_FEATURES",
        "arch",
        Always(),
        "answers SMCCC_ARCH_FEATURES queries",
    ),
    # KVM's PSCI 0.1 serves only CPU_OFF and CPU_ON, and only without PSCI_0_2 (3.6).
    KvmCall(
        KVM_PSCI_FN_CPU_OFF,
        "KVM_PSCI_FN_CPU_OFF",
        "psci",
        PsciVersion((0, 1), (0, 1)),
        "powers the vCPU off",
    ),
    KvmCall(
        KVM_PSCI_FN_CPU_ON,
        "KVM_PSCI_FN_CPU_ON",
        "psci",
        PsciVersion((0, 1), (0, 1)),
        "starts a secondary vCPU",
    ),
    # PSCI 0.2 and 1.x, each from the version that introduced it (3.7; psci.c).
    KvmCall(PSCI_VERSION, "PSCI_VERSION", "psci", _PSCI_0_2, "answers the VM's PSCI version"),
    KvmCall(PSCI_CPU_SUSPEND, "CPU_SUSPEND", "psci", _PSCI_0_2, "suspends the vCPU (a WFI)"),
    KvmCall(PSCI_CPU_SUSPEND_64, "CPU_SUSPEND_64", "psci", _PSCI_0_2, "suspends the vCPU (a WFI)"),
    KvmCall(PSCI_CPU_OFF, "CPU_OFF", "psci", _PSCI_0_2, "powers the vCPU off"),
    KvmCall(PSCI_CPU_ON, "CPU_ON", "psci", _PSCI_0_2, "starts a secondary vCPU"),
    KvmCall(PSCI_CPU_ON_64, "CPU_ON_64", "psci", _PSCI_0_2, "starts a secondary vCPU"),
    KvmCall(PSCI_AFFINITY_INFO, "AFFINITY_INFO", "psci", _PSCI_0_2, "reports a vCPU's power state"),
    KvmCall(
        PSCI_AFFINITY_INFO_64,
        "AFFINITY_INFO_64",
        "psci",
        _PSCI_0_2,
        "reports a vCPU's power state",
    ),
    KvmCall(
        PSCI_MIGRATE_INFO_TYPE,
        "MIGRATE_INFO_TYPE",
        "psci",
        _PSCI_0_2,
        "answers 2 (no trusted OS to migrate)",
    ),
    KvmCall(PSCI_SYSTEM_OFF, "SYSTEM_OFF", "psci", _PSCI_0_2, _SHUTDOWN),
    KvmCall(PSCI_SYSTEM_RESET, "SYSTEM_RESET", "psci", _PSCI_0_2, _RESET),
    KvmCall(
        PSCI_FEATURES,
        "PSCI_FEATURES",
        "psci",
        PsciVersion((1, 0)),
        "reports which PSCI calls KVM implements",
    ),
    KvmCall(
        PSCI_SYSTEM_SUSPEND,
        "SYSTEM_SUSPEND",
        "psci",
        PsciVersion((1, 0), capability="KVM_CAP_ARM_SYSTEM_SUSPEND"),
        "exits to the VMM with KVM_EXIT_SYSTEM_EVENT (SUSPEND)",
    ),
    KvmCall(
        PSCI_SYSTEM_SUSPEND_64,
        "SYSTEM_SUSPEND_64",
        "psci",
        PsciVersion((1, 0), capability="KVM_CAP_ARM_SYSTEM_SUSPEND"),
        "exits to the VMM with KVM_EXIT_SYSTEM_EVENT (SUSPEND)",
    ),
    KvmCall(PSCI_SYSTEM_RESET2, "SYSTEM_RESET2", "psci", PsciVersion((1, 1)), _RESET),
    KvmCall(PSCI_SYSTEM_RESET2_64, "SYSTEM_RESET2_64", "psci", PsciVersion((1, 1)), _RESET),
    # SYSTEM_OFF2 exists only on kernels with PSCI 1.3 (section 10).
    KvmCall(
        PSCI_SYSTEM_OFF2,
        "SYSTEM_OFF2",
        "psci",
        PsciVersion((1, 3), kernel_feature="system_off2"),
        _SHUTDOWN,
    ),
    KvmCall(
        PSCI_SYSTEM_OFF2_64,
        "SYSTEM_OFF2_64",
        "psci",
        PsciVersion((1, 3), kernel_feature="system_off2"),
        _SHUTDOWN,
    ),
    # Gated by the firmware bitmaps (3.5): one bit can gate several IDs.
    KvmCall(TRNG_VERSION, "TRNG_VERSION", "trng", _TRNG, "answers TRNG version 1.0"),
    KvmCall(TRNG_FEATURES, "TRNG_FEATURES", "trng", _TRNG, "answers TRNG_FEATURES"),
    KvmCall(TRNG_GET_UUID, "TRNG_GET_UUID", "trng", _TRNG, "answers the TRNG UUID"),
    KvmCall(TRNG_RND32, "TRNG_RND32", "trng", _TRNG, "returns up to 96 random bits"),
    KvmCall(TRNG_RND64, "TRNG_RND64", "trng", _TRNG, "returns up to 192 random bits"),
    KvmCall(PV_TIME_FEATURES, "PV_TIME_FEATURES", "pv-time", _PV_TIME, "answers PV_TIME_FEATURES"),
    KvmCall(
        PV_TIME_ST,
        "PV_TIME_ST",
        "pv-time",
        _PV_TIME,
        "returns the stolen-time record's address",
    ),
    KvmCall(
        KVM_FEATURES,
        "KVM_FEATURES",
        "kvm-vendor",
        _FUNC_FEAT,
        "answers the KVM vendor-hypervisor feature bitmap",
    ),
    KvmCall(
        KVM_UID,
        "VENDOR_HYP_CALL_UID",
        "kvm-vendor",
        _FUNC_FEAT,
        "answers KVM's vendor-hypervisor UID",
    ),
    KvmCall(
        KVM_PTP,
        "KVM_PTP",
        "kvm-vendor",
        FirmwareBit("vendor_hyp", "ptp"),
        "answers the PTP wall-clock/counter pair",
    ),
)
KVM_CALLS_BY_ID: Mapping[int, KvmCall] = {call.fid: call for call in KVM_CALLS}


def firmware_bit_set(
    profile: KernelProfile, bitmaps: Mapping[int, int], register: str, feature: str
) -> bool:
    """Whether a firmware-bitmap feature bit is set; False where the profile lacks it.

    ``bitmaps`` maps register index to value; a register it leaves out holds
    its default.
    """
    reg = profile.register_by_name(register)
    if reg is None or feature not in reg.bits:
        return False
    return bool(bitmaps.get(reg.number, reg.default) >> reg.bits[feature] & 1)


def serves(
    call: KvmCall,
    profile: KernelProfile,
    psci_version: tuple[int, int],
    bitmaps: Mapping[int, int],
    *,
    system_suspend: bool = False,
) -> bool:
    """Whether KVM answers ``call`` for a VM with this setup (no filter entry in the way).

    ``bitmaps`` maps register index to value (missing: the default);
    ``system_suspend`` is ``KVM_CAP_ARM_SYSTEM_SUSPEND``.
    """
    gate = call.gate
    if isinstance(gate, Always):
        return True
    if isinstance(gate, FirmwareBit):
        return firmware_bit_set(profile, bitmaps, gate.register, gate.feature)
    if psci_version < gate.first or (gate.last is not None and psci_version > gate.last):
        return False
    if gate.capability is not None and not system_suspend:
        return False
    return gate.implemented_by(profile)


# Plain ints for the allow-list tests below: the emulator runs them on every
# cache miss, where module attribute lookups and IntEnum compares show.
_OWNER_MASK = smccc.OWNER_MASK
_PSCI_OWNER = int(smccc.Owner.STANDARD) << smccc.OWNER_SHIFT
_FUNCTION_NUMBER_MASK = smccc.FUNCTION_NUMBER_MASK
_LEGACY_LAST = LEGACY_PSCI.last
_ALWAYS_IDS = frozenset(call.fid for call in KVM_CALLS if isinstance(call.gate, Always))


def in_psci_block(fid: int) -> bool:
    """Owner 4 with function number <= 0x1F: the standard PSCI block of the allow-list.

    Bits 31, 30 and 23:16 are ignored, as the kernel ignores them (reference 3.4).
    """
    return (
        fid & _OWNER_MASK == _PSCI_OWNER and fid & _FUNCTION_NUMBER_MASK <= PSCI_FUNCTION_NUMBER_MAX
    )


def reaches_psci(fid: int) -> bool:
    """The allow-list's PSCI part: the standard PSCI block or KVM's PSCI 0.1 IDs."""
    return in_psci_block(fid) or KVM_PSCI_FN_BASE <= fid <= _LEGACY_LAST


def default_allowed(fid: int) -> bool:
    """The default allow-list: IDs KVM may answer although no bitmap bit covers them (3.4).

    The ungated arch calls and everything :func:`reaches_psci` accepts
    [src hypercalls.c kvm_smccc_default_allowed].
    """
    return fid in _ALWAYS_IDS or reaches_psci(fid)
