"""Unit tests for hvcfilter.verify and hvcfilter.render.verify: pure, no QEMU.

Real results come from the lab's captured consoles under tests/lab/fixtures/;
spec-driven runs use a fake lab that answers with the emulator itself (so it
agrees) or with one answer changed (so it must diverge).
"""

from __future__ import annotations

import errno
import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from lab_fakes import console_run, emulator_run, fake_run, fake_status
from suite_paths import ROOT

from hvcfilter import smccc
from hvcfilter.errors import LabError
from hvcfilter.kernel.profiles import get_profile
from hvcfilter.lab import LabRun, lab_status
from hvcfilter.lab.probes import probe_scenarios
from hvcfilter.lab.scenario import (
    CALL_MARKERS,
    Call,
    HasDeviceAttr,
    Scenario,
    SetFilter,
    SetFwBitmap,
    SetPsciVersion,
)
from hvcfilter.model import VmConfig
from hvcfilter.render.verify import (
    LAB_STATUS_FORMAT_TAG,
    VERIFY_FORMAT_TAG,
    lab_status_json,
    lab_status_text,
    verify_json,
    verify_text,
)
from hvcfilter.table.payload import Record
from hvcfilter.verify import (
    CALLS_PER_SCENARIO,
    FILTER_PROBE,
    Plan,
    conformance,
    conformance_plan,
    emulator_profile,
    lab_kernel_for,
    probe_ids,
    probe_plan,
    run_plan,
    setup_steps,
    trace_plan,
    verify,
)

FIXTURES = ROOT / "tests" / "lab" / "fixtures"
EXAMPLES = ROOT / "examples"
SAMPLE_TRACE = ROOT / "tests" / "traces" / "sample-6.12.txt"  # the shared reference sample


# --------------------------------------------------------------------------- kernels


def test_emulator_profile_maps_every_lab_kernel() -> None:
    assert [emulator_profile(k) for k in ("6.12", "6.12-trixie", "7.2", "7.3")] == [
        "6.12", "6.12", "7.2", "7.2",
    ]  # fmt: skip
    with pytest.raises(LabError, match="unknown lab kernel"):
        emulator_profile("5.10")


def test_lab_kernel_for_profile() -> None:
    assert lab_kernel_for(get_profile("6.12")) == "6.12"
    assert lab_kernel_for(get_profile(None)) == "7.2"
    with pytest.raises(LabError, match="--kernel"):
        lab_kernel_for(get_profile("7.2")._replace(name="9.9"))


# --------------------------------------------------------------------------- plans


def test_setup_steps_apply_vm_config_then_records() -> None:
    recs = [Record(0xC200_0000, 0x100, 2), Record(0x8400_0000, 1, 1, b"\x01" + bytes(14))]
    steps = setup_steps(recs, VmConfig(psci_version=(1, 0), bitmaps={2: 1, 0: 0}))
    assert steps == (
        SetPsciVersion(1, 0),
        SetFwBitmap(0, 0),
        SetFwBitmap(2, 1),
        SetFilter(0xC200_0000, 0x100, 2),
        SetFilter(0x8400_0000, 1, 1, b"\x01" + bytes(14)),
    )
    assert setup_steps(recs[:1]) == (SetFilter(0xC200_0000, 0x100, 2),)


def test_probe_ids_cover_edges_catalogue_and_clamp() -> None:
    ids = probe_ids([Record(0, 0x10, 1), Record(0xFFFF_FFF0, 0x10, 2)], get_profile("6.12"))
    assert {0, 1, 0xE, 0xF, 0x10} <= set(ids)
    assert {0xFFFF_FFEF, 0xFFFF_FFF0, 0xFFFF_FFF1, 0xFFFF_FFFE, 0xFFFF_FFFF} <= set(ids)
    assert all(0 <= i <= 0xFFFF_FFFF for i in ids) and ids == sorted(set(ids))
    # Reserved ranges 0x80000000-0x8000FFFF and 0xC0000000-0xC000FFFF.
    assert {0x7FFF_FFFF, 0x8000_0001, 0x8000_FFFE, 0x8001_0000, 0xC001_0000} <= set(ids)
    assert {e.function_id for e in smccc.catalogue().entries} <= set(ids)


def test_probe_plan_shapes_scenarios() -> None:
    recs = [Record(0x8400_0000, 0x20, 2)]
    plan = probe_plan(recs, get_profile("6.12"), VmConfig(bitmaps={0: 0}))
    setup = (SetFwBitmap(0, 0), SetFilter(0x8400_0000, 0x20, 2))
    calls = [c for sc in plan.scenarios for _, c in sc.calls()]
    # First a VM that only probes for the filter, as a VMM does before installing.
    assert plan.scenarios[0] == FILTER_PROBE == Scenario("filter-probe", (HasDeviceAttr(0, 0),))
    for sc in plan.scenarios[1:]:
        assert sc.steps[: len(setup)] == setup
        assert 0 < len(list(sc.calls())) <= CALLS_PER_SCENARIO
        suspend = any(c.x0 & 0xFFFF_FFFF == 0x8400_0001 for _, c in sc.calls())
        assert not suspend or len(list(sc.calls())) == 1  # disruptive calls are alone
    assert {c.conduit for c in calls} == {"hvc", "smc"}
    assert {c.mode for c in calls} == {"a64", "a32"}
    assert Call(0x8400_0000, conduit="smc", imm=1) in calls
    assert any(c.x0 >> 32 and c.x0 & 0xFFFF_FFFF == 0x8400_0000 for c in calls)
    assert "probe calls" in plan.notes[0]
    no32 = probe_plan(recs, get_profile("6.12"), a32=False)
    assert all(not c.is_32bit for sc in no32.scenarios for _, c in sc.calls())


