"""Typed lab scenarios and their results.

A :class:`Scenario` is one fresh KVM VM on the real kernel: a small VM
configuration plus an ordered list of steps (filter installs with raw fields,
firmware-register writes and reads, vCPU creation, the first ``KVM_RUN`` and
guest calls). The in-guest driver's line format is :mod:`hvcfilter.lab.wire`
and the JSON form :mod:`hvcfilter.lab.serial`. Result fields use the names of the
emulator's ``CallResult`` (``exit``, ``nr``, ``flags``, ``event_type``,
``x0``-``x3``) so that :mod:`hvcfilter.lab.crosscheck` can compare them directly.
This module does no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TypeAlias

from hvcfilter.errors import LabError
from hvcfilter.smccc import CONDUITS, MODES, Conduit, Mode

__all__ = [
    "BEGIN_MARKER",
    "CALL_MARKERS",
    "END_MARKER",
    "FWD_MARKER",
    "WIRE_VERSION",
    "Call",
    "CallOutcome",
    "Conduit",
    "CreateVcpu",
    "ErrnoResult",
    "GetFwBitmap",
    "HasDeviceAttr",
    "Mode",
    "RegValue",
    "Run",
    "RunResult",
    "Scenario",
    "ScenarioResult",
    "SetFilter",
    "SetFwBitmap",
    "SetPsciVersion",
    "Step",
    "StepResult",
    "VmConfig",
    "check_range",
]


# The driver writes FWD_MARKER + (index of the call within its scenario) to x0
# after a KVM_EXIT_HYPERCALL, as the reference's sample trace did.
FWD_MARKER = 0x5A5A_0000
# Default x1-x3 of a call: distinctive values show which registers KVM overwrote.
CALL_MARKERS = (0x1111, 0x2222, 0x3333)

BEGIN_MARKER = "@@HVCLAB-BEGIN"
END_MARKER = "@@HVCLAB-END"
WIRE_VERSION = 1
_U32 = 0xFFFF_FFFF
_U64 = 0xFFFF_FFFF_FFFF_FFFF
_PAD_LEN = 15


def check_range(name: str, value: int, limit: int) -> None:
    """Raise LabError unless ``0 <= value <= limit``."""
    if not 0 <= value <= limit:
        raise LabError(f"{name}={value:#x} is outside 0..{limit:#x}")


@dataclass(frozen=True, slots=True)
class SetFilter:
    """``KVM_SET_DEVICE_ATTR`` with one raw ``struct kvm_smccc_filter`` (any action, any pad)."""

    base: int
    nr: int
    action: int
    pad: bytes = bytes(_PAD_LEN)

    def __post_init__(self) -> None:
        check_range("base", self.base, _U32)
        check_range("nr", self.nr, _U32)
        check_range("action", self.action, 0xFF)
        if len(self.pad) != _PAD_LEN:
            raise LabError(f"pad must be {_PAD_LEN} bytes, got {len(self.pad)}")


@dataclass(frozen=True, slots=True)
class HasDeviceAttr:
    """``KVM_HAS_DEVICE_ATTR`` on the VM fd: a VMM's probe for the filter (group 0, attr 0)."""

    group: int = 0
    attr: int = 0

    def __post_init__(self) -> None:
        check_range("group", self.group, _U32)
        check_range("attr", self.attr, 0xFFFF_FFFF_FFFF_FFFF)


@dataclass(frozen=True, slots=True)
class SetFwBitmap:
    """``KVM_SET_ONE_REG`` of firmware feature-bitmap register ``reg`` (0x6030000000160000+reg)."""

    reg: int
    value: int

    def __post_init__(self) -> None:
        check_range("reg", self.reg, 0xFFFF)
        check_range("value", self.value, _U64)


@dataclass(frozen=True, slots=True)
class GetFwBitmap:
    """``KVM_GET_ONE_REG`` of firmware feature-bitmap register ``reg``."""

    reg: int

    def __post_init__(self) -> None:
        check_range("reg", self.reg, 0xFFFF)


@dataclass(frozen=True, slots=True)
class SetPsciVersion:
    """``KVM_SET_ONE_REG`` of the PSCI_VERSION firmware register (0x6030000000140000)."""

    major: int
    minor: int

    def __post_init__(self) -> None:
        check_range("major", self.major, 0xFFFF)
        check_range("minor", self.minor, 0xFFFF)

    @property
    def raw(self) -> int:
        """The register value: major in bits 31:16, minor in bits 15:0."""
        return self.major << 16 | self.minor

    @property
    def text(self) -> str:
        """``"1.1"`` form, as the emulator's ``set_psci_version`` takes it."""
        return f"{self.major}.{self.minor}"


@dataclass(frozen=True, slots=True)
class CreateVcpu:
    """Create and initialise the VM's vCPUs now (otherwise done at the first step needing one)."""


@dataclass(frozen=True, slots=True)
class Run:
    """The first ``KVM_RUN`` of the VM, with no guest call (locks the filter: EBUSY after)."""


@dataclass(frozen=True, slots=True)
class Call:
    """One guest HVC or SMC with the given registers, conduit, immediate and instruction set."""

    x0: int
    x1: int = CALL_MARKERS[0]
    x2: int = CALL_MARKERS[1]
    x3: int = CALL_MARKERS[2]
    conduit: Conduit = "hvc"
    imm: int = 0
    mode: Mode = "a64"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise LabError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.conduit not in CONDUITS:
            raise LabError(f"conduit must be 'hvc' or 'smc', got {self.conduit!r}")
        limit = _U64 if self.mode == "a64" else _U32
        for name in ("x0", "x1", "x2", "x3"):
            check_range(f"{name} ({self.mode})", getattr(self, name), limit)
        # A32/T32 SMC encodes only a 4-bit immediate; HVC has 16 bits everywhere.
        imm_limit = 0xF if self.mode != "a64" and self.conduit == "smc" else 0xFFFF
        check_range(f"imm ({self.mode} {self.conduit})", self.imm, imm_limit)

    @property
    def is_32bit(self) -> bool:
        """Whether the call comes from an AArch32 (A32 or T32) guest."""
        return self.mode != "a64"


