"""Typed lab scenarios and results, with their JSON form and the in-guest driver's wire format.

A :class:`Scenario` is one fresh KVM VM on the real kernel: a small VM
configuration plus an ordered list of steps (filter installs with raw fields,
firmware-register writes and reads, vCPU creation, the first ``KVM_RUN`` and
guest calls).  The in-guest driver (``driver/smccc_driver.c``) reads a batch of
scenarios in a line format written by :func:`to_wire` and prints one result
line per step; :func:`parse_output` turns the console text back into
:class:`ScenarioResult` objects.  Result fields use the names of the
emulator's ``CallResult`` (``exit``, ``nr``, ``flags``, ``event_type``,
``x0``-``x3``) so that :mod:`hvcfilter.lab.compare` can compare them directly.
This module does no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, TypeAlias, cast

from hvcfilter.errors import LabError
from hvcfilter.smccc import CONDUITS, MODES, Conduit, Mode

__all__ = [
    "CALL_MARKERS",
    "FWD_MARKER",
    "Call",
    "CallOutcome",
    "Conduit",
    "CreateVcpu",
    "ErrnoResult",
    "GetFwBitmap",
    "Mode",
    "ParsedOutput",
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
    "parse_output",
    "result_from_dict",
    "result_to_dict",
    "scenario_from_dict",
    "scenario_to_dict",
    "to_wire",
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


def _check_range(name: str, value: int, limit: int) -> None:
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
        _check_range("base", self.base, _U32)
        _check_range("nr", self.nr, _U32)
        _check_range("action", self.action, 0xFF)
        if len(self.pad) != _PAD_LEN:
            raise LabError(f"pad must be {_PAD_LEN} bytes, got {len(self.pad)}")


@dataclass(frozen=True, slots=True)
class SetFwBitmap:
    """``KVM_SET_ONE_REG`` of firmware feature-bitmap register ``reg`` (0x6030000000160000+reg)."""

    reg: int
    value: int

    def __post_init__(self) -> None:
        _check_range("reg", self.reg, 0xFFFF)
        _check_range("value", self.value, _U64)


@dataclass(frozen=True, slots=True)
class GetFwBitmap:
    """``KVM_GET_ONE_REG`` of firmware feature-bitmap register ``reg``."""

    reg: int

    def __post_init__(self) -> None:
        _check_range("reg", self.reg, 0xFFFF)


@dataclass(frozen=True, slots=True)
class SetPsciVersion:
    """``KVM_SET_ONE_REG`` of the PSCI_VERSION firmware register (0x6030000000140000)."""

    major: int
    minor: int

    def __post_init__(self) -> None:
        _check_range("major", self.major, 0xFFFF)
        _check_range("minor", self.minor, 0xFFFF)

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
            _check_range(f"{name} ({self.mode})", getattr(self, name), limit)
        # A32/T32 SMC encodes only a 4-bit immediate; HVC has 16 bits everywhere.
        imm_limit = 0xF if self.mode != "a64" and self.conduit == "smc" else 0xFFFF
        _check_range(f"imm ({self.mode} {self.conduit})", self.imm, imm_limit)

    @property
    def is_32bit(self) -> bool:
        """Whether the call comes from an AArch32 (A32 or T32) guest."""
        return self.mode != "a64"


Step: TypeAlias = SetFilter | SetFwBitmap | GetFwBitmap | SetPsciVersion | CreateVcpu | Run | Call


@dataclass(frozen=True, slots=True)
class VmConfig:
    """How the driver builds the VM's vCPUs.

    ``mode`` picks the vCPU's execution state (``a32`` and ``t32`` both mean
    ``KVM_ARM_VCPU_EL1_32BIT``; T32 is a per-call PSTATE.T); ``None`` takes it
    from the first call.  ``extra_vcpus`` powered-off vCPUs (MPIDR Aff0 = 1, 2,
    ...) exist as CPU_ON targets; calls always run on vCPU 0.
    """

    mode: Mode | None = None
    psci_0_2: bool = True
    extra_vcpus: int = 0

    def __post_init__(self) -> None:
        if self.mode is not None and self.mode not in MODES:
            raise LabError(f"mode must be one of {MODES}, got {self.mode!r}")
        _check_range("extra_vcpus", self.extra_vcpus, 7)


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

    ``setup_errno`` is non-zero when the VM could not be created; ``steps`` is
    then empty.
    """

    name: str
    steps: tuple[StepResult, ...]
    setup_errno: int = 0
    elapsed_us: int = 0


