"""Kernel profiles: every way one Linux version's SMCCC filter differs from another, as data.

Each field of :class:`KernelProfile` names a behaviour that changed between
kernel releases and cites where the value comes from. Nothing else in
hvcfilter compares version numbers: the linter and the emulator read these
fields, so a new kernel is one more entry in :data:`PROFILES`.
"""

# No `from __future__ import annotations`: NamedTuple compiles string annotations at start.

import errno
import re
from typing import Literal, NamedTuple

from hvcfilter.errors import HvcFilterError
from hvcfilter.smccc import ARCH_RESERVED_SMC32, ARCH_RESERVED_SMC64, suggest

__all__ = [
    "DEFAULT_PROFILE",
    "LAB_HOST",
    "PROFILES",
    "BitmapRegister",
    "HostCpu",
    "KernelProfile",
    "UnknownProfileError",
    "get_profile",
]


class BitmapRegister(NamedTuple):
    """A firmware feature-bitmap pseudo-register (reference section 3.5)."""

    number: int  # the N of KVM_REG_ARM_FW_FEAT_BMAP_REG(N)
    name: str
    reg_id: int
    bits: dict[str, int]  # feature name -> bit number
    default: int

    @property
    def valid_mask(self) -> int:
        """The bits this register accepts; any other bit gives EINVAL."""
        mask = 0
        for bit in self.bits.values():
            mask |= 1 << bit
        return mask


_STD = BitmapRegister(0, "std", 0x6030_0000_0016_0000, {"trng": 0}, 0x1)
_STD_HYP = BitmapRegister(1, "std_hyp", 0x6030_0000_0016_0001, {"pv-time": 0}, 0x1)
_VENDOR_HYP = BitmapRegister(
    2, "vendor_hyp", 0x6030_0000_0016_0002, {"func-feat": 0, "ptp": 1}, 0x3
)
# Linux 6.15 added the fourth register; reference sections 3.5 and 10 (observed on 7.2.13).
_VENDOR_HYP_2 = BitmapRegister(
    3,
    "vendor_hyp_2",
    0x6030_0000_0016_0003,
    {"discover-impl-ver": 0, "discover-impl-cpus": 1},
    0x0,
)


class KernelProfile(NamedTuple):
    """What one kernel version does, where it differs from others.

    Sources: ``../shared/reference/kvm-smccc-filter.md`` sections 4, 7, 9 and 10.
    """

    name: str
    title: str
    # Inclusive ranges KVM holds as HANDLE; any overlap gives EEXIST (section 2.2).
    reserved_ranges: tuple[tuple[int, int], ...]
    # The errno of base=0, nr_functions=0 before the first run: the 32-bit end
    # wraps to 0xFFFFFFFF, so 6.12 reaches the overlap test (EEXIST, obs 7.1),
    # while 7.2 rejects it as invalid (EINVAL, obs section 10).
    zero_zero_errno: int
    # Whether base=0, nr=0 is still rejected as invalid after the first run
    # (7.2: EINVAL also after the run) or meets the EBUSY check (6.12).
    zero_zero_is_validation: bool
    psci_version_default: tuple[int, int]
    psci_versions_accepted: tuple[tuple[int, int], ...]
    bitmap_registers: tuple[BitmapRegister, ...]
    # 6.15+: KVM_FEATURES reports the second vendor bitmap in x2 (section 3.6).
    kvm_features_x2: bool
    # PSCI 1.3 SYSTEM_OFF2 is implemented (section 10).
    system_off2: bool
    # When the reserved HANDLE ranges enter the filter tree: "create" at VM
    # creation (6.4-6.6) or "lazy" on the first SET that passes validation
    # and the EBUSY test (6.7+; reference 2.1 row 7, hypercalls.c). Invisible
    # to a guest, visible only as internal state.
    reserved_insertion: Literal["create", "lazy"] = "lazy"
    # Number of filter actions; an action byte >= this gives EINVAL (uapi
    # kvm.h NR_SMCCC_FILTER_ACTIONS; reference 1.1).
    filter_actions: int = 3
    # What SMCCC_VERSION answers: 1.1 on every kernel with the filter
    # (reference 3.6 [obs on 6.12.95 and 7.2.13]).
    smccc_version: int = 0x10001
    # errno of every filter write on a protected VM (VM type 0x80000000 under
    # kvm-arm.mode=protected), or None where the profile has no such VM type
    # (reference section 10 [obs on 7.2.13]).
    protected_filter_errno: int | None = None
    # errno of every VM-fd device-attribute ioctl (the filter's HAS, SET and
    # GET) on a kernel without the SMCCC filter, which arrived in 6.4; None
    # where the filter exists (reference 1.3 and section 4).
    no_filter_errno: int | None = None
    # Whether a guest SMC from EL1 reaches the SMCCC handler (6.4+, with the
    # filter) or gets x0 = all-ones with x1-x3 untouched and PC + 4, whatever
    # the function ID (before 6.4; reference section 4).
    smc_via_smccc: bool = True
    observed: str = ""
    notes: tuple[str, ...] = ()

    @property
    def has_filter(self) -> bool:
        """Whether this kernel has the SMCCC filter (the VM-fd attribute ioctls work)."""
        return self.no_filter_errno is None

    def register(self, index: int) -> BitmapRegister | None:
        """The bitmap register with this index, or None where the profile has none."""
        for reg in self.bitmap_registers:
            if reg.number == index:
                return reg
        return None

    def register_by_name(self, name: str) -> BitmapRegister | None:
        """The bitmap register with this spec name (``std``, ``vendor_hyp``...)."""
        for reg in self.bitmap_registers:
            if reg.name == name:
                return reg
        return None


