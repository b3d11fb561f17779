"""The VM's firmware pseudo-registers: the feature bitmaps and the PSCI version.

KVM exposes them as ``KVM_{GET,SET}_ONE_REG`` registers of a vCPU that hold
VM-wide state (reference 3.5 and 3.7). :class:`Firmware` keeps their values
and the kernel's write rules per profile: ENOENT for a register the kernel
lacks, EINVAL for an unsupported bit or PSCI version, EBUSY for a changed
value once a vCPU has run. :class:`VmConfig` is the same setup as a spec's
``[vm]`` table gives it, before any register is written.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from hvcfilter.kernel import calls
from hvcfilter.kernel.profiles import KernelProfile

__all__ = ["Firmware", "VmConfig", "parse_psci_version"]

_U64 = 0xFFFF_FFFF_FFFF_FFFF


class VmConfig(NamedTuple):
    """The emulated VM's firmware setup: PSCI version and bitmap values by register index.

    A named tuple, so that loading a spec does not import ``dataclasses``; the
    default bitmaps are a read-only empty mapping, shared safely.
    """

    psci_version: tuple[int, int] | None = None
    bitmaps: Mapping[int, int] = MappingProxyType({})


def parse_psci_version(text: str) -> tuple[int, int]:
    """``"1.1"`` -> ``(1, 1)``.

    Raises:
        ValueError: not ``MAJOR.MINOR`` with small numbers.
    """
    parts = text.strip().split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f'PSCI version {text!r} is not MAJOR.MINOR, e.g. "1.1"')
    major, minor = int(parts[0]), int(parts[1])
    if major > 0x7FFF or minor > 0xFFFF:
        raise ValueError(f"PSCI version {text!r} is out of range")
    return major, minor


class Firmware:
    """The firmware registers of one VM on one kernel profile.

    ``psci_0_2`` is the ``KVM_ARM_VCPU_PSCI_0_2`` vCPU feature: without it
    the VM speaks only KVM's PSCI 0.1.
    """

    __slots__ = ("_psci_reg", "bitmaps", "profile", "psci_0_2")

    def __init__(self, profile: KernelProfile, *, psci_0_2: bool = True) -> None:
        self.profile = profile
        self.psci_0_2 = psci_0_2
        # Register index -> value; read by the gates of kernel.calls.
        self.bitmaps = {reg.number: reg.default for reg in profile.bitmap_registers}
        major, minor = profile.psci_version_default
        self._psci_reg = (major << 16) | minor

    def set_bitmap(self, reg: int, value: int, *, locked: bool) -> int:
        """``KVM_SET_ONE_REG`` of bitmap register ``reg``: 0 or the errno.

        ENOENT for a register the profile lacks, EINVAL for an unsupported
        bit (checked first, also after the run), EBUSY for a different value
        once ``locked`` (a vCPU has run); the same value is accepted [obs
        section 9].

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
        if locked and value != self.bitmaps[reg]:
            return errno.EBUSY
        self.bitmaps[reg] = value
        return 0

    def get_bitmap(self, reg: int) -> tuple[int, int]:
        """``KVM_GET_ONE_REG``: (0, value), or (ENOENT, 0) for a register the profile lacks."""
        if reg not in self.bitmaps:
            return errno.ENOENT, 0
        return 0, self.bitmaps[reg]

    def bitmap(self, reg: int) -> int:
        """The current value of bitmap register ``reg``.

        Raises:
            ValueError: the profile has no such register.
        """
        if reg not in self.bitmaps:
            known = ", ".join(f"{r.number} {r.name}" for r in self.profile.bitmap_registers)
            raise ValueError(f"kernel {self.profile.name} has no bitmap register {reg} ({known})")
        return self.bitmaps[reg]

    def feature_enabled(self, register: str, feature: str) -> bool:
        """Whether a bitmap feature bit is set (False where the profile lacks it)."""
        return calls.firmware_bit_set(self.profile, self.bitmaps, register, feature)

    def set_psci_version(self, version: str | tuple[int, int] | int) -> int:
        """``KVM_SET_ONE_REG`` of the PSCI_VERSION register: 0 or EINVAL.

        ``version`` is ``"1.1"``, ``(1, 1)`` or the raw register value. 0.1
        needs a vCPU without ``PSCI_0_2``; the others need it, and only the
        profile's versions exist. The kernel does not lock this register at
        the first run [src hypercalls.c; obs 6.12.95, 7.2.13 and 7.3-rc7: the
        lab's psci-version-after-run-* probes, kept in tests/lab/fixtures].

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
        return 0

    @property
    def psci_version(self) -> tuple[int, int]:
        """The VM's PSCI version as the register reads (0.1 without ``PSCI_0_2``)."""
        if not self.psci_0_2:
            return (0, 1)
        return self._psci_reg >> 16, self._psci_reg & 0xFFFF
