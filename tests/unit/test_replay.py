"""Replay: the reference sample's outcomes, counts against the emulator call by call, baselines."""

from __future__ import annotations

import errno
import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest
from suite_paths import TRACES

from hvcfilter import replay, trace
from hvcfilter.errors import PayloadError, SpecError
from hvcfilter.kernel import KvmVm
from hvcfilter.replay import Replayer
from hvcfilter.table import payload
from hvcfilter.table.files import load_baseline, load_table
from hvcfilter.table.payload import Record

SAMPLE = str(TRACES / "sample-6.12.txt")
SPEC = TRACES / "sample-filter.toml"

# samples/README.md: what each of the nine calls got on Linux 6.12.95.
README_OUTCOMES = [
    "handled",  # 0 hvc 0x80000000
    "handled",  # 1 smc 0x80000000
    "not_supported",  # 2 hvc 0x84000000, denied
    "not_supported",  # 3 smc 0x84000000, denied
    "forwarded",  # 4 hvc 0xC2000005
    "forwarded",  # 5 smc 0xC2000005
    "rejected",  # 6 smc #1 0xC2000005
    "forwarded",  # 7 hvc #7 0xC2000005
    "not_supported",  # 8 hvc 0x12345678
]


def _replayer(**kw: object) -> Replayer:
    return Replayer(load_table(SPEC), kernel="6.12", **kw)  # type: ignore[arg-type]


def test_sample_trace_hvcs_get_what_the_real_kernel_gave() -> None:
    tally = trace.TraceTally()
    records = list(_replayer().stream([SAMPLE], tally))
    # ftrace shows only the HVCs (calls 0, 2, 4, 7, 8).
    assert [r.result.outcome for r in records] == [README_OUTCOMES[i] for i in (0, 2, 4, 7, 8)]
    assert records[2].result.nr == 0xC200_0005
    assert records[2].result.flags == 0
    assert tally.smc_without_id == 4


def test_all_nine_calls_from_jsonl_match_the_readme() -> None:
    for name in ("calls.jsonl", "calls.csv"):
        records = list(_replayer().stream([str(TRACES / name)], trace.TraceTally()))
        assert [r.result.outcome for r in records] == README_OUTCOMES
    forwarded_smc = list(_replayer().stream([str(TRACES / "calls.jsonl")], trace.TraceTally()))[5]
    assert forwarded_smc.result.flags == 1


def test_sample_report() -> None:
    report = _replayer().replay([SAMPLE])
    s = report.summary
    assert (s.calls, s.smc_without_id, s.skipped_lines) == (5, 4, 0)
    assert s.outcomes == {"handled": 1, "not_supported": 2, "forwarded": 2, "rejected": 0}
    assert s.differs_from_default == 3  # the denied PSCI_VERSION and the two forwarded calls
    assert s.baseline_changes is None
    fwd = [r for r in report.functions if r.function_id == 0xC200_0005]
    # hvc #0 and hvc #7 get the same result: one row.
    assert [(r.count, r.outcome, r.action, r.record) for r in fwd] == [
        (2, "forwarded", "fwd_to_user", 1)
    ]
    psci = next(r for r in report.functions if r.function_id == 0x8400_0000)
    assert (psci.name, psci.outcome, psci.default_outcome) == (
        "PSCI_VERSION_32",
        "not_supported",
        "handled",
    )
    assert [(u.index, u.base, u.last) for u in report.unused_ranges] == [
        (2, 0xC300_0000, 0xC300_000F)
    ]
    assert "range[2]" in report.unused_ranges[0].origin
    assert all(r.errno == 0 for r in report.install)


def test_summary_counts_match_the_emulator_call_by_call(tmp_path: Path) -> None:
    rng = random.Random(3)
    ids = [
        0x8000_0000,
        0x8400_0000,
        0x8400_0008,
        0xC200_0005,
        0xC20000FF,
        0xC2000100,
        0x8600_0000,
        0x8600_FF01,
        0x8000_8000,
        0x1234_5678,
        0xC300_0004,
    ]
    lines = []
    for _ in range(500):
        call = {
            "x0": hex(rng.choice(ids) | rng.choice([0, 0xDEAD_0000_0000_0000])),
            "conduit": rng.choice(["hvc", "smc"]),
            "imm": rng.choice([0, 0, 1]),
            "mode": rng.choice(["a64", "a64", "a32", "t32"]),
        }
        lines.append(json.dumps(call))
    path = tmp_path / "calls.jsonl"
    path.write_text("\n".join(lines) + "\n")
    report = _replayer().replay([str(path)])
    # An independent VM, installed with set_filter (not from the compiled records).
    vm = KvmVm("6.12")
    assert vm.set_filter(0x8400_0000, 1, 1) == 0
    assert vm.set_filter(0xC200_0000, 0x100, 2) == 0
    assert vm.set_filter(0xC300_0000, 0x10, 1) == 0
    vm.run()
    expected: Counter[str] = Counter()
    for event in trace.iter_events([str(path)], trace.TraceTally()):
        result = vm.call(event.x0, conduit=event.conduit, imm=event.imm, mode=event.mode)
        expected[result.outcome] += 1
    assert report.summary.outcomes == {k: expected[k] for k in replay.OUTCOMES}
    assert report.summary.calls == 500
    assert sum(r.count for r in report.functions) == 500


