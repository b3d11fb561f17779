"""Trace parsers: every ftrace variant from the reference, JSON Lines, CSV, compression, stdin."""

from __future__ import annotations

import codecs
import gzip
import io
import lzma
import mmap
import os
import random
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from suite_paths import TRACES

from hvcfilter import trace
from hvcfilter.errors import TraceError
from hvcfilter.trace import TraceFormat, TraceTally, ftrace, parallel, re2_proof, sources

SAMPLE = TRACES / "sample-6.12.txt"
# An event that is no call: beside bad lines, it makes their file a trace.
_ONE_EVENT = "    vmm-1     [000] .....     1.5: kvm_entry: PC: 0x0\n"


def _events(
    path: Path | str, fmt: TraceFormat = TraceFormat.AUTO
) -> tuple[list[trace.TraceEvent], TraceTally]:
    tally = TraceTally()
    return list(trace.iter_events([str(path)], tally, fmt)), tally


def test_sample_trace_counts() -> None:
    tally = trace.tally([str(SAMPLE)])
    assert tally.lines == 70
    assert tally.comments == 12
    assert tally.events == 58
    # Calls 1, 3, 5 and 6 of samples/README.md are SMCs: kvm_exit EC 0x17 only.
    assert tally.smc_without_id == 4
    assert tally.skipped == 0
    assert tally.calls == {
        (0x8000_0000, "hvc", 0, "a64"): 1,
        (0x8400_0000, "hvc", 0, "a64"): 1,
        (0xC200_0005, "hvc", 0, "a64"): 1,
        (0xC200_0005, "hvc", 7, "a64"): 1,
        (0x1234_5678, "hvc", 0, "a64"): 1,
    }
    assert tally.ignored_events == 58 - 5 - 4


def test_sample_trace_events_in_order() -> None:
    events, tally = _events(SAMPLE)
    assert [(e.x0, e.imm) for e in events] == [
        (0x8000_0000, 0),
        (0x8400_0000, 0),
        (0xC200_0005, 0),
        (0xC200_0005, 7),
        (0x1234_5678, 0),
    ]
    first = events[0]
    assert (first.line, first.vcpu, first.ts, first.conduit, first.mode) == (
        17,
        138,
        2.225972,
        "hvc",
        "a64",
    )
    assert SAMPLE.read_text().splitlines()[first.line - 1].endswith("imm: 0x0)")
    assert tally.smc_without_id == 4


def test_old_format_unknown_comm_and_dashes_in_comm() -> None:
    events, tally = _events(TRACES / "old-format.txt")
    # The old-format line is verbatim from reference section 6.1.
    assert [(e.x0, e.imm, e.vcpu) for e in events] == [
        (0x34F5_D91D, 5, 16291),
        (0x8400_0000, 0, 16292),
        (0xC400_0003, 0, 16293),
    ]
    assert tally.smc_without_id == 1
    assert tally.skipped == 0


def test_trace_cmd_report_layout() -> None:
    events, tally = _events(TRACES / "trace-cmd.txt")
    assert [(e.x0, e.imm) for e in events] == [
        (0x8000_0000, 0),
        (0xDEAD_0000_C200_0005, 0xFFFF),
    ]
    # The filter sees W0 only.
    assert events[1].function_id == 0xC200_0005
    assert tally.comments == 2  # cpus=4 and "CPU 2 is empty"
    assert tally.smc_without_id == 1  # EC 0x13, SMC32
    assert tally.skipped == 0


def test_record_tgid_column() -> None:
    events, tally = _events(TRACES / "tgid.txt")
    assert [e.x0 for e in events] == [0x8000_0000]
    assert tally.events == 3
    assert tally.skipped == 0


@pytest.mark.parametrize("kernel", ["6.12.95", "7.2.13"])
def test_a_real_record_tgid_trace_parses_whole(kernel: str) -> None:
    # Captured in the lab with options/record-tgid on (the reference: UNVERIFIED):
    # the "(    125)" column, and on 7.2 flags with digits in them ("d..1.").
    path = TRACES / f"record-tgid-{kernel}.txt"
    tally = trace.tally([str(path)])
    assert (tally.lines, tally.events, tally.skipped, tally.smc_without_id) == (56, 44, 0, 1)
    by_id = {x0: n for (x0, _conduit, _imm, _mode), n in tally.calls.items()}
    assert by_id == {0x8000_0000: 1, 0x8400_0000: 2, 0x8400_0050: 1, 0xC200_0005: 1}


def test_a_real_6_1_trace_parses_whole() -> None:
    # The lab's 6.1.176 under the same scenario: the layout of 6.12 (five flag
    # characters), and the forward range refused (no filter before 6.4).
    path = TRACES / "lab-6.1.176.txt"
    tally = trace.tally([str(path)])
    assert (tally.lines, tally.events, tally.skipped, tally.smc_without_id) == (54, 42, 0, 1)
    by_id = {x0: n for (x0, _conduit, _imm, _mode), n in tally.calls.items()}
    assert by_id == {0x8000_0000: 1, 0x8400_0000: 2, 0x8400_0050: 1, 0xC200_0005: 1}
    assert b"KVM_EXIT_HYPERCALL" not in path.read_bytes()


