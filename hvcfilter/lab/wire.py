"""The in-guest driver's wire format: scenarios in as lines, results out as console lines.

The driver (``driver/smccc_driver.c``) reads a batch of scenarios in the
line format :func:`to_wire` writes and prints one result line per step
between markers; :func:`parse_output` turns the console text back into
:class:`~hvcfilter.lab.scenario.ScenarioResult` objects. Keep both grammars
in step with the driver's header comment. No I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from hvcfilter.errors import LabError
from hvcfilter.lab.scenario import (
    BEGIN_MARKER,
    END_MARKER,
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
    Step,
    StepResult,
    check_range,
)

__all__ = ["ParsedOutput", "parse_output", "to_wire"]

_U32 = 0xFFFF_FFFF


@dataclass(frozen=True, slots=True)
class ParsedOutput:
    """Everything the driver printed: kernel release, results, driver-side run time."""

    release: str
    results: tuple[ScenarioResult, ...]
    driver_us: int


def _wire_step(step: Step) -> str:
    match step:
        case SetFilter(base, nr, action, pad):
            return f"F {base:x} {nr:x} {action:x} {pad.hex()}"
        case HasDeviceAttr(group, attr):
            return f"A {group:x} {attr:x}"
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
    check_range("timeout_ms", timeout_ms, 600_000)
    if timeout_ms == 0:
        raise LabError("timeout_ms must be positive")
    lines = [f"T {timeout_ms}"]
    for k, sc in enumerate(scenarios):
        cfg = sc.config
        lines.append(
            f"S {k:x} {sc.vcpu_mode} {int(cfg.psci_0_2)} {cfg.extra_vcpus} "
            f"{int(cfg.system_suspend)}"
        )
        lines.extend(_wire_step(step) for step in sc.steps)
        lines.append("E")
    return "\n".join(lines) + "\n"


_TAG_OF: dict[type, str] = {
    SetFilter: "F",
    HasDeviceAttr: "A",
    SetFwBitmap: "B",
    GetFwBitmap: "G",
    SetPsciVersion: "P",
    CreateVcpu: "V",
    Run: "N",
    Call: "C",
}
_LINE = re.compile(r"^(?:@@HVCLAB-(?:BEGIN|END)|[USFABGPVNCXEZ])(?: |$)")


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
        setup_step = ""
        elapsed = 0
        pending = None
        for tok in it:
            if tok[0] == "E":
                elapsed = _dec(tok[2], "elapsed") if len(tok) > 2 else 0
                break
            if tok[0] == "X":
                setup_errno = _dec(tok[1], "errno")
                setup_step = tok[2] if len(tok) > 2 else ""
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
        results.append(ScenarioResult(sc.name, tuple(steps), setup_errno, elapsed, setup_step))
        k += 1
        pending = next((t for t in it if t[0] == "S"), None)
    if k != len(scenarios):
        raise LabError(f"driver reported {k} of {len(scenarios)} scenarios")
    return ParsedOutput(release, tuple(results), total_us)