def _ev(x0: int, conduit: str = "hvc", imm: int = 0, mode: str = "a64", **regs: int) -> Any:
    return SimpleNamespace(x0=x0, conduit=conduit, imm=imm, mode=mode, **regs)


def test_trace_plan_dedupes_caps_and_drops() -> None:
    events = [
        _ev(0x8000_0000, x1=5),
        _ev(0x8000_0000, x1=9),  # duplicate key: first occurrence wins
        _ev(0x8000_0000, conduit="smc"),
        _ev(0x1_8400_0000),
        _ev(0x8400_0000, mode="a32", conduit="smc", imm=0x20),  # A32 SMC imm is 4 bits
        _ev(0xC200_0005, mode="t32"),
        _ev(0x8400_0009),
    ]
    plan = trace_plan([Record(0xC200_0000, 0x100, 2)], events, max_calls=5)
    calls = [c for sc in plan.scenarios for _, c in sc.calls()]
    assert Call(0x8000_0000, 5, CALL_MARKERS[1], CALL_MARKERS[2]) in calls
    assert Call(0x1_8400_0000) in calls and Call(0xC200_0005, mode="t32") in calls
    assert len(calls) == 4
    assert any("only the first 5 of 6" in n for n in plan.notes)
    assert any("left out" in n and "a32" in n for n in plan.notes)
    assert plan.scenarios[0] == FILTER_PROBE
    assert all(sc.steps[0] == SetFilter(0xC200_0000, 0x100, 2) for sc in plan.scenarios[1:])


def test_conformance_plan_has_all_parts() -> None:
    plan = conformance_plan(3, 10)
    names = [s.name for s in plan.scenarios]
    assert names[:10] == [f"gen-3-{i}" for i in range(10)]
    assert len(names) == len(set(names))
    assert any(n.startswith("default-probe") for n in names)
    assert any(n.startswith("suspend-cap-") for n in names)
    assert len(conformance_plan(3, 10, probes=False).scenarios) == 10


# --------------------------------------------------------------------------- comparing


@pytest.mark.parametrize("kernel", ["6.12", "7.2", "7.3"])
def test_probe_fixture_agrees_with_emulator(tmp_path: Path, kernel: str) -> None:
    plan = Plan("probes", tuple(probe_scenarios()))
    (report,) = run_plan(plan, [kernel], lab=fake_status(tmp_path), run=console_run(kernel))
    assert report.ok and report.calls == report.calls_agreed > 500
    assert report.release.startswith(kernel)
    assert report.scenarios == len(plan.scenarios) and report.installs > 0
    assert bool(report.notes) == (kernel == "7.3")


def test_wrong_profile_diverges_in_full(tmp_path: Path) -> None:
    plan = Plan("probes", tuple(probe_scenarios()))
    # 6.12's real answers compared with the 7.2 emulator profile.
    (report,) = run_plan(plan, ["7.2"], lab=fake_status(tmp_path), run=console_run("6.12"))
    assert not report.ok and report.calls_agreed < report.calls
    d = next(d for d in report.divergences if d.what.startswith("SetFilter base=0x0 nr=0x0"))
    assert ("errno", errno.EEXIST, errno.EINVAL) in d.fields
    text = verify_text(replace(_empty_result(), kernels=(report,)), width=200)
    assert f"{d.scenario} step {d.step}: SetFilter" in text and "EEXIST" in text
    doc = json.loads(verify_json(replace(_empty_result(), kernels=(report,))))
    assert doc["format"] == VERIFY_FORMAT_TAG and doc["ok"] is False
    assert doc["kernels"][0]["divergences"]


def _empty_result() -> Any:
    from hvcfilter.verify import VerifyResult

    return VerifyResult("x", None, True, False, (), (), ())


def test_run_plan_checks_result_count(tmp_path: Path) -> None:
    plan = Plan("p", (Scenario("a", (Call(0x8000_0000),)),))
    with pytest.raises(LabError, match="1 scenarios but 0 results"):
        run_plan(
            plan, ["6.12"], lab=fake_status(tmp_path), run=lambda *_: fake_run("6.12", [], "r")
        )
    with pytest.raises(LabError, match="unknown lab kernel"):
        run_plan(plan, ["4.19"], lab=fake_status(tmp_path))


