"""The emulated KVM/arm64 VM: a thin facade over the kernel's filter, firmware and services.

:class:`KvmVm` reproduces, per kernel profile (:mod:`~hvcfilter.kernel.profiles`),
the errno of every ``KVM_SET_DEVICE_ATTR`` filter install and firmware
register write, and the result of every guest HVC or SMC. It owns the call
pipeline (reference 3.1: the HVC fast path, the SMC immediate, the filter
lookup, the firmware gates and the allow-list) and delegates the rest: the
filter and its install rules to :mod:`~hvcfilter.kernel.filter`, the
firmware registers to :mod:`~hvcfilter.kernel.firmware`, the answers to the
service modules through :mod:`~hvcfilter.kernel.services`. It is pure and
deterministic: nothing here touches a real kernel, and answers that depend
on the host (random numbers, clocks) or on an argument the caller did not
give are ``None`` rather than guessed. Nothing compares kernel versions:
every difference is a :class:`~hvcfilter.kernel.profiles.KernelProfile`
field. Facts are marked ``[obs]`` where the reference saw them on a real
kernel and ``[src]`` where they come from the kernel sources.
"""

from __future__ import annotations

import errno
import struct
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from hvcfilter import smccc
from hvcfilter.errors import PayloadError, SpecError, errno_name
from hvcfilter.kernel import calls as kvm_calls
from hvcfilter.kernel.abi import (
    KVM_HYPERCALL_EXIT_SMC,
    KVM_SYSTEM_EVENT_RESET,
    KVM_SYSTEM_EVENT_SHUTDOWN,
    PAD_SIZE,
    RECORD,
    Action,
)
from hvcfilter.kernel.calls import HVC_FAST_PATH, KvmCall
from hvcfilter.kernel.filter import FilterTable
from hvcfilter.kernel.firmware import Firmware, VmConfig
from hvcfilter.kernel.profiles import LAB_HOST, HostCpu, KernelProfile, get_profile
from hvcfilter.kernel.psci import Vcpus, psci_call
from hvcfilter.kernel.results import CallResult, GuestCall, Segment, not_supported
from hvcfilter.kernel.services import EXACT
from hvcfilter.smccc import CONDUITS, MODES, CallKey, Conduit, Mode

__all__ = ["FAST_PATH_IDS", "KvmVm"]

_U32 = 0xFFFF_FFFF
_U64 = 0xFFFF_FFFF_FFFF_FFFF
# HVC with these W0 values is answered at EL2, before the filter (see kernel.calls).
FAST_PATH_IDS = HVC_FAST_PATH


# The system events before which KVM stops every vCPU (psci.Vcpus.stop_for_system_event).
_STOPPING_EVENTS = frozenset({KVM_SYSTEM_EVENT_SHUTDOWN, KVM_SYSTEM_EVENT_RESET})


