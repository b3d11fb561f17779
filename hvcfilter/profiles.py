"""Kernel profiles: every way one Linux version's SMCCC filter differs from another, as data.

Each field of :class:`KernelProfile` names a behaviour that changed between
kernel releases and cites where the value comes from. Nothing else in
hvcfilter compares version numbers: the linter and the emulator read these
fields, so a new kernel is one more entry in :data:`PROFILES`.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field

from hvcfilter.smccc import ARCH_RESERVED_SMC32, ARCH_RESERVED_SMC64, suggest

__all__ = [
    "DEFAULT_PROFILE",
    "PROFILES",
    "BitmapRegister",
    "KernelProfile",
    "UnknownProfileError",
    "get_profile",
]


@dataclass(frozen=True, slots=True)
class BitmapRegister:
    """A firmware feature-bitmap pseudo-register (reference section 3.5)."""

    index: int
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


@dataclass(frozen=True, slots=True)
class KernelProfile:
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
    observed: str = ""
    notes: tuple[str, ...] = field(default=())

    def register(self, index: int) -> BitmapRegister | None:
        """The bitmap register with this index, or None where the profile has none."""
        for reg in self.bitmap_registers:
            if reg.index == index:
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
            name="6.12",
            title="Linux 6.12 (LTS)",
            reserved_ranges=_ARCH_RESERVED,
            zero_zero_errno=errno.EEXIST,
            zero_zero_is_validation=False,
            psci_version_default=(1, 1),
            psci_versions_accepted=((0, 1), (0, 2), (1, 0), (1, 1)),
            bitmap_registers=(_STD, _STD_HYP, _VENDOR_HYP),
            kvm_features_x2=False,
            system_off2=False,
            observed="6.12.95 (Debian bookworm-backports), reference sections 7 and 9",
        ),
        KernelProfile(
            name="7.2",
            title="Linux 7.2",
            reserved_ranges=_ARCH_RESERVED,
            zero_zero_errno=errno.EINVAL,
            zero_zero_is_validation=True,
            psci_version_default=(1, 3),
            psci_versions_accepted=((0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (1, 3)),
            bitmap_registers=(_STD, _STD_HYP, _VENDOR_HYP, _VENDOR_HYP_2),
            kvm_features_x2=True,
            system_off2=True,
            observed="7.2.13 (Debian sid) and 7.3-rc7, reference section 10",
        ),
    )
}

DEFAULT_PROFILE = "7.2"


class UnknownProfileError(ValueError):
    """A kernel profile name hvcfilter does not know."""


def get_profile(name: str | None) -> KernelProfile:
    """The profile for a kernel version string; None gives the newest.

    ``"6.12.95"`` and ``"linux-6.12"`` select ``"6.12"``.

    Raises:
        UnknownProfileError: no profile matches; the message lists the known ones.
    """
    if name is None:
        return PROFILES[DEFAULT_PROFILE]
    key = name.strip().lower().removeprefix("linux-").removeprefix("v")
    if key in PROFILES:
        return PROFILES[key]
    major_minor = ".".join(key.split(".")[:2])
    if major_minor in PROFILES:
        return PROFILES[major_minor]
    close = suggest(key, list(PROFILES))
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UnknownProfileError(
        f"unknown kernel profile {name!r}{hint}; known profiles: {', '.join(PROFILES)}"
    )