def test_aarch32_mode_is_inferred_per_task() -> None:
    events, _ = _events(TRACES / "aarch32.txt")
    assert [(e.vcpu, e.mode) for e in events] == [(200, "a32"), (300, "a64"), (200, "a64")]
    assert trace.tally([str(TRACES / "aarch32.txt")]).calls == {
        (0xC400_0003, "hvc", 0, "a32"): 1,
        (0xC400_0003, "hvc", 0, "a64"): 1,
        (0x8400_0000, "hvc", 0, "a64"): 1,
    }


def test_malformed_and_truncated_lines_are_counted_with_line_numbers() -> None:
    tally = trace.tally([str(TRACES / "malformed.txt")])
    assert tally.skipped == 4
    assert [(b.line, b.reason) for b in tally.bad_lines] == [
        (3, "not an ftrace event line"),
        (4, "malformed kvm_hvc_arm64 event"),
        (7, "not an ftrace event line"),
        (8, "malformed kvm_hvc_arm64 event"),  # the last line, cut without a newline
    ]
    assert tally.calls == {(0x8000_0000, "hvc", 0, "a64"): 1, (0xC200_0005, "hvc", 0, "a64"): 1}
    assert tally.lines == 8


def test_only_the_first_bad_lines_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    # One event: a file of nothing but bad lines is no trace at all (its own test).
    path.write_text("".join(f"junk {i}\n" for i in range(50)) + _ONE_EVENT)
    tally = trace.tally([str(path)])
    assert tally.skipped == 50
    assert [b.line for b in tally.bad_lines] == list(range(1, trace.MAX_BAD_LINES + 1))


def test_bad_lines_are_kept_without_control_characters(tmp_path: Path) -> None:
    path = tmp_path / "hostile.txt"
    lines = [
        b"junk \x1b]0;owned\x07 \x1b[2J",  # OSC (window title) and clear screen
        "junk \u009b31m \u202eevil".encode(),  # C1 CSI and a bidi override, in UTF-8
        b"junk\ttab \x00nul \xff",  # a tab stays, NUL is escaped, bad UTF-8 replaced
        "junk caf\u00e9 \u2713".encode(),  # printable text stays as it is
    ]
    path.write_bytes(b"\n".join(lines) + b"\n" + _ONE_EVENT.encode())
    shown = [b.text for b in trace.tally([str(path)]).bad_lines]
    assert shown == [
        "junk \\x1b]0;owned\\x07 \\x1b[2J",
        "junk \\x9b31m \\u202eevil",
        "junk\ttab \\x00nul \ufffd",
        "junk caf\u00e9 \u2713",
    ]


def test_gzip_and_xz_are_read_transparently(tmp_path: Path) -> None:
    data = SAMPLE.read_bytes()
    (tmp_path / "t.gz").write_bytes(gzip.compress(data))
    (tmp_path / "t.xz").write_bytes(lzma.compress(data))
    plain = trace.tally([str(SAMPLE)])
    for name in ("t.gz", "t.xz"):
        packed = trace.tally([str(tmp_path / name)])
        assert (packed.calls, packed.lines, packed.smc_without_id) == (
            plain.calls,
            plain.lines,
            plain.smc_without_id,
        )


@pytest.mark.parametrize("packing", ["plain", "gzip"])
def test_contains_finds_a_needle_wherever_the_chunks_cut_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, packing: str
) -> None:
    monkeypatch.setattr(sources, "CHUNK", 8)  # the needle straddles most cuts
    needle = b"KVM_EXIT_HYPERCALL"
    pack = gzip.compress if packing == "gzip" else bytes
    for at in range(0, 3 * 8 + 1):
        path = tmp_path / f"t{at}"
        text = b"x" * at + needle + b"y" * 5
        path.write_bytes(pack(text))
        with sources.open_trace(str(path)) as source:
            assert sources.contains(source, needle), at
        path.write_bytes(pack(text.replace(needle, needle[:-1] + b"_")))
        with sources.open_trace(str(path)) as source:
            assert not sources.contains(source, needle), at


def test_contains_on_an_empty_file_and_a_one_byte_needle(tmp_path: Path) -> None:
    path = tmp_path / "t"
    path.write_bytes(b"")
    with sources.open_trace(str(path)) as source:
        assert not sources.contains(source, b"\n")
    path.write_bytes(b"ab")
    with sources.open_trace(str(path)) as source:
        assert sources.contains(source, b"b")


def test_contains_on_a_corrupt_gzip_is_a_trace_error(tmp_path: Path) -> None:
    path = tmp_path / "t.gz"
    path.write_bytes(gzip.compress(SAMPLE.read_bytes())[:200])
    with sources.open_trace(str(path)) as source, pytest.raises(TraceError, match="cannot read"):
        sources.contains(source, b"KVM_EXIT_HYPERCALL")


def test_corrupt_gzip_is_a_trace_error(tmp_path: Path) -> None:
    path = tmp_path / "t.gz"
    path.write_bytes(gzip.compress(SAMPLE.read_bytes())[:200])
    with pytest.raises(TraceError, match="cannot read"):
        trace.tally([str(path)])


def test_garbled_deflate_data_is_a_trace_error(tmp_path: Path) -> None:
    # Intact header, garbage compressed blocks: zlib, not gzip, is the one to complain.
    data = gzip.compress(SAMPLE.read_bytes())
    path = tmp_path / "t.gz"
    path.write_bytes(data[:20] + bytes(b ^ 0x55 for b in data[20:60]) + data[60:])
    with pytest.raises(TraceError, match=r"cannot read .*decompressing"):
        trace.tally([str(path)])