Step: TypeAlias = (
    SetFilter | HasDeviceAttr | SetFwBitmap | GetFwBitmap | SetPsciVersion | CreateVcpu | Run | Call
)


@dataclass(frozen=True, slots=True)
class VmConfig:
    """How the driver builds the VM's vCPUs.

    ``mode`` picks the vCPU's execution state (``a32`` and ``t32`` both mean
    ``KVM_ARM_VCPU_EL1_32BIT``; T32 is a per-call PSTATE.T); ``None`` takes it
    from the first call.  ``extra_vcpus`` powered-off vCPUs (MPIDR Aff0 = 1, 2,
    ...) exist as CPU_ON targets; calls always run on vCPU 0.
    ``system_suspend`` enables ``KVM_CAP_ARM_SYSTEM_SUSPEND`` on the VM
    before anything else, as a VMM that implements PSCI SYSTEM_SUSPEND does.
    """

    mode: Mode | None = None
    psci_0_2: bool = True
    extra_vcpus: int = 0
    system_suspend: bool = False

    def __post_init__(self) -> None:
        if self.mode is not None and self.mode not in MODES:
            raise LabError(f"mode must be one of {MODES}, got {self.mode!r}")
        check_range("extra_vcpus", self.extra_vcpus, 7)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One fresh VM on the real kernel: configuration plus ordered steps."""

    name: str
    steps: tuple[Step, ...]
    config: VmConfig = field(default_factory=VmConfig)

    def __post_init__(self) -> None:
        if not self.name or any(c.isspace() for c in self.name):
            raise LabError(f"scenario name {self.name!r} must be non-empty without spaces")
        object.__setattr__(self, "steps", tuple(self.steps))
        want32 = self.vcpu_mode != "a64"
        for i, step in enumerate(self.steps):
            if isinstance(step, Call) and step.is_32bit != want32:
                # KVM rejects mixed 32/64-bit vCPUs in one VM, so one scenario has one width.
                raise LabError(
                    f"scenario {self.name}: step {i} is a {step.mode} call but the vCPU is "
                    f"{self.vcpu_mode}; a VM's calls must all be AArch64 or all AArch32"
                )

    @property
    def vcpu_mode(self) -> Mode:
        """The vCPU's execution state: the configured mode, else the first call's."""
        if self.config.mode is not None:
            return self.config.mode
        for step in self.steps:
            if isinstance(step, Call):
                return step.mode
        return "a64"

    def calls(self) -> Iterator[tuple[int, Call]]:
        """The (step index, call) pairs in order."""
        for i, step in enumerate(self.steps):
            if isinstance(step, Call):
                yield i, step


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class ErrnoResult:
    """Result of a filter install, register write or vCPU creation: 0 or a positive errno."""

    errno: int


@dataclass(frozen=True, slots=True)
class RegValue:
    """Result of a firmware-register read."""

    errno: int
    value: int


@dataclass(frozen=True, slots=True)
class RunResult:
    """Result of a bare first ``KVM_RUN``: errno and the exit seen (``mmio`` when all went well)."""

    errno: int
    exit: str


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """What one guest call did on the real kernel.

    ``exit`` is ``none``, ``hypercall`` or ``system_event`` like the emulator's
    ``CallResult.exit``; lab-only values are ``timeout``, ``noexit``,
    ``unexpected`` and ``error``.  ``x0``-``x3`` are what the guest held after
    the call completed, as it sees them (32 bits for A32/T32).  After a
    hypercall exit the driver wrote ``FWD_MARKER + call index`` to x0 and
    resumed.  After a system event the driver read ``event_x0`` (x0 as KVM left
    it) and resumed the vCPU.  ``interrupts`` counts per-run timeouts (a halted
    vCPU after CPU_SUSPEND or CPU_OFF) after which the vCPU was made runnable.
    """

    exit: str
    nr: int | None
    flags: int | None
    pc_advanced: bool | None
    x0: int
    x1: int
    x2: int
    x3: int
    event_type: int | None
    event_ndata: int | None
    event_data0: int | None
    event_x0: int | None
    interrupts: int
    errno: int

    @property
    def outcome(self) -> str:
        """Best guess at the emulator's ``outcome`` from what the guest saw.

        ``forwarded`` for a hypercall exit; ``not_supported`` for x0 = all-ones
        with x1-x3 zeroed (also what an in-kernel handler returning -1 looks
        like); ``handled`` otherwise.  A rejected nonzero-immediate SMC looks
        like all-ones with x1-x3 untouched and is reported as ``handled``
        here: the real kernel does not say which path it took.
        """
        if self.exit == "hypercall":
            return "forwarded"
        ones = {_U64, _U32}
        if self.x0 in ones and self.x1 == self.x2 == self.x3 == 0:
            return "not_supported"
        return "handled"


StepResult: TypeAlias = ErrnoResult | RegValue | RunResult | CallOutcome


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    """All step results of one scenario, in step order.

    ``setup_errno`` is non-zero when the VM could not be set up; ``steps`` is
    then empty, and ``setup_step`` says what failed as the driver names it:
    ``create_vm`` or ``enable_cap`` (``KVM_CAP_ARM_SYSTEM_SUSPEND``).
    """

    name: str
    steps: tuple[StepResult, ...]
    setup_errno: int = 0
    elapsed_us: int = 0
    setup_step: str = ""