_ARCH_RESERVED = (ARCH_RESERVED_SMC32, ARCH_RESERVED_SMC64)

PROFILES: dict[str, KernelProfile] = {
    p.name: p
    for p in (
        KernelProfile(
            name="6.1",
            title="Linux 6.1 (LTS, no SMCCC filter)",
            # No filter, so nothing is reserved in it: every install fails first.
            reserved_ranges=(),
            zero_zero_errno=errno.EINVAL,  # like every other filter write (below)
            zero_zero_is_validation=True,
            psci_version_default=(1, 1),
            psci_versions_accepted=((0, 1), (0, 2), (1, 0), (1, 1)),
            bitmap_registers=(_STD, _STD_HYP, _VENDOR_HYP),
            kvm_features_x2=False,
            system_off2=False,
            reserved_insertion="lazy",
            protected_filter_errno=None,
            no_filter_errno=errno.EINVAL,
            smc_via_smccc=False,
            observed="6.1.176 (Debian bookworm linux-image-6.1.0-50-arm64-unsigned)",
        ),
        KernelProfile(
            name="6.12",
            title="Linux 6.12 (LTS)",
            reserved_ranges=_ARCH_RESERVED,  # [obs 7.1]
            zero_zero_errno=errno.EEXIST,  # [obs 7.1]
            zero_zero_is_validation=False,  # EBUSY after the run [obs section 10]
            psci_version_default=(1, 1),  # [obs 7.2]
            # 1.2/1.3 give EINVAL [obs section 10]; 0.1 only without PSCI_0_2 [src hypercalls.c]
            psci_versions_accepted=((0, 1), (0, 2), (1, 0), (1, 1)),
            bitmap_registers=(_STD, _STD_HYP, _VENDOR_HYP),  # register 3: ENOENT [obs section 9]
            kvm_features_x2=False,  # [obs section 10]
            system_off2=False,  # 0x84000015 gives -1 [obs section 10]
            reserved_insertion="lazy",  # 6.7+ [src hypercalls.c; reference section 4]
            protected_filter_errno=None,  # n/a (reference section 10)
            observed="6.12.95 (Debian bookworm-backports), reference sections 7 and 9",
        ),
        KernelProfile(
            name="7.2",
            title="Linux 7.2",
            reserved_ranges=_ARCH_RESERVED,  # [obs section 10: same as 6.12]
            zero_zero_errno=errno.EINVAL,  # [obs section 10; newest selftest]
            zero_zero_is_validation=True,  # EINVAL also after the run [obs section 10]
            psci_version_default=(1, 3),  # [obs section 10]
            psci_versions_accepted=((0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (1, 3)),  # [obs 10]
            bitmap_registers=(_STD, _STD_HYP, _VENDOR_HYP, _VENDOR_HYP_2),  # [obs section 10]
            kvm_features_x2=True,  # x2 = register 3 [obs section 10]
            system_off2=True,  # with PSCI 1.3 [obs section 10; src psci.c]
            reserved_insertion="lazy",  # [src hypercalls.c]
            protected_filter_errno=errno.EINVAL,  # [obs section 10]
            observed="7.2.13 (Debian sid) and 7.3-rc7, reference section 10",
        ),
    )
}

DEFAULT_PROFILE = "7.2"


class UnknownProfileError(HvcFilterError, ValueError):
    """A kernel profile name hvcfilter does not know.

    It is a ``ValueError`` too, so pydantic validators that call
    :func:`get_profile` turn it into a schema error.
    """


class HostCpu(NamedTuple):
    """What the *host* CPU makes KVM answer: facts that differ per machine, not per kernel.

    SMCCC_ARCH_FEATURES reports the host's Spectre mitigation state for the
    three ARCH_WORKAROUND IDs, and KVM_PTP works only when the host's
    clocksource is the architected counter (reference 3.6; hypercalls.c).
    """

    name: str
    # SMCCC_ARCH_FEATURES(x1) answer for WORKAROUND_1/2/3: 0 mitigated,
    # 1 unaffected, -1 vulnerable (or, for WA_2, firmware mitigation hidden
    # because SSBS is present), -2 not required (WA_2).
    wa1_answer: int
    wa2_answer: int
    wa3_answer: int
    arch_counter_clocksource: bool = True


# The lab's host: QEMU "max" CPU under TCG running the guest kernel.
# WA_1 = 1 and WA_2 = -1 are [obs] (reference 3.6 and 7.2); WA_3 = -1 is
# inferred from "only WORKAROUND_1 reports 1" (reference section 10).
LAB_HOST = HostCpu("qemu-max-tcg", wa1_answer=1, wa2_answer=-1, wa3_answer=-1)


def get_profile(name: str | None) -> KernelProfile:
    """The profile for a kernel version string; None gives the newest.

    ``"6.12.95"``, ``"6.12-rc1"``, ``"6.12.0-rc1"`` and ``"linux-6.12"`` select ``"6.12"``.

    Raises:
        UnknownProfileError: no profile matches; the message lists the known ones.
    """
    if name is None:
        return PROFILES[DEFAULT_PROFILE]
    key = name.strip().lower().removeprefix("linux-").removeprefix("v")
    if key in PROFILES:
        return PROFILES[key]
    release = _RELEASE.match(key)
    if release is not None and release[1] in PROFILES:
        return PROFILES[release[1]]
    known = f"unknown kernel profile {name!r} (known: {', '.join(PROFILES)})"
    nearest = _nearest_version(key)
    if nearest is not None:
        has = "with" if PROFILES[nearest].has_filter else "without"
        raise UnknownProfileError(
            f"{known}; did you mean {nearest!r}, the nearest kernel {has} the SMCCC filter?"
        )
    close = suggest(key, list(PROFILES))
    raise UnknownProfileError(f"{known}; did you mean {close[0]!r}?" if close else known)


# The SMCCC filter arrived in Linux 6.4 (reference section 4).
_FILTER_SINCE = (6, 4)
# The release a version names is its leading MAJOR.MINOR, whatever follows as
# uname -r or a tag spells it: "6.12.95", "6.12.0-rc1", "6.12-rc1", "6.12+".
_RELEASE = re.compile(r"([0-9]+\.[0-9]+)(?:$|[.+~_-])")


def _nearest_version(key: str) -> str | None:
    """For a version like ``6.8``: the newest profile not newer of the same kind, else the oldest.

    Same kind: with the SMCCC filter from 6.4 on, without it before. Spelling
    alone would take 6.8 for 6.1, which has no filter at all.
    """
    # Looser than _RELEASE: "6.13x" is no release, but near 6.12 all the same.
    match = re.match(r"([0-9]+)\.([0-9]+)(?![0-9])", key)
    if match is None:
        return None
    version = (int(match[1]), int(match[2]))
    with_filter = version >= _FILTER_SINCE
    kind = sorted(
        (tuple(int(n) for n in name.split(".")[:2]), name)
        for name, profile in PROFILES.items()
        if profile.has_filter == with_filter
    )
    if not kind:
        return None
    older = [name for number, name in kind if number <= version]
    return older[-1] if older else kind[0][1]