@dataclass(frozen=True, slots=True)
class ParsedOutput:
    """Everything the driver printed: kernel release, results, driver-side run time."""

    release: str
    results: tuple[ScenarioResult, ...]
    driver_us: int


# ----------------------------------------------------------------------------- wire format


def _wire_step(step: Step) -> str:
    match step:
        case SetFilter(base, nr, action, pad):
            return f"F {base:x} {nr:x} {action:x} {pad.hex()}"
        case SetFwBitmap(reg, value):
            return f"B {reg:x} {value:x}"
        case GetFwBitmap(reg):
            return f"G {reg:x}"
        case SetPsciVersion():
            return f"P {step.raw:x}"
        case CreateVcpu():
            return "V"
        case Run():
            return "N"
        case Call(x0, x1, x2, x3, conduit, imm, mode):
            return f"C {x0:x} {x1:x} {x2:x} {x3:x} {conduit[0]} {imm:x} {mode}"
    raise LabError(f"unknown step {step!r}")  # pragma: no cover - exhaustive match above


def to_wire(scenarios: Sequence[Scenario], *, timeout_ms: int = 200) -> str:
    """The driver's input for a batch: scenario k is announced as ``S <k in hex>``.

    Raises:
        LabError: a timeout outside 1..600000 ms.
    """
    _check_range("timeout_ms", timeout_ms, 600_000)
    if timeout_ms == 0:
        raise LabError("timeout_ms must be positive")
    lines = [f"T {timeout_ms}"]
    for k, sc in enumerate(scenarios):
        cfg = sc.config
        lines.append(f"S {k:x} {sc.vcpu_mode} {int(cfg.psci_0_2)} {cfg.extra_vcpus}")
        lines.extend(_wire_step(step) for step in sc.steps)
        lines.append("E")
    return "\n".join(lines) + "\n"


_TAG_OF: dict[type, str] = {
    SetFilter: "F",
    SetFwBitmap: "B",
    GetFwBitmap: "G",
    SetPsciVersion: "P",
    CreateVcpu: "V",
    Run: "N",
    Call: "C",
}
_LINE = re.compile(r"^(?:@@HVCLAB-(?:BEGIN|END)|[USFBGPVNCXEZ])(?: |$)")


def _int(tok: str, what: str) -> int:
    try:
        return int(tok, 16)
    except ValueError as e:
        raise LabError(f"bad {what} {tok!r} in driver output") from e


def _dec(tok: str, what: str) -> int:
    try:
        return int(tok, 10)
    except ValueError as e:
        raise LabError(f"bad {what} {tok!r} in driver output") from e


def _parse_call(tok: list[str], step: Call) -> CallOutcome:
    if len(tok) != 15:
        raise LabError(f"call result needs 14 fields, got {len(tok) - 1}: {' '.join(tok)!r}")
    exit_kind = tok[1]
    hyper = exit_kind == "hypercall"
    event = _dec(tok[9], "event type")
    pcadv = _dec(tok[4], "pc_advanced")
    regs = [_int(t, "register") for t in tok[5:9]]
    if step.is_32bit:
        # The guest sees r0-r3 only; upper halves read through ONE_REG are not guest state.
        regs = [r & _U32 for r in regs]
    return CallOutcome(
        exit=exit_kind,
        nr=_int(tok[2], "nr") if hyper else None,
        flags=_int(tok[3], "flags") if hyper else None,
        pc_advanced=None if pcadv < 0 else bool(pcadv),
        x0=regs[0],
        x1=regs[1],
        x2=regs[2],
        x3=regs[3],
        event_type=None if event < 0 else event,
        event_ndata=None if event < 0 else _dec(tok[10], "ndata"),
        event_data0=None if event < 0 else _int(tok[11], "data0"),
        event_x0=None if event < 0 else _int(tok[12], "event x0"),
        interrupts=_dec(tok[13], "interrupts"),
        errno=_dec(tok[14], "errno"),
    )


def _parse_step(tok: list[str], step: Step) -> StepResult:
    tag = _TAG_OF[type(step)]
    if tok[0] != tag:
        raise LabError(f"expected a {tag!r} result for {step!r}, got {' '.join(tok)!r}")
    if isinstance(step, Call):
        return _parse_call(tok, step)
    if isinstance(step, GetFwBitmap):
        if len(tok) != 3:
            raise LabError(f"bad register read result {' '.join(tok)!r}")
        return RegValue(_dec(tok[1], "errno"), _int(tok[2], "value"))
    if isinstance(step, Run):
        if len(tok) != 3:
            raise LabError(f"bad run result {' '.join(tok)!r}")
        return RunResult(_dec(tok[1], "errno"), tok[2])
    if len(tok) != 2:
        raise LabError(f"bad errno result {' '.join(tok)!r}")
    return ErrnoResult(_dec(tok[1], "errno"))


