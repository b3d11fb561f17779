"""Unit tests for hvcfilter.lab.scenario: validation, wire format, JSON and console parsing."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from hvcfilter.errors import LabError
from hvcfilter.lab.scenario import (
    FWD_MARKER,
    Call,
    CallOutcome,
    CreateVcpu,
    ErrnoResult,
    GetFwBitmap,
    RegValue,
    Run,
    RunResult,
    Scenario,
    ScenarioResult,
    SetFilter,
    SetFwBitmap,
    SetPsciVersion,
    VmConfig,
)
from hvcfilter.lab.serial import (
    result_from_dict,
    result_to_dict,
    scenario_from_dict,
    scenario_to_dict,
)
from hvcfilter.lab.wire import parse_output, to_wire

FIXTURES = Path(__file__).parent / "fixtures"


def _fixture_scenarios() -> list[Scenario]:
    data = json.loads((FIXTURES / "sample_scenarios.json").read_text())
    return [scenario_from_dict(d) for d in data]


def test_wire_format_is_exact() -> None:
    sc = Scenario(
        "w",
        (
            SetFilter(0xC200_0000, 0x100, 2, bytes([0] * 14 + [0x80])),
            SetFwBitmap(2, 1),
            GetFwBitmap(3),
            SetPsciVersion(1, 1),
            CreateVcpu(),
            Run(),
            Call(0xDEAD_0000_C200_0005, 1, 2, 3, "smc", 0, "a64"),
        ),
        VmConfig(extra_vcpus=1),
    )
    assert to_wire([sc], timeout_ms=150).splitlines() == [
        "T 150",
        "S 0 a64 1 1 0",
        "F c2000000 100 2 " + "00" * 14 + "80",
        "B 2 1",
        "G 3",
        "P 10001",
        "V",
        "N",
        "C dead0000c2000005 1 2 3 s 0 a64",
        "E",
    ]


def test_wire_pad_is_thirty_hex_digits() -> None:
    line = to_wire([Scenario("p", (SetFilter(1, 1, 0),))]).splitlines()[2]
    assert line.split()[-1] == "0" * 30


@pytest.mark.parametrize(
    "make",
    [
        lambda: SetFilter(0, 1, 0, bytes(14)),
        lambda: SetFilter(0x1_0000_0000, 1, 0),
        lambda: SetFilter(0, 1, 256),
        lambda: Call(0x1_8400_0000, mode="a32"),
        lambda: Call(0x8400_0000, conduit="smc", imm=0x10, mode="t32"),
        lambda: Call(0x8400_0000, imm=0x1_0000),
        lambda: Call(0x8400_0000, mode="x86"),  # type: ignore[arg-type]
        lambda: Scenario("mixed", (Call(0x8400_0000), Call(0x8400_0000, mode="a32"))),
        lambda: Scenario("has space", ()),
        lambda: VmConfig(extra_vcpus=8),
    ],
)
def test_invalid_steps_raise_laberror(make: object) -> None:
    with pytest.raises(LabError):
        make()  # type: ignore[operator]


def test_vcpu_mode_comes_from_first_call_or_config() -> None:
    assert Scenario("a", (Call(1, mode="t32"),)).vcpu_mode == "t32"
    assert Scenario("b", (Run(),)).vcpu_mode == "a64"
    assert Scenario("c", (Run(),), VmConfig(mode="a32")).vcpu_mode == "a32"
    assert "S 0 t32 1 0 0" in to_wire([Scenario("a", (Call(1, mode="t32"),))])


def test_scenario_json_round_trip() -> None:
    for sc in _fixture_scenarios():
        again = scenario_from_dict(json.loads(json.dumps(scenario_to_dict(sc))))
        assert again == sc


def test_scenario_from_dict_rejects_garbage() -> None:
    with pytest.raises(LabError):
        scenario_from_dict({"name": "x", "steps": [{"op": "teleport"}]})
    with pytest.raises(LabError):
        scenario_from_dict({"name": "x", "steps": [{"op": "set_filter", "base": 1}]})
    with pytest.raises(LabError):
        scenario_from_dict({"steps": []})


def test_result_json_round_trip() -> None:
    scs = _fixture_scenarios()
    parsed = parse_output((FIXTURES / "console-6.12.txt").read_text(), scs)
    for r in parsed.results:
        assert result_from_dict(json.loads(json.dumps(result_to_dict(r)))) == r


def test_parse_real_console_612() -> None:
    scs = _fixture_scenarios()
    out = parse_output((FIXTURES / "console-6.12.txt").read_text(), scs)
    assert out.release == "6.12.95+deb12-arm64"
    assert [r.name for r in out.results] == [s.name for s in scs]
    sample = out.results[0].steps
    assert sample[0] == ErrnoResult(0)
    v = sample[2]
    assert isinstance(v, CallOutcome)
    assert (v.exit, v.x0, v.x1, v.x2, v.x3) == ("none", 0x10001, 0, 0, 0)
    fwd = sample[6]
    assert isinstance(fwd, CallOutcome)
    assert (fwd.exit, fwd.nr, fwd.flags, fwd.pc_advanced) == ("hypercall", 0xC200_0005, 0, True)
    assert fwd.x0 == FWD_MARKER + 4 and (fwd.x1, fwd.x2, fwd.x3) == (0x1111, 0x2222, 0x3333)
    assert fwd.outcome == "forwarded"
    smc = sample[7]
    assert isinstance(smc, CallOutcome) and smc.flags == 1
    rejected = sample[8]
    assert isinstance(rejected, CallOutcome)
    assert rejected.x0 == 0xFFFF_FFFF_FFFF_FFFF and rejected.x1 == 0x1111
    assert sample[11] == ErrnoResult(errno.EBUSY)
    edges = out.results[1].steps
    assert edges[0] == ErrnoResult(errno.EEXIST)  # (0, 0) on 6.12
    assert edges[5] == RegValue(errno.ENOENT, 0)
    assert edges[7] == ErrnoResult(errno.EINVAL)  # PSCI 1.3 not accepted by 6.12
    assert edges[8] == RunResult(0, "mmio")


def test_parse_real_console_72_differences() -> None:
    scs = _fixture_scenarios()
    out = parse_output((FIXTURES / "console-7.2.txt").read_text(), scs)
    assert out.release.startswith("7.2.")
    edges = out.results[1].steps
    assert edges[0] == ErrnoResult(errno.EINVAL)
    assert edges[5] == RegValue(0, 0)
    assert edges[7] == ErrnoResult(0)


def test_parse_aarch32_and_events() -> None:
    scs = _fixture_scenarios()
    out = parse_output((FIXTURES / "console-6.12.txt").read_text(), scs)
    a32 = out.results[2].steps
    assert isinstance(a32[4], CallOutcome) and a32[4].x0 == 0xFFFF_FFFF  # 32-bit view
    wa1 = a32[5]
    assert isinstance(wa1, CallOutcome) and (wa1.x0, wa1.x1, wa1.x2) == (0, 0, 0x2222)
    off = out.results[3].steps[0]
    assert isinstance(off, CallOutcome)
    assert (off.exit, off.event_type, off.event_ndata, off.event_data0) == ("system_event", 1, 1, 0)
    assert off.event_x0 == 0xFFFF_FFFF_FFFF_FFFA
    suspend = out.results[4].steps[0]
    assert isinstance(suspend, CallOutcome) and suspend.interrupts == 1 and suspend.x0 == 0


def test_parse_tolerates_kernel_noise_and_crlf() -> None:
    sc = Scenario("n", (SetFilter(1, 1, 1),))
    text = (
        "[    0.1] boot noise\r\n@@HVCLAB-BEGIN 1\r\nU 6.1-test\r\n"
        "[    1.2] kvm: noise\r\nS 0\r\nF 0\r\nE 0 12\r\n@@HVCLAB-END 1 99\r\n"
    )
    out = parse_output(text, [sc])
    assert out.results == (ScenarioResult("n", (ErrnoResult(0),), 0, 12),)
    assert out.driver_us == 99 and out.release == "6.1-test"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("booting...\n", "never started"),
        ("@@HVCLAB-BEGIN 1\nU x\nS 0\nF 0\nE 0 1\n", "without"),
        ("@@HVCLAB-BEGIN 1\nU x\nZ 2 /dev/kvm\n@@HVCLAB-END 0 0\n", "/dev/kvm"),
        ("@@HVCLAB-BEGIN 1\nU x\nS 0\nB 0\nE 0 1\n@@HVCLAB-END 1 1\n", "expected"),
        ("@@HVCLAB-BEGIN 1\nU x\nS 0\nE 0 1\n@@HVCLAB-END 1 1\n", "0 results"),
        ("@@HVCLAB-BEGIN 1\nU x\n@@HVCLAB-END 0 1\n", "0 of 1"),
        ("@@HVCLAB-BEGIN 1\nU x\nS 0\nF zz\nE 0 1\n@@HVCLAB-END 1 1\n", "bad errno"),
    ],
)
def test_parse_errors(text: str, needle: str) -> None:
    with pytest.raises(LabError, match=needle):
        parse_output(text, [Scenario("n", (SetFilter(1, 1, 1),))])


def test_setup_failure_yields_empty_steps() -> None:
    text = "@@HVCLAB-BEGIN 1\nU x\nS 0\nX 12 create_vm\nE 0 1\n@@HVCLAB-END 1 1\n"
    out = parse_output(text, [Scenario("n", (SetFilter(1, 1, 1),))])
    assert out.results[0].setup_errno == 12 and out.results[0].steps == ()


def test_call_line_with_wrong_field_count() -> None:
    text = "@@HVCLAB-BEGIN 1\nU x\nS 0\nC none 0 0\nE 0 1\n@@HVCLAB-END 1 1\n"
    with pytest.raises(LabError, match="14 fields"):
        parse_output(text, [Scenario("n", (Call(1),))])
