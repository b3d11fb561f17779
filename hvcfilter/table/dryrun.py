"""Dry runs: a compiled table installed, record by record, into the emulated kernel.

What ``hvcfilter compile --dry-run`` shows: the errno each
``KVM_SET_DEVICE_ATTR`` would return on the kernel profile, so that a
failing record is found before a VM is, and the ``KVM_HAS_DEVICE_ATTR``
probe's errno on a kernel without the filter (EINVAL before Linux 6.4).
"""

from __future__ import annotations

from dataclasses import dataclass

from hvcfilter.errors import errno_name
from hvcfilter.kernel.profiles import KernelProfile, get_profile
from hvcfilter.table import payload
from hvcfilter.table.compiler import CompiledRecord, CompiledTable

__all__ = ["DryRunResult", "InstallStep", "dry_run"]


@dataclass(frozen=True, slots=True)
class InstallStep:
    """One ``KVM_SET_DEVICE_ATTR`` call of a dry run and the errno it returned (0: accepted)."""

    index: int
    compiled: CompiledRecord
    errno: int

    @property
    def errno_name(self) -> str:
        """``0``, ``EEXIST``, ``EINVAL``..."""
        return errno_name(self.errno)


@dataclass(frozen=True, slots=True)
class DryRunResult:
    """The outcome of installing a compiled table into the emulated kernel."""

    table: CompiledTable
    profile: KernelProfile
    steps: tuple[InstallStep, ...]
    # KVM_HAS_DEVICE_ATTR(0, 0), the probe a VMM (and the emitted C) makes
    # before the first record: 0, or the errno of a kernel without the filter.
    probe_errno: int = 0

    @property
    def ok(self) -> bool:
        """The probe found the filter and every record was accepted."""
        return not self.probe_errno and all(step.errno == 0 for step in self.steps)

    @property
    def probe_errno_name(self) -> str:
        """``0`` or ``EINVAL``..."""
        return errno_name(self.probe_errno)


def dry_run(table: CompiledTable, *, kernel: str | None = None) -> DryRunResult:
    """Probe for the filter, install every record, in order, into a fresh emulated VM.

    Every record is tried even when the probe fails (a kernel before 6.4), so
    the errno each ``KVM_SET_DEVICE_ATTR`` would get is shown too.

    The records go in as encoded little-endian bytes, as an arm64 VMM passes
    them, so the dry run exercises the encoder too.

    Raises:
        UnknownProfileError: ``kernel`` names no profile.
    """
    profile = get_profile(kernel) if kernel is not None else table.profile
    # Imported here: the emulator is a heavier layer that plain compiles do not need.
    from hvcfilter.kernel import KvmVm

    vm = KvmVm(kernel=profile)
    # Probed only when there is something to install, as the emitted C does.
    probe = vm.has_device_attr(0, 0) if table.records else 0
    steps = []
    for index, compiled in enumerate(table.records):
        result = vm.set_filter_record(payload.encode([compiled.record], "little"))
        steps.append(InstallStep(index, compiled, int(result)))
    return DryRunResult(table, profile, tuple(steps), probe)