def _result_lines(console: str) -> tuple[list[list[str]], int]:
    """Tokenised lines between the markers, and the driver's total microseconds."""
    text = console.replace("\r", "")
    lines = text.split("\n")
    start = next((i for i, ln in enumerate(lines) if ln.startswith(BEGIN_MARKER)), None)
    if start is None:
        tail = "\n".join(lines[-15:])
        raise LabError(
            f"the in-guest driver never started (no {BEGIN_MARKER}); console tail:\n{tail}"
        )
    body: list[list[str]] = []
    for ln in lines[start + 1 :]:
        if ln.startswith(END_MARKER):
            tok = ln.split()
            return body, _dec(tok[2], "total time") if len(tok) > 2 else 0
        # Kernel messages can land on the console between result lines; skip them.
        if _LINE.match(ln):
            body.append(ln.split())
    tail = "\n".join(lines[-15:])
    raise LabError(f"driver output ended without {END_MARKER} (crash or timeout?); tail:\n{tail}")


def parse_output(console: str, scenarios: Sequence[Scenario]) -> ParsedOutput:
    """Parse the console text of one lab boot into per-scenario results.

    Raises:
        LabError: markers missing, the driver could not open /dev/kvm, or the
            result lines do not match the scenarios' steps.
    """
    body, total_us = _result_lines(console)
    release = ""
    results: list[ScenarioResult] = []
    it = iter(body)
    pending: list[str] | None = None
    for tok in it:
        if tok[0] == "U":
            release = " ".join(tok[1:])
        elif tok[0] == "Z":
            raise LabError(f"driver failed at startup: {' '.join(tok[2:])}: errno {tok[1]}")
        elif tok[0] == "S":
            pending = tok
            break
    k = 0
    while pending is not None:
        if k >= len(scenarios):
            raise LabError(f"driver reported more scenarios than the {len(scenarios)} sent")
        sc = scenarios[k]
        if _int(pending[1], "scenario id") != k:
            raise LabError(f"expected scenario {k}, driver reported {pending[1]}")
        steps: list[StepResult] = []
        setup_errno = 0
        elapsed = 0
        pending = None
        for tok in it:
            if tok[0] == "E":
                elapsed = _dec(tok[2], "elapsed") if len(tok) > 2 else 0
                break
            if tok[0] == "X":
                setup_errno = _dec(tok[1], "errno")
                continue
            if tok[0] == "S":
                raise LabError(f"scenario {k} ({sc.name}) has no end line")
            if len(steps) >= len(sc.steps):
                raise LabError(f"scenario {k} ({sc.name}): more results than steps")
            steps.append(_parse_step(tok, sc.steps[len(steps)]))
        else:
            raise LabError(f"scenario {k} ({sc.name}) has no end line")
        if not setup_errno and len(steps) != len(sc.steps):
            raise LabError(
                f"scenario {k} ({sc.name}): {len(steps)} results for {len(sc.steps)} steps"
            )
        results.append(ScenarioResult(sc.name, tuple(steps), setup_errno, elapsed))
        k += 1
        pending = next((t for t in it if t[0] == "S"), None)
    if k != len(scenarios):
        raise LabError(f"driver reported {k} of {len(scenarios)} scenarios")
    return ParsedOutput(release, tuple(results), total_us)


# ----------------------------------------------------------------------------- JSON


def _step_to_dict(step: Step) -> dict[str, Any]:
    match step:
        case SetFilter(base, nr, action, pad):
            d: dict[str, Any] = {"op": "set_filter", "base": base, "nr": nr, "action": action}
            if any(pad):
                d["pad"] = pad.hex()
            return d
        case SetFwBitmap(reg, value):
            return {"op": "set_fw_bitmap", "reg": reg, "value": value}
        case GetFwBitmap(reg):
            return {"op": "get_fw_bitmap", "reg": reg}
        case SetPsciVersion(major, minor):
            return {"op": "set_psci_version", "major": major, "minor": minor}
        case CreateVcpu():
            return {"op": "create_vcpu"}
        case Run():
            return {"op": "run"}
        case Call(x0, x1, x2, x3, conduit, imm, mode):
            return {
                "op": "call",
                "x0": x0,
                "x1": x1,
                "x2": x2,
                "x3": x3,
                "conduit": conduit,
                "imm": imm,
                "mode": mode,
            }
    raise LabError(f"unknown step {step!r}")  # pragma: no cover


