"""The verify room: prove a table, and the emulator, on a real Linux KVM in the lab.

:func:`verify` compiles a spec, turns its records and ``[vm]`` settings into
lab :class:`~hvcfilter.lab.Scenario` objects (install steps, then
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
nothing is skipped as "not modelled". Plans are :mod:`.plans`; running them
and comparing is :mod:`.run`.

Imports: the lab through its public names (:mod:`hvcfilter.lab`), the table
pipeline, the trace readers and the kernel's profiles; never the CLI or the
renderers.
"""

from __future__ import annotations

from hvcfilter.verify.plans import (
    CALLS_PER_SCENARIO,
    FILTER_PROBE,
    LAB_PROFILES,
    MAX_TRACE_CALLS,
    Plan,
    conformance_plan,
    emulator_profile,
    lab_kernel_for,
    probe_ids,
    probe_plan,
    setup_steps,
    trace_plan,
)
from hvcfilter.verify.run import (
    DivergentStep,
    KernelReport,
    RunFunction,
    VerifyResult,
    conformance,
    run_plan,
    verify,
)

__all__ = [
    "CALLS_PER_SCENARIO",
    "FILTER_PROBE",
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