def test_corrupt_xz_is_a_trace_error(tmp_path: Path) -> None:
    data = lzma.compress(SAMPLE.read_bytes())
    path = tmp_path / "t.xz"
    path.write_bytes(data[:40] + bytes(b ^ 0x55 for b in data[40:80]) + data[80:])
    with pytest.raises(TraceError, match="cannot read"):
        trace.tally([str(path)])


def test_missing_file_is_a_trace_error(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="cannot read"):
        trace.tally([str(tmp_path / "nope.txt")])


class _Stdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", _Stdin(gzip.compress(SAMPLE.read_bytes())))
    tally = trace.tally(["-"])
    assert tally.call_count == 5
    assert tally.formats == {"<stdin>": "ftrace"}


def test_jsonl_and_csv() -> None:
    for name, fmt in (("calls.jsonl", "jsonl"), ("calls.csv", "csv")):
        events, tally = _events(TRACES / name)
        assert tally.formats[str(TRACES / name)] == fmt
        assert [(e.x0, e.conduit, e.imm) for e in events] == [
            (0x8000_0000, "hvc", 0),
            (0x8000_0000, "smc", 0),
            (0x8400_0000, "hvc", 0),
            (0x8400_0000, "smc", 0),
            (0xC200_0005, "hvc", 0),
            (0xC200_0005, "smc", 0),
            (0xC200_0005, "smc", 1),
            (0xC200_0005, "hvc", 7),
            (0x1234_5678, "hvc", 0),
        ]
        assert events[0].vcpu == 0
        assert events[0].ts == 2.225972
        assert tally.skipped == 0


def test_jsonl_registers() -> None:
    events, _ = _events(TRACES / "calls.jsonl")
    assert (events[3].x1, events[3].x2, events[3].x3) == (0x1111, 0x2222, 0x3333)
    assert events[0].x1 is None


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"x0": "0xZZ"}', "field 'x0': '0xZZ' is not a number"),
        # Python's int() reads other scripts' digits; an SMCCC register is not written so.
        ('{"x0": "0x\uff18\uff14000000"}', "is not a number"),
        ('{"x0": "\u0661\u0662\u0663"}', "is not a number"),
        ('{"conduit": "hvc"}', "field 'x0' is missing"),
        ('{"x0": 1, "conduit": "svc"}', "field 'conduit'"),
        ('{"x0": 1, "mode": "a16"}', "field 'mode'"),
        ('{"x0": 1, "imm": 65536}', "field 'imm'"),
        ('{"x0": 1, "ts": "soon"}', "field 'ts'"),
        ('{"x0": 18446744073709551616}', "does not fit 64 bits"),
        ('{"x0": 1,', "invalid JSON at column"),
        ("[1, 2]", "a JSON object is expected"),
        # Past CPython's own limits: no internal error, one skipped line.
        ('{"x0": ' + "9" * 4301 + "}", "a number of over 4,300 digits"),
        ('{"x0": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
        ('{"x0": 1, "ts": ' + "9" * 400 + "}", "field 'ts'"),
    ],
)
def test_jsonl_errors_name_the_field(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"x0": 1}\n' + line + "\n")
    tally = trace.tally([str(path)], TraceFormat.JSONL)
    assert tally.skipped == 1
    assert tally.bad_lines[0].line == 2
    assert reason in tally.bad_lines[0].reason


def test_a_csv_field_past_the_csv_module_limit_is_one_skipped_row(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("x0,c\n0x1,a\n0x2," + "a" * 200_000 + "\n0x3,b\n")
    tally = trace.tally([str(path)])
    assert tally.call_count == 2
    assert [b.line for b in tally.bad_lines] == [3]
    assert "unreadable CSV row" in tally.bad_lines[0].reason


def test_csv_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("x0,conduit\n0x1,hvc\n0x2\n0x3,bogus\n")
    tally = trace.tally([str(path)])
    assert tally.call_count == 1
    assert [(b.line, b.reason) for b in tally.bad_lines] == [
        (3, "1 cells, but the header has 2"),
        (4, "field 'conduit': 'bogus' is not one of hvc, smc"),
    ]
    (tmp_path / "h.csv").write_text("a,b\n1,2\n")
    with pytest.raises(TraceError, match="no 'x0' column"):
        trace.tally([str(tmp_path / "h.csv")], TraceFormat.CSV)


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"# tracer: nop\n  a-1 [000] ...", TraceFormat.FTRACE),
        (b'\n# calls\n{"x0": 1}\n', TraceFormat.JSONL),
        (b"x0,conduit\n", TraceFormat.CSV),
        (b"x0\n0x84000000\n", TraceFormat.CSV),  # one column: a list of IDs
        (b' "X0" \r\n0x84000000\n', TraceFormat.CSV),
        (b"\xef\xbb\xbfx0,conduit\n", TraceFormat.CSV),
        (b'\xef\xbb\xbf{"x0": 1}\n', TraceFormat.JSONL),
        (b"", TraceFormat.FTRACE),
    ],
)
def test_detect_format(head: bytes, fmt: TraceFormat) -> None:
    assert trace.detect_format(head) is fmt