def test_unready_lab_names_setup(tmp_path: Path) -> None:
    plan = Plan("p", (Scenario("a", (Call(0x8000_0000),)),))
    with pytest.raises(LabError, match="hvcfilter lab setup"):
        run_plan(plan, ["6.12"], cache_dir=tmp_path / "empty")


# --------------------------------------------------------------------------- verify()


@pytest.mark.parametrize("spec", sorted(p.name for p in EXAMPLES.glob("*.toml")))
def test_verify_examples_agree_on_an_emulated_lab(tmp_path: Path, spec: str) -> None:
    result = verify(EXAMPLES / spec, lab=fake_status(tmp_path), run=emulator_run("7.2"),
                    kernels=["7.2"])  # fmt: skip
    assert result.compiled and result.ok, verify_text(result)
    (k,) = result.kernels
    # Every scenario installs the table, except the one that only probes for the filter.
    assert k.installs == k.installs_accepted == len(result.records) * (k.scenarios - 1)
    assert "agree with the emulator" in verify_text(result)


def test_verify_default_kernel_is_the_spec_profile(tmp_path: Path) -> None:
    result = verify(EXAMPLES / "lockdown.toml", lab=fake_status(tmp_path), run=emulator_run("6.12"))
    assert [k.kernel for k in result.kernels] == ["6.12"]


def test_verify_reports_a_flipped_answer(tmp_path: Path) -> None:
    result = verify(EXAMPLES / "minimal.toml", lab=fake_status(tmp_path),
                    run=emulator_run("7.2", flip=3), kernels=["7.2"])  # fmt: skip
    assert not result.ok
    (d,) = result.kernels[0].divergences
    assert [f[0] for f in d.fields] == ["x0"]
    assert result.kernels[0].calls_agreed == result.kernels[0].calls - 1


def test_verify_with_trace_replays_distinct_calls(tmp_path: Path) -> None:
    result = verify(EXAMPLES / "minimal.toml", str(SAMPLE_TRACE), lab=fake_status(tmp_path),
                    run=emulator_run("6.12"), kernels=["6.12"])  # fmt: skip
    assert result.ok and result.kernels[0].calls == 5
    assert any("SMC traps" in n for n in result.notes)


def test_verify_spec_with_errors_runs_nothing(tmp_path: Path) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text('[[range]]\naction = "deny"\nbase = 0x80000000\nnr_functions = 4\n')

    def boom(*_: object) -> LabRun:
        raise AssertionError("must not run")

    result = verify(spec, lab=fake_status(tmp_path), run=boom)
    assert not result.compiled and not result.unreadable and not result.ok
    assert result.diagnostics
    missing = verify(tmp_path / "nope.toml", lab=fake_status(tmp_path), run=boom)
    assert missing.unreadable


def test_conformance_on_an_emulated_lab(tmp_path: Path) -> None:
    result = conformance(["6.12"], 5, 20, probes=False, lab=fake_status(tmp_path),
                         run=emulator_run("6.12"))  # fmt: skip
    assert result.ok and result.kernels[0].scenarios == 20


# --------------------------------------------------------------------------- lab status


def test_lab_status_renderers(tmp_path: Path) -> None:

    empty = lab_status(tmp_path)
    assert "not ready" in lab_status_text(empty) and "hvcfilter lab setup" in lab_status_text(empty)
    doc = json.loads(lab_status_json(empty))
    assert doc["format"] == LAB_STATUS_FORMAT_TAG and doc["ready"] is False


def test_verify_on_6_1_reports_the_probe_errno_without_diverging(tmp_path: Path) -> None:
    result = verify(EXAMPLES / "minimal.toml", lab=fake_status(tmp_path, ("6.1", "6.12")),
                    run=emulator_run("6.1"), kernels=["6.1"])  # fmt: skip
    assert result.ok, verify_text(result)  # the emulator predicted the refusals
    (k,) = result.kernels
    assert k.filter_available is False and k.probe_errno == errno.EINVAL
    assert k.installs_accepted == 0 and k.installs > 0
    text = verify_text(result, width=200)
    assert "no SMCCC filter" in text and "KVM_HAS_DEVICE_ATTR failed with EINVAL" in text
    doc = json.loads(verify_json(result))
    assert doc["kernels"][0]["filter_available"] is False
    assert doc["kernels"][0]["probe_errno"] == errno.EINVAL
    # The same kernel compared with the 6.12 profile: every refused install diverges.
    (wrong,) = run_plan(
        probe_plan(result.records, get_profile("6.12")), ["6.12"],
        lab=fake_status(tmp_path, ("6.1", "6.12")), run=emulator_run("6.1"),
    )  # fmt: skip
    assert not wrong.ok and wrong.filter_available is False


def test_verify_with_the_filter_probes_ok(tmp_path: Path) -> None:
    result = verify(EXAMPLES / "minimal.toml", lab=fake_status(tmp_path),
                    run=emulator_run("6.12"), kernels=["6.12"])  # fmt: skip
    assert result.kernels[0].filter_available is True
    assert result.kernels[0].probe_errno is None