def _step_from_dict(d: Mapping[str, Any]) -> Step:
    op = d.get("op")
    try:
        if op == "set_filter":
            return SetFilter(
                int(d["base"]),
                int(d["nr"]),
                int(d["action"]),
                bytes.fromhex(d.get("pad", "") or "00" * _PAD_LEN),
            )
        if op == "set_fw_bitmap":
            return SetFwBitmap(int(d["reg"]), int(d["value"]))
        if op == "get_fw_bitmap":
            return GetFwBitmap(int(d["reg"]))
        if op == "set_psci_version":
            return SetPsciVersion(int(d["major"]), int(d["minor"]))
        if op == "create_vcpu":
            return CreateVcpu()
        if op == "run":
            return Run()
        if op == "call":
            return Call(
                int(d["x0"]),
                int(d.get("x1", CALL_MARKERS[0])),
                int(d.get("x2", CALL_MARKERS[1])),
                int(d.get("x3", CALL_MARKERS[2])),
                cast(Conduit, d.get("conduit", "hvc")),
                int(d.get("imm", 0)),
                cast(Mode, d.get("mode", "a64")),
            )
    except (KeyError, TypeError, ValueError) as e:
        raise LabError(f"bad {op} step {dict(d)!r}: {e}") from e
    raise LabError(f"unknown step op {op!r}")


def scenario_to_dict(sc: Scenario) -> dict[str, Any]:
    """JSON-ready form of a scenario (integers stay integers; pad is hex)."""
    cfg = sc.config
    return {
        "name": sc.name,
        "config": {"mode": cfg.mode, "psci_0_2": cfg.psci_0_2, "extra_vcpus": cfg.extra_vcpus},
        "steps": [_step_to_dict(s) for s in sc.steps],
    }


def scenario_from_dict(d: Mapping[str, Any]) -> Scenario:
    """Inverse of :func:`scenario_to_dict`.

    Raises:
        LabError: missing or malformed fields.
    """
    try:
        cfg = d.get("config", {})
        config = VmConfig(
            mode=cfg.get("mode"),
            psci_0_2=bool(cfg.get("psci_0_2", True)),
            extra_vcpus=int(cfg.get("extra_vcpus", 0)),
        )
        return Scenario(str(d["name"]), tuple(_step_from_dict(s) for s in d["steps"]), config)
    except (KeyError, TypeError, AttributeError) as e:
        raise LabError(f"bad scenario {d!r}: {e}") from e


def _step_result_to_dict(r: StepResult) -> dict[str, Any]:
    match r:
        case ErrnoResult(errno):
            return {"kind": "errno", "errno": errno}
        case RegValue(errno, value):
            return {"kind": "reg", "errno": errno, "value": value}
        case RunResult(errno, exit_kind):
            return {"kind": "run", "errno": errno, "exit": exit_kind}
        case CallOutcome():
            d: dict[str, Any] = {"kind": "call"}
            d.update({f.name: getattr(r, f.name) for f in fields(CallOutcome)})
            return d
    raise LabError(f"unknown step result {r!r}")  # pragma: no cover


def _step_result_from_dict(d: Mapping[str, Any]) -> StepResult:
    kind = d.get("kind")
    try:
        if kind == "errno":
            return ErrnoResult(int(d["errno"]))
        if kind == "reg":
            return RegValue(int(d["errno"]), int(d["value"]))
        if kind == "run":
            return RunResult(int(d["errno"]), str(d["exit"]))
        if kind == "call":
            return CallOutcome(**{f.name: d[f.name] for f in fields(CallOutcome)})
    except (KeyError, TypeError, ValueError) as e:
        raise LabError(f"bad {kind} result {dict(d)!r}: {e}") from e
    raise LabError(f"unknown result kind {kind!r}")


def result_to_dict(r: ScenarioResult) -> dict[str, Any]:
    """JSON-ready form of a scenario result."""
    return {
        "name": r.name,
        "setup_errno": r.setup_errno,
        "elapsed_us": r.elapsed_us,
        "steps": [_step_result_to_dict(s) for s in r.steps],
    }


def result_from_dict(d: Mapping[str, Any]) -> ScenarioResult:
    """Inverse of :func:`result_to_dict`.

    Raises:
        LabError: missing or malformed fields.
    """
    try:
        return ScenarioResult(
            str(d["name"]),
            tuple(_step_result_from_dict(s) for s in d["steps"]),
            int(d.get("setup_errno", 0)),
            int(d.get("elapsed_us", 0)),
        )
    except (KeyError, TypeError) as e:
        raise LabError(f"bad scenario result {d!r}: {e}") from e