@pytest.mark.parametrize(
    ("name", "text", "fmt"),
    [
        ("t.csv", "x0,conduit\r\n0x84000000,hvc\r\n", TraceFormat.CSV),
        ("t.jsonl", '{"x0": "0x84000000"}\r\n', TraceFormat.JSONL),
    ],
)
def test_a_byte_order_mark_is_not_part_of_the_first_line(
    tmp_path: Path, name: str, text: str, fmt: TraceFormat
) -> None:
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    for chosen in (TraceFormat.AUTO, fmt):
        tally = trace.tally([str(path)], chosen)
        assert (tally.call_count, tally.skipped) == (1, 0)


def _noisy_trace(path: Path, lines: int, seed: int) -> None:
    """A trace mixing every line shape: events, comments, blanks, garbage, AArch32, CRLF."""
    rng = random.Random(seed)
    sample = [line for line in SAMPLE.read_text().splitlines() if not line.startswith("#")]
    extra = [
        *(TRACES / "aarch32.txt").read_text().splitlines()[1:],
        *(TRACES / "old-format.txt").read_text().splitlines()[2:],
        "# a comment in the middle",
        "",
        "[    2.301234] Booting Linux",
        "    smccc_oracle-138     [000] .....     2.2: kvm_hvc_arm64: HVC at 0x1 (r0: 0x",
        "    smccc_oracle-138     [000] .....     2.2: kvm_entry: PC: 0x1\r",
        # Messages that quote the counted events: not calls, not SMCs.
        "    smccc_oracle-138     [000] .....     2.3: print: kvm_hvc_arm64: HVC at 0x1 "
        "(r0: 0x0000000084000009, imm: 0x0)",
        "    smccc_oracle-138     [000] .....     2.3: print: kvm_exit: TRAP: HSR_EC: 0x0017",
    ]
    out = []
    for _ in range(lines):
        pool = extra if rng.random() < 0.02 else sample
        out.append(rng.choice(pool))
    path.write_text("\n".join(out) + "\n")


def _use_proof(monkeypatch: pytest.MonkeyPatch, proof: str) -> list[bool]:
    """Make the fast path prove its chunks by line shapes, or by RE2 whatever their length.

    Returns, for RE2, whether each chunk it was asked about was accepted (in this process).
    """
    verdicts: list[bool] = []
    if proof == "re2":
        if re2_proof.chunk_proof() is None:
            pytest.skip("google-re2 (the fast extra) is absent")
        monkeypatch.setattr(ftrace, "_RE2_MIN", 0)
        count_proven = ftrace.FtraceParser._count_proven

        def spy(parser: ftrace.FtraceParser, *args: Any) -> int:
            lines = count_proven(parser, *args)
            verdicts.append(lines >= 0)
            return lines

        monkeypatch.setattr(ftrace.FtraceParser, "_count_proven", spy)
    else:
        monkeypatch.setattr(re2_proof, "chunk_proof", lambda: None)
    return verdicts


@pytest.mark.parametrize("proof", ["shapes", "re2"])
def test_fast_path_counts_exactly_what_the_line_parser_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, proof: str
) -> None:
    path = tmp_path / "noisy.txt"
    _noisy_trace(path, 20_000, seed=7)
    monkeypatch.setattr(sources, "CHUNK", 4096)  # many chunks, about half of them clean
    verdicts = _use_proof(monkeypatch, proof)
    fast = trace.tally([str(path)])
    if proof == "re2":  # RE2 both counted chunks in bulk and sent some to the line parser
        assert any(verdicts)
        assert not all(verdicts)
    slow = TraceTally()
    for _ in trace.iter_events([str(path)], slow):
        pass
    assert fast.skipped > 0
    assert fast.calls == slow.calls
    assert (fast.lines, fast.comments, fast.events, fast.smc_without_id, fast.skipped) == (
        slow.lines,
        slow.comments,
        slow.events,
        slow.smc_without_id,
        slow.skipped,
    )
    assert fast.bad_lines == slow.bad_lines


@pytest.mark.parametrize("proof", ["shapes", "re2"])
def test_parallel_scan_matches_the_serial_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, proof: str
) -> None:
    path = tmp_path / "noisy.txt"
    _noisy_trace(path, 30_000, seed=11)
    monkeypatch.setattr(sources, "CHUNK", 8192)
    _use_proof(monkeypatch, proof)
    serial = trace.tally([str(path)])
    monkeypatch.setattr(parallel, "_PARALLEL_MIN", 1)
    monkeypatch.setattr(parallel, "_SPLIT_GUARD", 0)
    monkeypatch.setattr(parallel, "_workers", lambda: 3)
    split = trace.tally([str(path)])
    assert split.calls == serial.calls
    assert (split.lines, split.events, split.skipped, split.smc_without_id) == (
        serial.lines,
        serial.events,
        serial.skipped,
        serial.smc_without_id,
    )
    assert split.bad_lines == serial.bad_lines


