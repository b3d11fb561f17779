"""Tests that boot the real lab (qemu-system-aarch64 + Debian arm64 kernels); marker ``lab``.

Run with ``pytest -m lab tests/lab``.  They check that the lab reproduces the
reference's observed facts and that results are identical across reruns.  The
``lab`` fixture (conftest.py) prepares the lab and fails loudly when it cannot:
these tests never skip.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from hvcfilter.lab import LabStatus, compare, default_vm_factory, run_scenarios
from hvcfilter.lab.random_scenarios import generate
from hvcfilter.lab.scenario import Call, CallOutcome, ErrnoResult, Scenario, VmConfig
from hvcfilter.lab.serial import scenario_from_dict

pytestmark = pytest.mark.lab
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("kernel", ["6.12", "7.2"])
def test_sample_trace_scenario_matches_reference(lab: LabStatus, kernel: str) -> None:
    scs = [
        scenario_from_dict(d) for d in json.loads((FIXTURES / "sample_scenarios.json").read_text())
    ]
    run = run_scenarios(lab, kernel, scs, call_timeout_ms=100)
    assert run.release.startswith(kernel.split("-", maxsplit=1)[0])
    steps = run.results[0].steps
    assert steps[0] == ErrnoResult(0) and steps[11] == ErrnoResult(errno.EBUSY)
    fwd = steps[7]
    assert isinstance(fwd, CallOutcome) and (fwd.exit, fwd.nr, fwd.flags) == (
        "hypercall", 0xC200_0005, 1,
    )  # fmt: skip
    zero_zero = run.results[1].steps[0]
    assert zero_zero == ErrnoResult(errno.EEXIST if kernel == "6.12" else errno.EINVAL)


def test_random_batch_is_deterministic_across_boots(lab: LabStatus) -> None:
    scs = generate(11, 40)
    a = run_scenarios(lab, "6.12", scs)
    b = run_scenarios(lab, "6.12", scs)

    def stable(run: object) -> list[object]:
        out: list[object] = []
        for sc, res in zip(scs, run.results, strict=True):  # type: ignore[attr-defined]
            for step, r in zip(sc.steps, res.steps, strict=True):
                x0 = getattr(step, "x0", 0) & 0xFFFF_FFFF
                if x0 not in (0x8400_0053, 0xC400_0053, 0x8600_0001):  # random / clock
                    out.append(r)
        return out

    assert stable(a) == stable(b)


@pytest.mark.parametrize("kernel", ["6.1", "7.2"])
def test_a_system_event_stops_every_vcpu_on_the_real_kernel(lab: LabStatus, kernel: str) -> None:
    # After SYSTEM_RESET the kernel has stopped every vCPU; the driver makes vCPU 0
    # runnable again, so a secondary started before reads OFF and starts anew.
    cpu_on, affinity = 0xC400_0003, 0xC400_0004
    steps = (
        Call(cpu_on, 1, 0x4000_0000, 0),
        Call(0x8400_0009, 0, 0, 0),  # SYSTEM_RESET
        Call(affinity, 1, 0, 0),
        Call(cpu_on, 1, 0x4000_0000, 0),
    )
    scenario = Scenario("system-event-stops-vcpus", steps, VmConfig(extra_vcpus=1))
    result = run_scenarios(lab, kernel, [scenario], call_timeout_ms=100).results[0]
    real = [(s.exit, s.x0) for s in result.steps if isinstance(s, CallOutcome)]
    assert real == [("none", 0), ("system_event", (-6) & 0xFFFF_FFFF_FFFF_FFFF), ("none", 1),
                    ("none", 0)]  # fmt: skip
    assert compare(scenario, result, default_vm_factory(kernel, scenario.config)).divergences == ()
