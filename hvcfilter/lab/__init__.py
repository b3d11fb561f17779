"""The real-kernel lab: run scenarios on a real Linux arm64 KVM under qemu-system-aarch64.

Public entry points: :func:`prepare_lab` / :func:`lab_status` (the cache of
Debian kernels, busybox and the in-guest driver), :func:`run_scenarios` (boot
one kernel, run a batch of :class:`Scenario` objects, return a :class:`LabRun`),
:func:`run_guest` (boot the kernel as a KVM guest of the lab's VMM, :class:`GuestRun`),
:mod:`hvcfilter.lab.crosscheck` (replay a scenario on the emulator and list
divergences), :mod:`hvcfilter.lab.random_scenarios` (seeded random conformance
scenarios) and :mod:`hvcfilter.lab.probes` (the curated questions the lab
answers for the reference). The driver's wire format is :mod:`.wire`, the
scenarios' JSON form :mod:`.serial`.

Imports: :mod:`hvcfilter.smccc` and :mod:`hvcfilter.errors`; the emulator
only when a caller asks for its default VM factory. Other rooms use the
names below, never the modules inside.
"""

from __future__ import annotations

from hvcfilter.lab.cache import (
    DEFAULT_KERNELS,
    KERNELS,
    KernelInfo,
    LabStatus,
    default_cache_dir,
    lab_status,
    prepare_lab,
)
from hvcfilter.lab.call_probe import CallSample
from hvcfilter.lab.crosscheck import Divergence, compare, default_vm_factory, replay
from hvcfilter.lab.guest import GuestRun, VmmEvent, build_vmm, run_guest
from hvcfilter.lab.probes import discovery_scenarios, probe_scenarios, system_suspend_scenarios
from hvcfilter.lab.random_scenarios import generate
from hvcfilter.lab.runner import LabRun, run_scenarios
from hvcfilter.lab.scenario import (
    CALL_MARKERS,
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
    VmConfig,
)

__all__ = [
    "CALL_MARKERS",
    "DEFAULT_KERNELS",
    "KERNELS",
    "Call",
    "CallOutcome",
    "CallSample",
    "CreateVcpu",
    "Divergence",
    "ErrnoResult",
    "GetFwBitmap",
    "GuestRun",
    "HasDeviceAttr",
    "KernelInfo",
    "LabRun",
    "LabStatus",
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
    "VmmEvent",
    "build_vmm",
    "compare",
    "default_cache_dir",
    "default_vm_factory",
    "discovery_scenarios",
    "generate",
    "lab_status",
    "prepare_lab",
    "probe_scenarios",
    "replay",
    "run_guest",
    "run_scenarios",
    "system_suspend_scenarios",
]