@pytest.mark.parametrize("trap", ["0x0012", "0x12"])
def test_an_hvc32_trap_pending_across_a_cut_is_counted_as_the_serial_scan_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trap: str
) -> None:
    # The split guard looks for the common spelling only, and an HVC may come
    # long after its trap: the share after the cut must start from the pending state.
    head = "    smccc_oracle-{pid}     [000] d.... 2.000013: "
    filler = (head + "kvm_entry: PC: 0x1\n").format(pid=2) * 2000
    trap_line = (head + f"kvm_exit: TRAP: HSR_EC: {trap} (0x12), PC: 0x1\n").format(pid=1)
    hvc = (head + "kvm_hvc_arm64: HVC at 0x1 (r0: 0x84000000, imm: 0x0)\n").format(pid=1)
    path = tmp_path / "a32.txt"
    path.write_text(filler + trap_line + filler + hvc + filler)
    monkeypatch.setattr(sources, "CHUNK", 8192)
    serial = trace.tally([str(path)])
    assert serial.calls == {(0x8400_0000, "hvc", 0, "a32"): 1}
    monkeypatch.setattr(parallel, "_PARALLEL_MIN", 1)
    monkeypatch.setattr(parallel, "_SPLIT_GUARD", 0)
    monkeypatch.setattr(parallel, "_workers", lambda: 2)
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        cut = parallel.split_points(mm, 2)[1]
    assert len(filler + trap_line) < cut < len(filler + trap_line + filler)  # between the two
    assert trace.tally([str(path)]) == serial


def test_split_points_avoid_hvc32_traps(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    shutil.copy(TRACES / "aarch32.txt", path)
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        # Every candidate cut follows an HVC32 trap within the guard: no split at all.
        assert parallel.split_points(mm, 2) == [0, len(mm)]


def test_immediate_wider_than_16_bits_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text(
        "    vmm-1     [000] .....     1.000000: "
        "kvm_hvc_arm64: HVC at 0x4 (r0: 0x1, imm: 0x10000)\n" + _ONE_EVENT
    )
    tally = trace.tally([str(path)])
    assert (tally.skipped, tally.call_count) == (1, 0)


def test_a_module_named_re2_that_is_not_google_re2_means_the_pure_python_proof(
    tmp_path: Path,
) -> None:
    (tmp_path / "re2.py").write_text("VERSION = 'someone else'\n")
    code = "from hvcfilter.trace import re2_proof\nassert re2_proof.chunk_proof() is None\n"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("seed", range(6))
def test_range_chunks_cut_at_line_ends_whatever_the_line_lengths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    # A chunk is read to the last line end its tail probe finds; lines longer
    # than the probe, than a chunk, and a last line without "\n" still come
    # out as whole lines, every byte once, in order.
    rng = random.Random(seed)
    lengths = [rng.choice([0, 1, 5, 15, 16, 17, 40, 63, 64, 65, 200]) for _ in range(300)]
    text = b"".join(bytes(rng.choice(b"ab ") for _ in range(n)) + b"\n" for n in lengths)
    text += b"no newline at the end" * (seed % 2)
    path = tmp_path / "t.txt"
    path.write_bytes(text)
    monkeypatch.setattr(sources, "CHUNK", 64)
    monkeypatch.setattr(sources, "_TAIL_PROBE", 16)
    with path.open("rb") as handle:
        start = len(text) // 3
        start = text.index(b"\n", start) + 1  # ranges start at line starts
        pieces = list(sources.range_chunks(handle.fileno(), start, len(text), None))
    assert all(p.endswith(b"\n") for p in pieces)
    expected = text[start:] if text.endswith(b"\n") else text[start:] + b"\n"
    assert b"".join(pieces) == expected
    # Longer than a chunk only to hold a line longer than a chunk.
    assert all(len(p) <= 64 or any(len(line) >= 64 for line in p.split(b"\n")) for p in pieces)


def test_a_chunk_is_read_to_its_last_line_end_not_cut_from_a_larger_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Cutting a 1 MiB block to its last whole line copied it all again.
    rng = random.Random(3)
    text = b"".join(b"x" * rng.randrange(10) + b"\n" for _ in range(2000))
    path = tmp_path / "t.txt"
    path.write_bytes(text)
    monkeypatch.setattr(sources, "CHUNK", 64)
    monkeypatch.setattr(sources, "_TAIL_PROBE", 16)  # always holds a line end here
    reads: list[bytes] = []
    real_pread = os.pread

    def pread(fd: int, n: int, offset: int) -> bytes:
        block = real_pread(fd, n, offset)
        reads.append(block)
        return block

    monkeypatch.setattr(os, "pread", pread)
    with path.open("rb") as handle:
        pieces = list(sources.range_chunks(handle.fileno(), 0, len(text), None))
    assert b"".join(pieces) == text
    assert all(any(piece is block for block in reads) for piece in pieces)


@pytest.mark.parametrize("how", ["file", "gzip", "stdin"])
@pytest.mark.parametrize(
    "case",
    [
        (b'{"x0": "0x84000000"}\n', "jsonl", 1),
        (b"x0,conduit\n0x84000000,smc\n0x84000000,hvc\n", "csv", 2),
        ((SAMPLE.read_bytes().split(b"\n", 6)[6]), "ftrace", 5),
    ],
    ids=["jsonl", "csv", "ftrace"],
)
def test_a_header_of_comments_longer_than_a_peek_still_tells_the_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str, case: tuple[bytes, str, int]
) -> None:
    # The buffered peek holds 8 KiB: behind 500 comment lines JSON Lines was read as ftrace.
    body, fmt, calls = case
    text = b"".join(b"# capture note %d\n" % i for i in range(500)) + body
    assert len(text.split(b"{")[0]) > 8192
    path = tmp_path / "t.trace"
    if how == "gzip":
        path.write_bytes(gzip.compress(text))
    else:
        path.write_bytes(text)
    if how == "stdin":
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(text))))
    name = "-" if how == "stdin" else str(path)
    counted = trace.tally([name])
    assert list(counted.formats.values()) == [fmt]
    assert counted.call_count == calls
    assert counted.skipped == 0