class KvmVm:
    """One emulated KVM VM on a given kernel profile.

    ``nr_vcpus`` vCPUs exist from the start; vCPU ``i`` has the MPIDR
    affinity KVM gives it (Aff0 = i for i < 16). Calls come from vCPU 0,
    which is always running; the others start powered off when
    ``secondaries_off`` (``KVM_ARM_VCPU_POWER_OFF``, as QEMU and the lab do),
    and are off again after a SYSTEM_OFF or SYSTEM_RESET exit.
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
        self.system_suspend = system_suspend
        self.stolen_time_ipa = stolen_time_ipa
        self.protected = protected
        self.vcpus = Vcpus(nr_vcpus, secondaries_off=secondaries_off)
        self.firmware = Firmware(self.profile, psci_0_2=psci_0_2)
        self.filter = FilterTable(self.profile)
        self._ran = False
        self._vcpus_created = False
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

    @property
    def psci_0_2(self) -> bool:
        """The ``KVM_ARM_VCPU_PSCI_0_2`` vCPU feature."""
        return self.firmware.psci_0_2

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

        The checks and their order are :meth:`hvcfilter.kernel.filter.FilterTable.set`.

        Raises:
            ValueError: a field does not fit its C type (u32, u32, u8, 15 bytes).
        """
        err = self.filter.set(
            base, nr_functions, action, pad, locked=self._ran, protected=self.protected
        )
        if not err:
            self._cache.clear()
        return err

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
        if self.profile.no_filter_errno is not None:
            return self.profile.no_filter_errno  # the ioctl itself is unknown before 6.4
        if group != 0 or attr != 0:
            return errno.ENXIO
        return self.set_filter_record(record)

    def has_device_attr(self, group: int, attr: int) -> int:
        """``KVM_HAS_DEVICE_ATTR``: 0 for (0, 0), ENXIO otherwise [obs 7.1].

        A kernel without the filter (before 6.4) fails every attribute with
        the profile's ``no_filter_errno``.
        """
        if self.profile.no_filter_errno is not None:
            return self.profile.no_filter_errno
        return 0 if group == 0 and attr == 0 else errno.ENXIO

    def get_device_attr(self, group: int, attr: int) -> int:
        """``KVM_GET_DEVICE_ATTR``: the filter is write-only, EINVAL [obs 7.1]."""
        del group, attr
        if self.profile.no_filter_errno is not None:
            return self.profile.no_filter_errno
        return errno.EINVAL

    @property
    def reserved_inserted(self) -> bool:
        """Whether the reserved ranges are in the filter tree yet (internal state, 6.7+ lazy)."""
        return self.filter.reserved_inserted

    # ------------------------------------------------------------------ the effective table

    def lookup(self, fid: int) -> Action | None:
        """The filter's entry for a 32-bit ID; None where no range covers it.

        Reserved ranges are HANDLE, even before their lazy insertion. Only W0
        counts, as for a call. O(log n).
        """
        return self.filter.lookup(fid & _U32)

    def installed_ranges(self) -> tuple[Segment, ...]:
        """The ranges successfully installed, in ID order (reserved ranges excluded)."""
        return tuple(s for s in self.filter.entries() if s.source == "installed")

    def effective_segments(self) -> Iterator[Segment]:
        """The whole 32-bit space in order: reserved, installed and uncovered stretches."""
        return self.filter.effective_segments()

    # ------------------------------------------------------------------ firmware registers

    def set_fw_bitmap(self, reg: int, value: int) -> int:
        """``KVM_SET_ONE_REG`` of firmware bitmap register ``reg``: 0 or the errno.

        The rules are :meth:`hvcfilter.kernel.firmware.Firmware.set_bitmap`.

        Raises:
            ValueError: ``value`` is not a u64.
        """
        before = self.firmware.bitmaps.get(reg)
        err = self.firmware.set_bitmap(reg, value, locked=self._ran)
        if not err and value != before:
            self._cache.clear()
        return err

    def get_fw_bitmap(self, reg: int) -> tuple[int, int]:
        """``KVM_GET_ONE_REG``: (0, value), or (ENOENT, 0) for a register the profile lacks."""
        return self.firmware.get_bitmap(reg)

    def fw_bitmap(self, reg: int) -> int:
        """The current value of firmware bitmap register ``reg``.

        Raises:
            ValueError: the profile has no such register.
        """
        return self.firmware.bitmap(reg)

    def feature_enabled(self, register: str, feature: str) -> bool:
        """Whether a firmware-bitmap feature bit is set (False where the profile lacks it)."""
        return self.firmware.feature_enabled(register, feature)

    def serves(self, call: KvmCall) -> bool:
        """Whether this VM's setup opens ``call``'s gate (see :func:`kernel.calls.serves`)."""
        return kvm_calls.serves(
            call,
            self.profile,
            self.firmware.psci_version,
            self.firmware.bitmaps,
            system_suspend=self.system_suspend,
        )

    def set_psci_version(self, version: str | tuple[int, int] | int) -> int:
        """``KVM_SET_ONE_REG`` of the PSCI_VERSION register: 0 or EINVAL.

        The rules are :meth:`hvcfilter.kernel.firmware.Firmware.set_psci_version`.

        Raises:
            ValueError: ``version`` cannot be parsed.
        """
        err = self.firmware.set_psci_version(version)
        if not err:
            self._cache.clear()
        return err

    @property
    def psci_version(self) -> tuple[int, int]:
        """The VM's PSCI version as the register reads (0.1 without ``PSCI_0_2``)."""
        return self.firmware.psci_version

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
        elif hit.event_type in _STOPPING_EVENTS:
            # The memoised answer skips the PSCI code, not the kernel's side effect.
            self.vcpus.stop_for_system_event()
        return hit

    def call_batch(self, calls: Iterable[CallKey]) -> list[CallResult]:
        """Results for many ``(x0, conduit, imm, mode)`` calls with unknown x1-x3, in order.

        Raises:
            ValueError: a bad conduit, mode, immediate or register value.
        """
        self._ran = True
        get = self._cache.get
        resolve = self.resolve
        if len(self.vcpus.on) > 1:  # a repeated SYSTEM_RESET still stops the secondaries
            return [resolve(*c) for c in calls]
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
        if conduit == "smc" and not self.profile.smc_via_smccc:
            # Before 6.4 handle_smc() answers every SMC itself: x0 = all-ones,
            # x1-x3 untouched, PC + 4, no filter and no handler [src handle_exit.c].
            return CallResult(
                "rejected",
                None,
                "SMC: this kernel answers every guest SMC with NOT_SUPPORTED (before 6.4)",
                fid,
                None,
                x0=mask,
                x1=x1,
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
        tree = self.filter.tree
        i = tree.find(fid)
        matched = (tree.firsts[i], tree.lasts[i]) if i >= 0 else None
        action, order = tree.values[i] if i >= 0 else (Action.HANDLE, None)
        c = GuestCall(x0, fid, x1, x2, x3, conduit, aarch32, mask, action, matched)
        where = "" if matched is None else self._describe(matched, installed=order is not None)
        if action is Action.DENY:
            return not_supported(c, f"{where} denies it")
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
        known = EXACT.get(fid)
        if known is not None:
            if known.gate is not None and not self.feature_enabled(*known.gate):
                reg, feature = known.gate
                label = feature.upper().replace("-", "_")
                return not_supported(
                    c, f"{prefix}{label} disabled in the {reg} firmware bitmap", known.service
                )
            return known.handler(self, c)
        if kvm_calls.default_allowed(fid):
            # Allowed IDs without a handler of their own go to KVM's PSCI code [src hypercalls.c].
            return psci_call(self, c)
        label = smccc.catalogue().label(fid)
        return not_supported(c, f"{prefix}nothing in KVM implements or enables {label}")

    @staticmethod
    def _describe(matched: tuple[int, int], *, installed: bool) -> str:
        span = smccc.IdRange(*matched)
        if not installed:
            return f"reserved range {span}"
        return f"filter range {span}"
