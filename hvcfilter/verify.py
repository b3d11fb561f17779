"""Verification on a real Linux KVM: install a compiled table in the lab, make calls, compare.

:func:`verify` compiles a spec, turns its records and ``[vm]`` settings into
lab :class:`~hvcfilter.lab.scenario.Scenario` objects (install steps, then
calls: a trace's distinct calls, or without a trace a generated probe set
covering every record edge, every reserved-range edge and every catalogue
ID on both conduits), runs them on each requested lab kernel with one boot
per kernel, and compares every real result with ``hvcfilter.kernel.KvmVm``
under the matching emulator profile. :func:`conformance` does the same with
the lab's seeded random scenarios and curated probes instead of a spec.
Both return a :class:`VerifyResult`; nothing here prints or exits. The
``[vm]`` settings are scenario steps (``SetPsciVersion``, ``SetFwBitmap``),
so the real VM and the emulated one get them the same way; the emulated VM
is built per scenario with the scenario's vCPU count and PSCI feature, so
nothing is skipped as "not modelled".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hvcfilter import smccc
from hvcfilter.diagnostics import Diagnostic
from hvcfilter.errors import LabError
from hvcfilter.kernel.profiles import KernelProfile, get_profile
from hvcfilter.lab import DEFAULT_KERNELS, KERNELS, LabRun, LabStatus, lab_status, run_scenarios
from hvcfilter.lab.compare import Divergence, compare, default_vm_factory, replay
from hvcfilter.lab.scenario import (
    CALL_MARKERS,
    Call,
    Scenario,
    ScenarioResult,
    SetFilter,
    SetFwBitmap,
    SetPsciVersion,
    Step,
)
from hvcfilter.model import VmConfig as SpecVmConfig
from hvcfilter.table.payload import Record

__all__ = [
    "CALLS_PER_SCENARIO",
    "LAB_PROFILES",
    "MAX_TRACE_CALLS",
    "DivergentStep",
    "KernelReport",
    "Plan",
    "RunFunction",
    "VerifyResult",
    "conformance",
    "conformance_plan",
    "emulator_profile",
    "lab_kernel_for",
    "probe_ids",
    "probe_plan",
    "run_plan",
    "setup_steps",
    "trace_plan",
    "verify",
]

# Lab kernel key -> emulator profile. There is no 7.3 profile: 7.3-rc7 behaved
# exactly like 7.2.13 on every probe (lab report section 4), so it borrows 7.2.
LAB_PROFILES: dict[str, str] = {"6.12": "6.12", "6.12-trixie": "6.12", "7.2": "7.2", "7.3": "7.2"}
# The driver takes hundreds of calls per VM; smaller VMs keep a surprise local.
CALLS_PER_SCENARIO = 128
# A trace with more distinct calls than this is cut, with a note saying so.
MAX_TRACE_CALLS = 4096
_U32 = 0xFFFF_FFFF
# Set in x0 bits 63:32 of one probe per record base: KVM must look at W0 only.
_HIGH_BITS = 0xDEAD_BEEF << 32
# PSCI function numbers that halt or stop the vCPU or end in a system event:
# such a call gets a VM of its own so that it cannot disturb later answers.
_DISRUPTIVE_PSCI = {0x01, 0x02, 0x08, 0x09, 0x0E, 0x12, 0x15}
_PSCI_0_1 = range(0x95C1_BA5E, 0x95C1_BA62)

RunFunction = Callable[[LabStatus, str, Sequence[Scenario]], LabRun]


# --------------------------------------------------------------------------- kernels


def emulator_profile(kernel: str) -> str:
    """The emulator profile that models lab kernel ``kernel`` (``"7.3"`` -> ``"7.2"``).

    Raises:
        LabError: ``kernel`` is not a lab kernel key.
    """
    try:
        return LAB_PROFILES[kernel]
    except KeyError:
        raise LabError(f"unknown lab kernel {kernel!r}; known: {', '.join(LAB_PROFILES)}") from None


def lab_kernel_for(profile: KernelProfile) -> str:
    """The lab kernel that a spec's emulator profile stands for (``6.12`` -> ``6.12``).

    Raises:
        LabError: no lab kernel has that version.
    """
    if profile.name in KERNELS:
        return profile.name
    raise LabError(
        f"no lab kernel for profile {profile.name}; pick one with --kernel ({', '.join(KERNELS)})"
    )


# --------------------------------------------------------------------------- plans


@dataclass(frozen=True, slots=True)
class Plan:
    """The scenarios one verification runs on every kernel, and notes about how they were made."""

    source: str
    scenarios: tuple[Scenario, ...]
    notes: tuple[str, ...] = ()


def setup_steps(records: Sequence[Record], vm: SpecVmConfig | None = None) -> tuple[Step, ...]:
    """The install steps of a compiled table: ``[vm]`` settings first, then one record each.

    The PSCI version and the bitmaps are vCPU registers, so the driver creates
    the vCPU first; filters stay writable until the first run either way.
    """
    steps: list[Step] = []
    if vm is not None:
        if vm.psci_version is not None:
            steps.append(SetPsciVersion(*vm.psci_version))
        steps += [SetFwBitmap(reg, value) for reg, value in sorted(vm.bitmaps.items())]
    steps += [SetFilter(r.base, r.nr_functions, r.action, r.pad) for r in records]
    return tuple(steps)


def _edges(first: int, last: int) -> set[int]:
    return {v for v in (first - 1, first, first + 1, last - 1, last, last + 1) if 0 <= v <= _U32}


def probe_ids(records: Sequence[Record], profile: KernelProfile) -> list[int]:
    """Function IDs that probe a table: record and reserved-range edges, every catalogue ID.

    For a record ``base..end`` the edges are base-1, base, base+1, end-1, end
    and end+1, clamped to 32 bits.
    """
    ids: set[int] = set()
    for rec in records:
        if rec.nr_functions:
            ids |= _edges(rec.base, min(rec.base + rec.nr_functions - 1, _U32))
        else:
            ids |= _edges(rec.base, rec.base)
    for first, last in profile.reserved_ranges:
        ids |= _edges(first, last)
    ids |= {e.function_id for e in smccc.catalogue().entries}
    return sorted(ids)


def _disruptive(x0: int) -> bool:
    fid = x0 & _U32
    psci = fid & 0xBFFF_FFE0 == 0x8400_0000
    return (psci and fid & 0x1F in _DISRUPTIVE_PSCI) or fid in _PSCI_0_1


def _scenarios(
    prefix: str, setup: tuple[Step, ...], calls: Sequence[Call], *, chunk: int
) -> list[Scenario]:
    """Calls grouped into VMs of one width each; disruptive calls get a VM of their own."""
    out: list[Scenario] = []
    for wide in (True, False):
        mine = [c for c in calls if c.is_32bit != wide]
        tag = "a64" if wide else "a32"
        plain = [c for c in mine if not _disruptive(c.x0)]
        for n, start in enumerate(range(0, len(plain), chunk)):
            out.append(Scenario(f"{prefix}-{tag}-{n}", (*setup, *plain[start : start + chunk])))
        lone = [c for c in mine if _disruptive(c.x0)]
        out += [Scenario(f"{prefix}-{tag}-alone-{n}", (*setup, c)) for n, c in enumerate(lone)]
    return out


def probe_plan(
    records: Sequence[Record],
    profile: KernelProfile,
    vm: SpecVmConfig | None = None,
    *,
    prefix: str = "probe",
    a32: bool = True,
    chunk: int = CALLS_PER_SCENARIO,
) -> Plan:
    """The generated probe set of a table (see :func:`probe_ids`), ready to run.

    Every ID is called with ``hvc #0`` and ``smc #0`` from AArch64. Each
    record base is also called with ``hvc #7``, ``smc #1`` and with high bits
    in x0, and with ``a32`` the record edges and SMC32 catalogue IDs are
    called once more from an AArch32 guest.
    """
    setup = setup_steps(records, vm)
    ids = probe_ids(records, profile)
    calls = [Call(fid, conduit=c) for fid in ids for c in ("hvc", "smc")]
    for rec in records:
        calls += [
            Call(rec.base, conduit="hvc", imm=7),
            Call(rec.base, conduit="smc", imm=1),
            Call(rec.base | _HIGH_BITS),
        ]
    if a32:
        # SMC64 IDs from AArch32 only get NOT_SUPPORTED; the SMC32 ones are the sample.
        calls += [Call(fid, mode="a32") for fid in ids if not fid & smccc.CONVENTION_BIT]
    scenarios = _scenarios(prefix, setup, calls, chunk=chunk)
    note = (
        f"{len(calls)} probe calls: {len(ids)} function IDs (record edges, reserved-range "
        f"edges, {len(smccc.catalogue())} catalogue IDs) on hvc #0 and smc #0"
        + (", the SMC32 ones also from AArch32" if a32 else "")
    )
    return Plan("probes", tuple(scenarios), (note,))


def _trace_call(x0: int, conduit: str, imm: int, mode: str, regs: Sequence[int | None]) -> Call:
    width = 0xFFFF_FFFF_FFFF_FFFF if mode == "a64" else _U32
    defaults = CALL_MARKERS
    x1, x2, x3 = (d if r is None else r & width for r, d in zip(regs, defaults, strict=True))
    return Call(x0 & width, x1, x2, x3, conduit, imm, mode)  # type: ignore[arg-type]


def trace_plan(
    records: Sequence[Record],
    events: Iterable[Any],
    vm: SpecVmConfig | None = None,
    *,
    source: str = "trace",
    max_calls: int = MAX_TRACE_CALLS,
    chunk: int = CALLS_PER_SCENARIO,
    extra_notes: Sequence[str] = (),
) -> Plan:
    """The distinct calls of a trace, deduplicated by (x0, conduit, imm, mode), ready to run.

    ``events`` are :class:`hvcfilter.trace.TraceEvent` objects (anything with
    ``x0``, ``conduit``, ``imm``, ``mode`` and optional ``x1``-``x3``); the
    first occurrence of a call gives its x1-x3 (the lab's markers where the
    trace has none). At most ``max_calls`` distinct calls are kept, in trace
    order, and a note says how many were left out.
    """
    seen: dict[tuple[int, str, int, str], Call] = {}
    dropped: list[str] = []
    total = 0
    for ev in events:
        key = (int(ev.x0), str(ev.conduit), int(ev.imm), str(ev.mode))
        if key in seen:
            continue
        total += 1
        if len(seen) + len(dropped) >= max_calls:
            continue
        regs = (getattr(ev, "x1", None), getattr(ev, "x2", None), getattr(ev, "x3", None))
        try:
            seen[key] = _trace_call(*key, regs)
        except LabError as exc:
            # Not encodable as a guest instruction (e.g. an A32 SMC immediate over 15).
            dropped.append(f"{smccc.format_id(key[0] & _U32)} {key[1]} #{key[2]} {key[3]}: {exc}")
    notes = [*extra_notes, f"{total} distinct calls in {source}"]
    if total > max_calls:
        notes.append(
            f"trace cut: only the first {max_calls} of {total} distinct calls are replayed"
        )
    notes += [f"not replayable, left out: {d}" for d in dropped]
    calls = list(seen.values())
    setup = setup_steps(records, vm)
    return Plan(source, tuple(_scenarios("trace", setup, calls, chunk=chunk)), tuple(notes))


def conformance_plan(seed: int, count: int, *, probes: bool = True) -> Plan:
    """The conformance batch: ``generate(seed, count)``, the lab's probes and a default-table probe.

    Raises:
        ValueError: a negative count.
    """
    from hvcfilter.lab.generate import generate
    from hvcfilter.lab.probes import probe_scenarios

    scenarios = list(generate(seed, count))
    notes = [f"{count} random scenarios from seed {seed}"]
    if probes:
        curated = probe_scenarios()
        empty = probe_plan((), get_profile(None), prefix="default-probe")
        scenarios += [*curated, *empty.scenarios]
        notes.append(f"{len(curated)} curated probe scenarios and the probe set of an empty table")
    return Plan(f"conformance seed {seed}", tuple(scenarios), tuple(notes))


# --------------------------------------------------------------------------- results


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


# --------------------------------------------------------------------------- running


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
    names: Iterable[str] = getattr(obj, "__dataclass_fields__", None) or ()
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
    for scenario, real in zip(plan.scenarios, run.results, strict=True):
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