@pytest.mark.parametrize("how", ["file", "gzip", "stdin", "parallel"])
def test_an_ftrace_file_with_a_byte_order_mark_reads_as_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    # The mark made "# tracer: nop" an unparseable line, and --strict failed.
    text = SAMPLE.read_bytes()
    marked = b"\xef\xbb\xbf" + text
    plain, path = tmp_path / "plain.txt", tmp_path / "marked.txt"
    plain.write_bytes(text)
    path.write_bytes(gzip.compress(marked) if how == "gzip" else marked)
    if how == "stdin":
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(marked))))
    if how == "parallel":
        monkeypatch.setattr(parallel, "_PARALLEL_MIN", 1)
        monkeypatch.setattr(parallel, "_workers", lambda: 2)
    got = trace.tally(["-" if how == "stdin" else str(path)])
    want = trace.tally([str(plain)])
    assert got.skipped == 0
    assert (got.lines, got.comments, got.events, got.calls) == (
        want.lines,
        want.comments,
        want.events,
        want.calls,
    )


def test_a_fifo_named_as_a_trace_is_read_as_a_stream(tmp_path: Path) -> None:
    # Its st_size is 0 and it cannot be read at offsets: a long header of comments
    # sent the format detection to pread, "Illegal seek".
    import threading

    text = b"".join(b"# note %d\n" % i for i in range(600)) + b'{"x0": "0x84000000"}\n'
    fifo = tmp_path / "calls.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as out:
            out.write(text)

    writer = threading.Thread(target=feed)
    writer.start()
    counted = trace.tally([str(fifo)])
    writer.join(timeout=10)
    assert list(counted.formats.values()) == ["jsonl"]
    assert counted.call_count == 1


def test_a_first_json_record_longer_than_the_look_ahead_still_reads_as_json_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "_DETECT_LIMIT", 1 << 16)
    big = b'{"x0": "0x84000000", "note": "' + b"a" * (1 << 17) + b'"}\n'
    path = tmp_path / "big.jsonl"
    path.write_bytes(big + b'{"x0": "0x84000001"}\n')
    counted = trace.tally([str(path)])
    assert list(counted.formats.values()) == ["jsonl"]
    assert counted.call_count == 2


def test_a_fifo_s_progress_counts_the_bytes_read(tmp_path: Path) -> None:
    # A FIFO cannot tell its position: the open-ended bar showed 0 bytes to the end.
    import threading

    text = (TRACES / "sample-6.12.txt").read_bytes() * 40
    fifo = tmp_path / "trace.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as out:
            out.write(text)

    seen: list[tuple[int, int | None]] = []
    writer = threading.Thread(target=feed)
    writer.start()
    trace.tally([str(fifo)], progress=lambda done, total: seen.append((done, total)))
    writer.join(timeout=10)
    assert seen[-1] == (len(text), None)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert seen[0][0] > 0


@pytest.mark.parametrize("seed", range(8))
def test_event_line_takes_exactly_the_lines_the_parser_counts_as_events(seed: int) -> None:
    # Another pass over the text (learn's forwards) acts on event_line's lines: it must
    # be the parser's own judgement, or a skipped line could decide what a call got.
    from hvcfilter.trace.events import TraceTally
    from hvcfilter.trace.ftrace import FtraceParser, event_line

    rng = random.Random(seed)
    pieces = [
        b"    vmm-7     [001] .....     2.5: ",
        b"  a-b-7 (7) [000]     2: ",
        b"# ",
        b"cpus=4",
        b"kvm_hvc_arm64: HVC at 0x1 (r0: 0x84000000, imm: 0x0)",
        b"kvm_hvc_arm64: HVC at 0x1 (r0: 0x84000000, imm: 0x123456)",
        b"kvm_exit: TRAP: HSR_EC: 0x0017 (SMC64)",
        b"kvm_entry: PC: 0x0",
        b" x",
        b"\r",
        b"-",
        b"[",
    ]
    for _ in range(3000):
        line = b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 4)))
        tally = TraceTally()
        FtraceParser(tally, "t").line(1, line)
        assert (event_line(line) is not None) == (tally.events == 1), line


_HVC_OF = "kvm_hvc_arm64: HVC at 0x0000000040000028 (r0: 0x0000000080000000, imm: 0x0)"


def test_a_pid_or_timestamp_past_any_number_is_still_an_event(tmp_path: Path) -> None:
    # int() of a 5,000-digit pid raised ValueError: exit 3. A 400-digit timestamp was inf,
    # which --format jsonl wrote as Infinity (no JSON). The bulk count takes both lines as
    # events without reading either, so the line parser must too.
    path = tmp_path / "t.txt"
    path.write_text(
        f"    vmm-{'1' * 5000} [000] .....     1.5: {_HVC_OF}\n"
        f"    vmm-7 [000] .....     {'9' * 400}.5: {_HVC_OF}\n"
    )
    events, tally = _events(path)
    assert tally.skipped == 0 and tally.events == 2
    assert [(e.vcpu, e.ts) for e in events] == [(None, 1.5), (7, None)]
    assert trace.tally([str(path)]).calls == tally.calls


