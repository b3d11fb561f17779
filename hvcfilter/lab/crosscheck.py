"""Replaying lab scenarios on the emulator and listing where it differs from the real kernel.

:func:`replay` drives an emulated VM (``hvcfilter.kernel.KvmVm`` by default,
any object with the same methods otherwise) through a :class:`Scenario`'s
steps, and :func:`compare` checks each emulated answer against the real
:class:`ScenarioResult`: errnos of installs and register writes, register
values read back, and for calls the exit kind, ``nr``, ``flags``, system-event
type and the guest's x0-x3.  Values the emulator leaves as ``None`` are not
compared, and neither are values that differ on every run (TRNG random bits,
KVM_PTP clock readings) or the marker the driver writes to x0 after a
forwarded call.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from hvcfilter.errors import HvcFilterError, LabError, errno_name
from hvcfilter.lab.scenario import (
    Call,
    CallOutcome,
    CreateVcpu,
    ErrnoResult,
    GetFwBitmap,
    HasDeviceAttr,
    RegValue,
    Run,
    RunResult,
    Scenario,
    ScenarioResult,
    SetFilter,
    SetFwBitmap,
    SetPsciVersion,
    VmConfig,
)

__all__ = [
    "Comparison",
    "Divergence",
    "EmulatedVm",
    "compare",
    "default_vm_factory",
    "replay",
]

_U32 = 0xFFFF_FFFF
# Calls whose in-kernel answers are random or clock readings when they succeed.
_VOLATILE_IDS = {0x8400_0053, 0xC400_0053, 0x8600_0001}
# uapi KVM_SYSTEM_EVENT_* values, for an emulator that names its event types.
_EVENT_TYPES = {"shutdown": 1, "reset": 2, "crash": 3, "wakeup": 4, "suspend": 5}


class EmulatedVm(Protocol):
    """The subset of ``hvcfilter.kernel.KvmVm`` that a replay uses."""

    def set_filter(self, base: int, nr_functions: int, action: int, pad: bytes = ...) -> int: ...

    def has_device_attr(self, group: int, attr: int) -> int: ...

    def set_fw_bitmap(self, reg: int, value: int) -> int: ...

    def fw_bitmap(self, reg: int) -> int: ...

    def set_psci_version(self, version: str) -> int: ...

    def run(self) -> Any: ...

    def call(
        self,
        x0: int,
        x1: int | None = ...,
        x2: int | None = ...,
        x3: int | None = ...,
        *,
        conduit: str = ...,
        imm: int = ...,
        mode: str = ...,
    ) -> Any: ...


@dataclass(frozen=True, slots=True)
class Divergence:
    """One field where the emulator and the real kernel disagree."""

    scenario: str
    step: int
    what: str
    field: str
    real: object
    emulated: object

    def __str__(self) -> str:
        def fmt(v: object) -> str:
            return f"{v:#x}" if isinstance(v, int) and not isinstance(v, bool) else repr(v)

        return (
            f"{self.scenario} step {self.step} ({self.what}): {self.field} "
            f"real={fmt(self.real)} emulated={fmt(self.emulated)}"
        )


@dataclass(frozen=True, slots=True)
class Comparison:
    """Result of comparing one scenario; ``skipped`` says why nothing was compared."""

    scenario: str
    divergences: tuple[Divergence, ...]
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        """True when nothing diverged (a skipped scenario is not ok)."""
        return self.skipped is None and not self.divergences


# The driver's names for the setup steps before a scenario's first step.
_SETUP_STEPS = {
    "create_vm": "VM creation",
    "enable_cap": "KVM_ENABLE_CAP(KVM_CAP_ARM_SYSTEM_SUSPEND)",
}


def default_vm_factory(kernel: str, config: VmConfig) -> Callable[[], EmulatedVm]:
    """A factory of ``hvcfilter.kernel.KvmVm`` for ``kernel``, shaped like the lab VM ``config``.

    The emulated VM gets the same number of vCPUs (extra ones powered off, as
    the driver creates them), the same PSCI 0.2 feature and the same
    ``KVM_CAP_ARM_SYSTEM_SUSPEND`` as the real one.

    Raises:
        LabError: the emulator module is not available.
    """
    try:
        mod = importlib.import_module("hvcfilter.kernel")
        cls = mod.KvmVm
    except (ImportError, AttributeError) as e:
        raise LabError(f"the emulator (hvcfilter.kernel.KvmVm) is not available: {e}") from e

    def make() -> EmulatedVm:
        vm: EmulatedVm = cls(
            kernel,
            nr_vcpus=1 + config.extra_vcpus,
            psci_0_2=config.psci_0_2,
            system_suspend=config.system_suspend,
        )
        return vm

    return make


def replay(scenario: Scenario, vm: EmulatedVm) -> list[object]:
    """Apply every step of ``scenario`` to ``vm``; one emulated result (or None) per step.

    A step the emulator rejects with an hvcfilter error yields that exception
    object instead of a result.
    """
    out: list[object] = []
    for step in scenario.steps:
        try:
            match step:
                case SetFilter(base, nr, action, pad):
                    out.append(vm.set_filter(base, nr, action, pad=pad))
                case HasDeviceAttr(group, attr):
                    out.append(vm.has_device_attr(group, attr))
                case SetFwBitmap(reg, value):
                    out.append(vm.set_fw_bitmap(reg, value))
                case GetFwBitmap(reg):
                    out.append(vm.fw_bitmap(reg))
                case SetPsciVersion():
                    out.append(vm.set_psci_version(step.text))
                case Run():
                    vm.run()
                    out.append(None)
                case CreateVcpu():
                    out.append(None)
                case Call(x0, x1, x2, x3, conduit, imm, mode):
                    out.append(vm.call(x0, x1, x2, x3, conduit=conduit, imm=imm, mode=mode))
        except (HvcFilterError, ValueError, KeyError, LookupError) as e:
            out.append(e)
    return out


def _event_code(v: object) -> object:
    if isinstance(v, str):
        return _EVENT_TYPES.get(v.lower(), v)
    return v


def _as_int(v: object) -> object:
    try:
        return int(v)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return v


def _compare_call(name: str, i: int, step: Call, real: CallOutcome, em: object) -> list[Divergence]:
    what = f"{step.mode} {step.conduit}#{step.imm:x} x0={step.x0:#x}"
    out: list[Divergence] = []

    def diff(fld: str, r: object, e: object) -> None:
        if e is not None and r != e:
            out.append(Divergence(name, i, what, fld, r, e))

    if isinstance(em, Exception):
        return [Divergence(name, i, what, "exception", real.exit, repr(em))]
    em_exit = getattr(em, "exit", None)
    diff("exit", real.exit, em_exit)
    if real.exit == "hypercall" or em_exit == "hypercall":
        diff("nr", real.nr, _as_int(getattr(em, "nr", None)))
        diff("flags", real.flags, _as_int(getattr(em, "flags", None)))
    if real.exit == "system_event" or em_exit == "system_event":
        diff("event_type", real.event_type, _event_code(getattr(em, "event_type", None)))
    all_ones = _U32 if step.is_32bit else 0xFFFF_FFFF_FFFF_FFFF
    volatile = (step.x0 & _U32) in _VOLATILE_IDS and real.exit == "none" and real.x0 != all_ones
    mask = _U32 if step.is_32bit else 0xFFFF_FFFF_FFFF_FFFF
    for n in range(4):
        if volatile or (n == 0 and real.exit == "hypercall"):
            # Random bits, clock readings, or the driver's own x0 marker.
            continue
        ev = getattr(em, f"x{n}", None)
        diff(f"x{n}", getattr(real, f"x{n}"), None if ev is None else _as_int(ev) & mask)  # type: ignore[operator]
    return out


def compare(
    scenario: Scenario,
    real: ScenarioResult,
    vm_factory: Callable[[], EmulatedVm],
) -> Comparison:
    """Replay ``scenario`` on a fresh emulated VM and list the divergences from ``real``.

    Raises:
        LabError: ``real`` is not the result of ``scenario``.
    """
    if real.name != scenario.name:
        raise LabError(f"result {real.name!r} does not belong to scenario {scenario.name!r}")
    if real.setup_errno:
        what = _SETUP_STEPS.get(real.setup_step, "VM setup")
        return Comparison(
            scenario.name, (), f"{what} failed on the real kernel ({errno_name(real.setup_errno)})"
        )
    emulated = replay(scenario, vm_factory())
    divs: list[Divergence] = []
    for i, (step, r, e) in enumerate(zip(scenario.steps, real.steps, emulated, strict=True)):
        if isinstance(step, Call) and isinstance(r, CallOutcome):
            divs += _compare_call(scenario.name, i, step, r, e)
            continue
        what = type(step).__name__
        if isinstance(e, Exception):
            real_err = getattr(r, "errno", 0)
            if not real_err:
                divs.append(Divergence(scenario.name, i, what, "exception", real_err, repr(e)))
            continue
        if isinstance(r, ErrnoResult) and e is not None and _as_int(e) != r.errno:
            divs.append(Divergence(scenario.name, i, what, "errno", r.errno, e))
        elif isinstance(r, RegValue) and r.errno == 0 and _as_int(e) != r.value:
            divs.append(Divergence(scenario.name, i, what, "value", r.value, e))
        elif isinstance(r, RegValue) and r.errno:
            divs.append(Divergence(scenario.name, i, what, "errno", r.errno, e))
        elif isinstance(r, RunResult) and r.errno:
            divs.append(Divergence(scenario.name, i, what, "run errno", r.errno, 0))
    return Comparison(scenario.name, tuple(divs))
