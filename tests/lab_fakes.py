"""Fake labs for the verify tests: "real" kernels answered by captured consoles or the emulator.

Shared by tests/unit/verify/test_verify.py and tests/cli/test_cli_lab.py, so that neither
imports the other.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from hvcfilter.lab import LabRun, LabStatus
from hvcfilter.lab.crosscheck import default_vm_factory, replay
from hvcfilter.lab.scenario import (
    Call,
    CallOutcome,
    ErrnoResult,
    GetFwBitmap,
    RegValue,
    Run,
    RunResult,
    Scenario,
    ScenarioResult,
    StepResult,
)
from hvcfilter.lab.wire import parse_output

FIXTURES = Path(__file__).resolve().parent / "lab" / "fixtures"


def fake_status(tmp: Path, kernels: Sequence[str] = ("6.12", "7.2", "7.3")) -> LabStatus:
    info = {k: SimpleNamespace(key=k, package=f"linux-{k}", version=k, image=tmp) for k in kernels}
    return LabStatus(tmp, {}, info, tmp, "1.37", tmp)  # type: ignore[arg-type]


def fake_run(kernel: str, results: Sequence[ScenarioResult], release: str) -> LabRun:
    return LabRun(
        kernel, f"linux-{kernel}", kernel, release, tuple(results), 2.0, 1.0, 3.0, "", None
    )


def console_run(console_kernel: str) -> Any:
    """A run function answering the probe batch from a captured console."""

    def run(_lab: LabStatus, kernel: str, scenarios: Sequence[Scenario]) -> LabRun:
        text = (FIXTURES / f"console-probes-{console_kernel}.txt").read_text()
        parsed = parse_output(text, scenarios)
        return fake_run(kernel, parsed.results, parsed.release)

    return run


def emulated_result(step: object, em: object) -> StepResult:
    if isinstance(step, Call):

        def reg(n: int) -> int:
            v = getattr(em, f"x{n}")
            return 0 if v is None else int(v)

        return CallOutcome(
            em.exit or "none", em.nr, em.flags, True,  # type: ignore[attr-defined]
            reg(0), reg(1), reg(2), reg(3),
            em.event_type, None, None, None, 0, 0,  # type: ignore[attr-defined]
        )  # fmt: skip
    if isinstance(em, Exception):
        # The emulator raises for a register it does not have; the kernel says ENOENT.
        return RegValue(errno.ENOENT, 0)
    if em is None:
        return RunResult(0, "mmio") if isinstance(step, Run) else ErrnoResult(0)
    if isinstance(step, GetFwBitmap):
        return RegValue(0, int(em))  # type: ignore[call-overload]
    return ErrnoResult(int(em))  # type: ignore[call-overload]


def emulator_run(profile: str, *, flip: int | None = None) -> Any:
    """A run function whose 'real' kernel is the emulator; ``flip`` changes one call's x0."""

    def run(_lab: LabStatus, kernel: str, scenarios: Sequence[Scenario]) -> LabRun:
        results = []
        n = 0
        for sc in scenarios:
            steps: list[StepResult] = []
            vm = default_vm_factory(profile, sc.config)()  # shaped as the lab's VM, capability too
            for step, em in zip(sc.steps, replay(sc, vm), strict=True):
                res = emulated_result(step, em)
                if isinstance(res, CallOutcome) and res.exit == "none":
                    if n == flip:
                        res = replace(res, x0=res.x0 ^ 0x40)
                    n += 1
                steps.append(res)
            results.append(ScenarioResult(sc.name, tuple(steps)))
        return fake_run(kernel, results, f"{kernel}.0-fake")

    return run