@pytest.mark.parametrize(
    "ts", ['"nan"', '"-inf"', "1e400", "true", '"1_0"', '"\u0661\u0662"', '"0x10"', "[1]"]
)
def test_a_timestamp_must_be_a_finite_plain_number(tmp_path: Path, ts: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(f'{{"x0": "0x84000000", "ts": {ts}}}\n{{"x0": "0x84000000", "ts": "2.5"}}\n')
    events, tally = _events(path)
    assert tally.skipped == 1 and "field 'ts'" in tally.bad_lines[0].reason
    assert [e.ts for e in events] == [2.5]


@pytest.mark.parametrize(
    ("encode", "said"),
    [
        (lambda text: __import__("bz2").compress(text), "it is bzip2-compressed"),
        (lambda text: __import__("bz2").compress(b""), "it is bzip2-compressed"),
        (lambda text: b"\x28\xb5\x2f\xfd" + text, "it is zstd-compressed"),
        (lambda text: b"\x04\x22\x4d\x18" + text, "it is lz4-compressed"),
        (lambda text: text.decode().encode("utf-16"), "it is UTF-16 text"),
        (lambda text: text.decode().encode("utf-32"), "it is UTF-32 text"),
    ],
    ids=["bzip2", "bzip2-empty", "zstd", "lz4", "utf-16", "utf-32"],
)
def test_an_encoding_not_read_is_refused_with_the_way_out(
    tmp_path: Path, encode: Callable[[bytes], bytes], said: str
) -> None:
    # Read as text, they were hundreds of "unparseable lines", or a few and a clean exit.
    path = tmp_path / "t.trace"
    path.write_bytes(encode(SAMPLE.read_bytes()))
    with pytest.raises(
        TraceError, match=f"^cannot read {path}: {said}, which hvcfilter does not read; "
    ):
        trace.tally([str(path)])


def test_text_that_starts_like_bzip2_is_still_text(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_bytes(b"BZh9 is not a trace line\n" + SAMPLE.read_bytes())
    assert trace.tally([str(path)]).skipped == 1


@pytest.mark.parametrize("split", [False, True], ids=["serial", "parallel"])
def test_a_file_that_changes_while_read_is_refused_not_half_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, split: bool
) -> None:
    # A capture rewritten under the reader gave any count from none to all, and exit 0.
    path = tmp_path / "t.txt"
    _noisy_trace(path, 30_000, seed=3)
    monkeypatch.setattr(sources, "CHUNK", 8192)
    if split:
        monkeypatch.setattr(parallel, "_PARALLEL_MIN", 1)
        monkeypatch.setattr(parallel, "_SPLIT_GUARD", 0)
        monkeypatch.setattr(parallel, "_workers", lambda: 2)
    grown: list[int] = []

    def grow(done: int, total: int | None) -> None:
        if not grown:
            grown.append(done)
            with path.open("ab") as more:
                more.write(b"    vmm-7 [000] .....     9.0: kvm_entry: PC: 0x0\n")

    with pytest.raises(TraceError, match=f"^cannot read {path}: it changed while it was read"):
        trace.tally([str(path)], progress=grow)
    assert grown
    assert trace.tally([str(path)]).lines > 0  # left alone, it reads as ever


@pytest.mark.parametrize("read_as", ["file", "stream", "gzip", "parallel"])
def test_a_line_longer_than_any_trace_line_is_refused_not_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_as: str
) -> None:
    # /dev/zero grew the process without end, and a 300 MB line took 27 s and 630 MB.
    monkeypatch.setattr(sources, "CHUNK", 1024)
    monkeypatch.setattr(sources, "MAX_LINE", 8192)
    head = SAMPLE.read_bytes()
    fits = head + b"    vmm-7 [000] .....     9.0: kvm_entry: PC: 0x0" + b"x" * 8000 + b"\n"
    data = fits + b"y" * 9000 + b"\n" + head
    path = tmp_path / ("t.txt.gz" if read_as == "gzip" else "t.txt")
    if read_as == "parallel":
        monkeypatch.setattr(parallel, "_PARALLEL_MIN", 1)
        monkeypatch.setattr(parallel, "_SPLIT_GUARD", 0)
        monkeypatch.setattr(parallel, "_workers", lambda: 2)
        data = head * 20 + data  # the long line in the second share, read by the child
    path.write_bytes(gzip.compress(data) if read_as == "gzip" else data)
    start = len(data) - len(head) - 9001
    if read_as == "parallel":  # the child's share holds it: its error must reach the user
        with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            assert start >= parallel.split_points(mm, 2)[1]
    said = f"cannot read {path}: the line from byte {start:,} is longer than 0 MiB"
    if read_as == "stream":
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
        said = said.replace(str(path), "<stdin>")
    with pytest.raises(TraceError, match=f"^{re.escape(said)}, and no trace line is"):
        trace.tally(["-" if read_as == "stream" else str(path)])
    path.write_bytes(gzip.compress(fits) if read_as == "gzip" else fits)
    assert trace.tally([str(path)]).skipped == 0  # a long line within the bound is read


