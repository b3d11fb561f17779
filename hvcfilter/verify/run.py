"""Running a plan on real kernels and comparing every answer with the emulator.

:func:`run_plan` boots each lab kernel once with the plan's scenarios and
replays every scenario on :class:`hvcfilter.kernel.KvmVm` under the
matching profile; :func:`verify` and :func:`conformance` build the plan and
return a :class:`VerifyResult` whose :class:`KernelReport` per kernel lists
each :class:`DivergentStep`. Nothing here prints or exits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from hvcfilter import smccc
from hvcfilter.diagnostics import Diagnostic
from hvcfilter.errors import LabError, errno_name
from hvcfilter.lab import (
    DEFAULT_KERNELS,
    Call,
    Divergence,
    ErrnoResult,
    HasDeviceAttr,
    LabRun,
    LabStatus,
    Scenario,
    ScenarioResult,
    SetFilter,
    SetFwBitmap,
    SetPsciVersion,
    Step,
    compare,
    default_vm_factory,
    lab_status,
    replay,
    run_scenarios,
)
from hvcfilter.model import VmConfig as SpecVmConfig
from hvcfilter.table.payload import Record
from hvcfilter.verify.plans import (
    MAX_TRACE_CALLS,
    Plan,
    conformance_plan,
    emulator_profile,
    lab_kernel_for,
    probe_plan,
    trace_plan,
)

__all__ = [
    "DivergentStep",
    "KernelReport",
    "RunFunction",
    "VerifyResult",
    "conformance",
    "run_plan",
    "verify",
]

RunFunction = Callable[[LabStatus, str, Sequence[Scenario]], LabRun]
_U32 = 0xFFFF_FFFF


@dataclass(frozen=True, slots=True)
class DivergentStep:
    """One step where the real kernel and the emulator disagree, with everything needed to see why.

    ``context`` lists the scenario's earlier non-call steps (its installs and
    register writes, which decide the answer); ``real`` is the real result's
    fields and ``emulated`` the emulator's (with its ``reason`` for a call).
    """

    kernel: str
    scenario: str
    step: int
    what: str
    fields: tuple[tuple[str, object, object], ...]
    context: tuple[str, ...]
    real: Mapping[str, object]
    emulated: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class KernelReport:
    """What one lab kernel gave: counts, agreement, timings and every divergence."""

    kernel: str
    profile: str
    package: str
    version: str
    release: str
    scenarios: int
    installs: int
    installs_accepted: int
    settings: int
    calls: int
    calls_agreed: int
    divergences: tuple[DivergentStep, ...]
    skipped: tuple[tuple[str, str], ...]
    boot_s: float
    driver_s: float
    total_s: float
    notes: tuple[str, ...] = ()
    # The real kernel's answer to KVM_HAS_DEVICE_ATTR(0, 0) when the plan
    # asked it: whether the SMCCC filter exists, and the errno when not.
    filter_available: bool | None = None
    probe_errno: int | None = None

    @property
    def steps_diverged(self) -> int:
        """Steps (installs, settings, calls) with at least one differing field."""
        return len(self.divergences)

    @property
    def ok(self) -> bool:
        """Every scenario was compared and nothing diverged."""
        return not self.divergences and not self.skipped


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of :func:`verify` or :func:`conformance`.

    ``diagnostics`` holds the spec's diagnostics; when the spec did not
    compile, ``kernels`` is empty and ``compiled`` is False.
    """

    source: str
    trace: str | None
    compiled: bool
    unreadable: bool
    diagnostics: tuple[Diagnostic, ...]
    records: tuple[Record, ...]
    notes: tuple[str, ...]
    kernels: tuple[KernelReport, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """The table compiled and every kernel agreed with the emulator on everything."""
        return self.compiled and bool(self.kernels) and all(k.ok for k in self.kernels)


def _describe(step: Step) -> str:
    match step:
        case Call():
            name = smccc.catalogue().name_of(step.x0 & _U32)
            label = f" {name}" if name else ""
            return (
                f"{step.mode} {step.conduit} #{step.imm:#x} x0={step.x0:#x}{label} "
                f"x1={step.x1:#x} x2={step.x2:#x} x3={step.x3:#x}"
            )
        case SetFilter():
            pad = "" if step.pad == bytes(15) else f" pad={step.pad.hex()}"
            return f"SetFilter base={step.base:#x} nr={step.nr:#x} action={step.action}{pad}"
        case SetFwBitmap():
            return f"SetFwBitmap reg={step.reg} value={step.value:#x}"
        case SetPsciVersion():
            return f"SetPsciVersion {step.text}"
        case _:
            return type(step).__name__


def _fields(obj: object) -> dict[str, object]:
    if obj is None:
        return {}
    if isinstance(obj, Exception):
        return {"exception": repr(obj)}
    if isinstance(obj, int):
        return {"value": obj}
    # Results are dataclasses or named tuples.
    names: Iterable[str] = (
        getattr(obj, "__dataclass_fields__", None) or getattr(obj, "_fields", None) or ()
    )
    out: dict[str, object] = {}
    for name in names:
        value = getattr(obj, name, None)
        if isinstance(value, str | int | bool) or value is None:
            out[name] = value
        elif isinstance(value, tuple):
            out[name] = list(value)
        else:
            out[name] = str(value)
    return out


def _divergent_steps(
    kernel: str, profile: str, scenario: Scenario, real: ScenarioResult, divs: Sequence[Divergence]
) -> list[DivergentStep]:
    emulated = replay(scenario, default_vm_factory(profile, scenario.config)())
    by_step: dict[int, list[Divergence]] = {}
    for d in divs:
        by_step.setdefault(d.step, []).append(d)
    out = []
    for index, group in sorted(by_step.items()):
        step = scenario.steps[index]
        context = tuple(
            f"step {i}: {_describe(s)}"
            for i, s in enumerate(scenario.steps[:index])
            if not isinstance(s, Call)
        )
        out.append(
            DivergentStep(
                kernel=kernel,
                scenario=scenario.name,
                step=index,
                what=_describe(step),
                fields=tuple((d.field, d.real, d.emulated) for d in group),
                context=context,
                real=_fields(real.steps[index] if index < len(real.steps) else None),
                emulated=_fields(emulated[index]),
            )
        )
    return out


def _report(kernel: str, plan: Plan, run: LabRun) -> KernelReport:
    profile = emulator_profile(kernel)
    installs = accepted = settings = calls = agreed = 0
    divergent: list[DivergentStep] = []
    skipped: list[tuple[str, str]] = []
    probe: int | None = None
    for scenario, real in zip(plan.scenarios, run.results, strict=True):
        for step, result in zip(scenario.steps, real.steps, strict=False):
            if step == HasDeviceAttr(0, 0) and isinstance(result, ErrnoResult):
                probe = result.errno
        comparison = compare(scenario, real, default_vm_factory(profile, scenario.config))
        if comparison.skipped:
            skipped.append((scenario.name, comparison.skipped))
            continue
        bad = {d.step for d in comparison.divergences}
        for index, (step, result) in enumerate(zip(scenario.steps, real.steps, strict=True)):
            if isinstance(step, Call):
                calls += 1
                agreed += index not in bad
            elif isinstance(step, SetFilter):
                installs += 1
                accepted += getattr(result, "errno", 1) == 0
            elif isinstance(step, SetFwBitmap | SetPsciVersion):
                settings += 1
        if comparison.divergences:
            divergent += _divergent_steps(kernel, profile, scenario, real, comparison.divergences)
    notes = []
    if profile != kernel:
        notes.append(
            f"lab kernel {kernel} is compared with emulator profile {profile} "
            "(hvcfilter has no profile of its own for it)"
        )
    if probe:
        notes.append(
            f"no SMCCC filter on Linux {run.release} (it arrived in 6.4): KVM_HAS_DEVICE_ATTR "
            f"failed with {errno_name(probe)} and every install was refused; the calls got "
            "the kernel's default handling"
        )
    return KernelReport(
        kernel=kernel,
        profile=profile,
        package=run.package,
        version=run.version,
        release=run.release,
        scenarios=len(plan.scenarios),
        installs=installs,
        installs_accepted=accepted,
        settings=settings,
        calls=calls,
        calls_agreed=agreed,
        divergences=tuple(divergent),
        skipped=tuple(skipped),
        boot_s=run.boot_s,
        driver_s=run.driver_s,
        total_s=run.total_s,
        notes=tuple(notes),
        filter_available=None if probe is None else not probe,
        probe_errno=probe or None,
    )


def _ready_lab(cache_dir: Path | None, kernels: Sequence[str]) -> LabStatus:
    lab = lab_status(cache_dir)
    if not lab.ready:
        missing = ", ".join(lab.missing_for_boot()) or "no kernel"
        raise LabError(
            f"the lab in {lab.cache_dir} is not ready (missing: {missing}); "
            f"run `hvcfilter lab setup --kernel {' --kernel '.join(kernels)}`"
        )
    for kernel in kernels:
        lab.kernel(kernel)  # raises with the setup command when absent
    return lab


def _default_run(lab: LabStatus, kernel: str, scenarios: Sequence[Scenario]) -> LabRun:
    return run_scenarios(lab, kernel, scenarios)


def run_plan(
    plan: Plan,
    kernels: Sequence[str],
    *,
    lab: LabStatus | None = None,
    cache_dir: Path | None = None,
    run: RunFunction = _default_run,
) -> tuple[KernelReport, ...]:
    """Run ``plan`` on each kernel (one boot each) and compare every step with the emulator.

    Raises:
        LabError: an unknown kernel, a lab that is not ready, or a failed boot.
    """
    for kernel in kernels:
        emulator_profile(kernel)
    status = lab if lab is not None else _ready_lab(cache_dir, kernels)
    reports = []
    for kernel in kernels:
        lab_run = run(status, kernel, plan.scenarios)
        if len(lab_run.results) != len(plan.scenarios):
            raise LabError(
                f"{kernel}: {len(plan.scenarios)} scenarios but {len(lab_run.results)} results"
            )
        reports.append(_report(kernel, plan, lab_run))
    return tuple(reports)


def _refusals(reports: Sequence[KernelReport]) -> list[str]:
    """Notes for install steps a real kernel refused (the table would not load there)."""
    return [
        f"Linux {r.release}: {r.installs - r.installs_accepted} of {r.installs} installs refused"
        for r in reports
        if r.installs_accepted != r.installs
    ]


def verify(
    spec_path: str | Path,
    trace: str | None = None,
    kernels: Sequence[str] = (),
    *,
    cache_dir: Path | None = None,
    lab: LabStatus | None = None,
    run: RunFunction = _default_run,
    max_calls: int = MAX_TRACE_CALLS,
) -> VerifyResult:
    """Compile a spec, install it on real kernels, replay calls and compare with the emulator.

    ``kernels`` are lab kernel keys; by default the one matching the spec's
    profile. Without ``trace`` the calls are :func:`probe_plan`'s; with one,
    the trace's distinct calls (:func:`trace_plan`). A spec with errors is
    returned uncompiled, with its diagnostics, and nothing runs.

    Raises:
        LabError: the lab is not ready, an unknown kernel, or a failed boot.
        TraceError: the trace cannot be read.
        UnknownProfileError, SpecError: from compiling the spec.
    """
    from hvcfilter.table.compiler import compile_file

    result = compile_file(spec_path)
    if result.table is None:
        return VerifyResult(
            str(spec_path), trace, False, result.unreadable, result.diagnostics, (), ()
        )
    table = result.table
    records = tuple(table.raw_records)
    vm = table.vm
    chosen = list(kernels) or [lab_kernel_for(table.profile)]
    if trace is None:
        plan = probe_plan(records, table.profile, vm)
    else:
        plan = _trace_plan_from_file(records, trace, vm, max_calls)
    reports = run_plan(plan, chosen, lab=lab, cache_dir=cache_dir, run=run)
    notes = (
        f"{len(records)} records from {table.spec_path} (profile {table.profile.name})",
        *plan.notes,
        *_refusals(reports),
    )
    return VerifyResult(
        str(spec_path), trace, True, False, result.diagnostics, records, notes, reports
    )


def _trace_plan_from_file(
    records: Sequence[Record], trace: str, vm: SpecVmConfig, max_calls: int
) -> Plan:
    from hvcfilter.trace import TraceTally, iter_events

    counts = TraceTally()
    # trace_plan keeps only the distinct calls: stream the events rather than hold a
    # whole (possibly multi-gigabyte) trace in memory. Its notes follow the trace's.
    plan = trace_plan(records, iter_events([trace], counts), vm, source=trace, max_calls=max_calls)
    notes = []
    if counts.smc_without_id:
        notes.append(
            f"{counts.smc_without_id} SMC traps in the trace carry no function ID "
            "(ftrace does not record it) and cannot be replayed"
        )
    if counts.skipped:
        notes.append(f"{counts.skipped} unparseable trace lines skipped")
    return replace(plan, notes=(*notes, *plan.notes))


def conformance(
    kernels: Sequence[str] = DEFAULT_KERNELS,
    seed: int = 1,
    count: int = 600,
    *,
    probes: bool = True,
    cache_dir: Path | None = None,
    lab: LabStatus | None = None,
    run: RunFunction = _default_run,
) -> VerifyResult:
    """The emulator against real kernels on :func:`conformance_plan`'s scenarios.

    Raises:
        LabError: the lab is not ready, an unknown kernel, or a failed boot.
        ValueError: a negative count.
    """
    plan = conformance_plan(seed, count, probes=probes)
    reports = run_plan(plan, list(kernels), lab=lab, cache_dir=cache_dir, run=run)
    return VerifyResult(plan.source, None, True, False, (), (), plan.notes, reports)