def test_stream_and_report_agree() -> None:
    tally = trace.TraceTally()
    streamed = Counter(r.result.outcome for r in _replayer().stream([SAMPLE], tally))
    report = _replayer().report(tally)
    assert {k: streamed[k] for k in replay.OUTCOMES} == report.summary.outcomes


def test_payload_table_is_decoded_and_installed(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(payload.encode([Record(0x8400_0000, 1, 1), Record(0xC200_0000, 0x100, 2)]))
    table = load_table(payload_path=path)
    assert table.kind == "payload"
    report = Replayer(table, kernel="6.12").replay([SAMPLE])
    assert report.summary.outcomes == {
        "handled": 1,
        "not_supported": 2,
        "forwarded": 2,
        "rejected": 0,
    }


def test_refused_records_are_reported_with_their_errno(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(
        payload.encode(
            [Record(0x8000_0000, 1, 1), Record(0x8400_0000, 1, 1), Record(0x8400_0000, 2, 2)]
        )
    )
    report = Replayer(load_table(payload_path=path), kernel="6.12").replay([SAMPLE])
    assert [r.errno for r in report.install] == [errno.EEXIST, 0, errno.EEXIST]
    assert report.install[0].error == "EEXIST"
    # Refused records are not "unused ranges": they are not there at all.
    assert report.unused_ranges == ()


def test_truncated_payload_is_a_payload_error(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(30))
    with pytest.raises(PayloadError, match="not a multiple of 24"):
        load_table(payload_path=path)


def test_a_bad_payload_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(30))
    with pytest.raises(PayloadError, match=f"^cannot use payload {re.escape(str(path))}: "):
        load_table(payload_path=path)


def test_default_table_is_the_cwd_spec_or_none(tmp_path: Path) -> None:
    assert load_table(cwd=tmp_path).kind == "none"
    (tmp_path / "hvcfilter.toml").write_text(SPEC.read_text())
    table = load_table(cwd=tmp_path)
    assert (table.kind, table.path, len(table.records)) == ("spec", "hvcfilter.toml", 3)


def test_no_filter_report_has_no_differences() -> None:
    report = Replayer(load_table(cwd="/nonexistent"), kernel="6.12").replay([SAMPLE])
    assert report.table.kind == "none"
    assert report.summary.differs_from_default == 0
    assert report.summary.outcomes["forwarded"] == 0


def test_bad_spec_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[[range]]\nbase = 'x'\n")
    with pytest.raises(SpecError, match="cannot use spec"):
        load_table(path)


def test_baseline_changes(tmp_path: Path) -> None:
    same = _replayer(baseline=load_baseline(SPEC)).replay([SAMPLE])
    assert same.summary.baseline_changes == 0
    assert not same.changed
    other = tmp_path / "other.toml"
    other.write_text('[[range]]\nbase = 0xC2000000\nnr_functions = 0x100\naction = "deny"\n')
    changed = _replayer(baseline=load_baseline(other)).replay([SAMPLE])
    assert changed.changed
    # PSCI_VERSION: denied now, handled under the baseline; 0xC2000005 x2: forwarded vs denied.
    assert changed.summary.baseline_changes == 3
    assert {
        (r.function_id, r.baseline_outcome) for r in changed.functions if r.baseline_changed
    } == {
        (0x8400_0000, "handled"),
        (0xC200_0005, "not_supported"),
    }


def test_a_spec_baseline_need_not_end_in_toml(tmp_path: Path) -> None:
    # It was read as a payload: "cannot use payload ...: payload is 39 bytes".
    path = tmp_path / "baseline.txt"
    path.write_bytes(SPEC.read_bytes())
    table = load_baseline(path)
    assert table.kind == "spec"
    assert _replayer(baseline=table).replay([SAMPLE]).summary.baseline_changes == 0


def test_payload_baseline(tmp_path: Path) -> None:
    path = tmp_path / "base.bin"
    path.write_bytes(payload.encode([Record(0x8400_0000, 1, 1), Record(0xC200_0000, 0x100, 2)]))
    report = _replayer(baseline=load_baseline(path)).replay([SAMPLE])
    assert report.summary.baseline_changes == 0


def test_stream_keeps_registers_the_trace_did_not_record_unknown(tmp_path: Path) -> None:
    """x1 given, x2 (the affinity level) missing: AFFINITY_INFO's answer is unknown, not level 0."""
    path = tmp_path / "calls.jsonl"
    path.write_text('{"x0": "0x84000004", "x1": "0x1000000"}\n{"x0": "0x84000004", "x1": 0}\n')
    table = load_table(cwd=tmp_path)
    records = list(Replayer(table, kernel="6.12").stream([str(path)], trace.TraceTally()))
    # A target outside the MPIDR affinity bits fails whatever the level; vCPU 0 at an
    # unknown level stays unknown (it was read as level 0, ON, before).
    assert [r.result.x0 for r in records] == [0xFFFF_FFFF_FFFF_FFFE, None]
