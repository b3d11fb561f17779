"""Conformance of the emulator with real Linux KVMs (marker ``lab``): every answer must agree.

Per kernel, one boot runs a seeded random batch (install sequences, reserved
range edges, 32-bit wrap, bad pads and actions, EBUSY after the first run,
bitmaps and PSCI versions, both conduits, immediates, A64/A32/T32, high bits
in x0), the lab's curated probes and the probe set of an empty table; a
second boot runs the probe sets of every shipped example spec, compiled by
the real compiler. Thousands of calls per kernel; any divergence fails the
test and is printed in full. A divergence is an emulator bug to fix, or a
kernel difference to record in a profile.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from hvcfilter.lab import LabStatus, Scenario
from hvcfilter.render.verify import verify_text
from hvcfilter.spec import load
from hvcfilter.table.compiler import compile_file
from hvcfilter.verify import Plan, VerifyResult, conformance, probe_plan, run_plan

pytestmark = pytest.mark.lab

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SEED = 20240601
COUNT = 600  # with the probes: about 5,000 calls per kernel, about 12 s per boot


@pytest.mark.parametrize("kernel", ["6.1", "6.12", "7.2"])
def test_random_and_probe_scenarios_agree(lab: LabStatus, kernel: str) -> None:
    result = conformance([kernel], SEED, COUNT, lab=lab)
    (report,) = result.kernels
    assert result.ok, verify_text(result, width=200)
    assert report.release.startswith(kernel)
    assert report.scenarios > COUNT and report.calls >= 3000
    assert report.calls_agreed == report.calls
    # 6.1 has no SMCCC filter: the probe and every install fail with EINVAL.
    assert report.filter_available is (kernel != "6.1")
    if kernel == "6.1":
        assert report.probe_errno == errno.EINVAL and report.installs_accepted == 0


@pytest.mark.parametrize("kernel", ["6.12", "7.2"])
def test_example_specs_agree(lab: LabStatus, kernel: str) -> None:
    scenarios: list[Scenario] = []
    specs = sorted(EXAMPLES.glob("*.toml"))
    for path in specs:
        compiled = compile_file(path)
        loaded = load(path)
        assert compiled.table is not None and loaded.spec is not None, path
        plan = probe_plan(
            compiled.table.raw_records, compiled.table.profile, loaded.spec.vm, prefix=path.stem
        )
        scenarios += plan.scenarios
    (report,) = run_plan(Plan("examples", tuple(scenarios)), [kernel], lab=lab)
    result = VerifyResult("examples", None, True, False, (), (), (), (report,))
    assert result.ok, verify_text(result, width=200)
    assert report.calls > 500 * len(specs) and report.installs_accepted == report.installs
