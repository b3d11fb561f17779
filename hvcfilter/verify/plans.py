"""What a verification runs: lab scenarios made from a table, a trace or the conformance seed.

A :class:`Plan` is the scenarios every lab kernel runs: the table's install
steps (``[vm]`` settings first), then calls: a trace's distinct calls, or a
generated probe set covering every record edge, every reserved-range edge
and every catalogue ID on both conduits; or, for conformance, the lab's
seeded random scenarios and curated probes. Which emulator profile models
which lab kernel is here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from hvcfilter import smccc
from hvcfilter.errors import LabError
from hvcfilter.kernel.profiles import KernelProfile, get_profile
from hvcfilter.lab import (
    CALL_MARKERS,
    KERNELS,
    Call,
    HasDeviceAttr,
    Scenario,
    SetFilter,
    SetFwBitmap,
    SetPsciVersion,
    Step,
    discovery_scenarios,
    generate,
    probe_scenarios,
    system_suspend_scenarios,
)
from hvcfilter.model import VmConfig as SpecVmConfig
from hvcfilter.table.payload import Record

__all__ = [
    "CALLS_PER_SCENARIO",
    "FILTER_PROBE",
    "LAB_PROFILES",
    "MAX_TRACE_CALLS",
    "Plan",
    "conformance_plan",
    "emulator_profile",
    "lab_kernel_for",
    "probe_ids",
    "probe_plan",
    "setup_steps",
    "trace_plan",
]

# Lab kernel key -> emulator profile. There is no 7.3 profile: 7.3-rc7 behaved
# exactly like 7.2.13 on every probe (lab report section 4), so it borrows 7.2.
LAB_PROFILES: dict[str, str] = {
    "6.1": "6.1",
    "6.12": "6.12",
    "6.12-trixie": "6.12",
    "7.2": "7.2",
    "7.3": "7.2",
}
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


# A VM of its own that only asks KVM_HAS_DEVICE_ATTR(0, 0), as a VMM probes
# before installing: 0 with the filter, EINVAL before Linux 6.4 [obs 6.1.176].
FILTER_PROBE = Scenario("filter-probe", (HasDeviceAttr(0, 0),))


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
    return Plan("probes", (FILTER_PROBE, *scenarios), (note,))


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
    scenarios = _scenarios("trace", setup, calls, chunk=chunk)
    return Plan(source, (FILTER_PROBE, *scenarios), tuple(notes))


def conformance_plan(seed: int, count: int, *, probes: bool = True) -> Plan:
    """The conformance batch: ``generate(seed, count)``, the lab's probes and a default-table probe.

    Raises:
        ValueError: a negative count.
    """

    scenarios = list(generate(seed, count))
    notes = [f"{count} random scenarios from seed {seed}"]
    if probes:
        curated = [*probe_scenarios(), *system_suspend_scenarios(), *discovery_scenarios()]
        empty = probe_plan((), get_profile(None), prefix="default-probe")
        scenarios += [*curated, *empty.scenarios]
        notes.append(f"{len(curated)} curated probe scenarios and the probe set of an empty table")
    return Plan(f"conformance seed {seed}", tuple(scenarios), tuple(notes))