def test_a_long_line_is_placed_at_the_same_byte_from_a_file_and_a_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Past a byte-order mark the stream counted from the mark's end, the file from 0.
    monkeypatch.setattr(sources, "CHUNK", 1024)
    monkeypatch.setattr(sources, "MAX_LINE", 4096)
    data = codecs.BOM_UTF8 + SAMPLE.read_bytes() + b"y" * 5000 + b"\n"
    path = tmp_path / "t.txt"
    path.write_bytes(data)
    said = []
    for source in (str(path), "-"):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
        with pytest.raises(TraceError) as caught:
            trace.tally([source])
        said.append(str(caught.value).split(": the line from ", 1)[1])
    assert said[0] == said[1]
    assert said[0].startswith(f"byte {len(data) - 5001:,} is longer")


@pytest.mark.parametrize("cached", [False, True], ids=["read", "from-cache"])
def test_a_trace_of_which_no_line_is_an_event_is_refused_per_trace(
    tmp_path: Path, cached: bool, tally_cache: Path
) -> None:
    # Judged on the whole replay, `simulate garbage.txt good.txt` passed: one good trace
    # hid the other. And the API (api.learn, api.replay) took it without a word.
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("".join(f"junk {i}\n" for i in range(3)))
    said = (
        f"^cannot read {garbage}: read as ftrace, none of its 3 line\\(s\\) is an event; "
        f"the first: {garbage}:1: not an ftrace event line: junk 0; is it a trace\\?"
    )
    cache = trace.default_cache() if cached else None
    if cached:  # a first run: whatever it kept, the second is refused as well
        assert cache is not None
        with pytest.raises(TraceError):
            trace.tally([str(garbage)], cache=cache)
    with pytest.raises(TraceError, match=said):
        trace.tally([str(SAMPLE), str(garbage)], cache=cache)
    with pytest.raises(TraceError, match=said):
        list(trace.iter_events([str(SAMPLE), str(garbage)], TraceTally()))
    (tmp_path / "comments.txt").write_text("# tracer: nop\n#\n")  # no line skipped: empty
    assert trace.tally([str(tmp_path / "comments.txt")]).events == 0


@pytest.mark.parametrize("how", ["twice", "link", "hard link"])
def test_one_trace_named_twice_is_refused_not_counted_twice(tmp_path: Path, how: str) -> None:
    # `simulate a.txt a.txt` or `simulate 'host*' host1.txt` doubled every count, exit 0.
    first = tmp_path / "host1.txt"
    shutil.copy(SAMPLE, first)
    again = tmp_path / "alias.txt"
    if how == "twice":
        again = first
    elif how == "link":
        again.symlink_to(first)
    else:
        os.link(first, again)
    said = "named twice" if how == "twice" else f"the same file as {first}"
    message = f"{again} is {said}: its calls would be counted twice; name each trace once"
    with pytest.raises(TraceError) as caught:
        trace.tally([str(first), str(again)])
    assert str(caught.value) == message
    with pytest.raises(TraceError) as caught:
        next(trace.iter_events([str(first), str(again)], TraceTally()))
    assert str(caught.value) == message
    # Two copies are two traces, and stdin or a missing name is judged where it is read.
    copy = tmp_path / "host2.txt"
    shutil.copy(SAMPLE, copy)
    both = trace.tally([str(first), str(copy)])
    assert both.events == 2 * trace.tally([str(first)]).events
    with pytest.raises(TraceError, match="no such file"):
        trace.tally([str(first), str(tmp_path / "gone.txt"), str(tmp_path / "gone.txt")])


def test_stdin_redirected_from_a_trace_named_beside_it_is_refused(tmp_path: Path) -> None:
    # `simulate - a.txt < a.txt`: standard input is that file, read twice.
    first = tmp_path / "a.txt"
    shutil.copy(SAMPLE, first)
    other = tmp_path / "other.txt"  # a copy: another file, which stdin is not
    shutil.copy(SAMPLE, other)
    with first.open("rb") as stdin:
        saved = os.dup(0)
        os.dup2(stdin.fileno(), 0)
        try:
            said = sources.repeated_file([str(first), "-"], "name each trace once")
            alone = sources.repeated_file(["-", str(other)], "fix")
        finally:
            os.dup2(saved, 0)
            os.close(saved)
    assert said == (
        f"<stdin> is the same file as {first}: its calls would be counted twice; "
        "name each trace once"
    )
    assert alone is None


def test_an_iterator_of_paths_is_read_whole(tmp_path: Path) -> None:
    # The check for a repeated name must not spend it before the traces are read.
    assert trace.tally(iter([str(SAMPLE)])).events == trace.tally([str(SAMPLE)]).events > 0
    assert list(trace.iter_events(iter([str(SAMPLE)]), TraceTally()))


def test_a_fifo_named_with_glob_characters_is_read_as_named(tmp_path: Path) -> None:
    # It is no regular file, so it went to the glob branch and "matched no file".
    fifo = tmp_path / "p[1]"
    os.mkfifo(fifo)
    assert sources.expand_paths([str(fifo)]) == [str(fifo)]
    missing = tmp_path / "trace[1].txt"
    with pytest.raises(TraceError, match="no such file, and no file matches it as a pattern"):
        sources.expand_paths([str(missing)])
