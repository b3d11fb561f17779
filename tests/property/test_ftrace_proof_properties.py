"""The ftrace fast path's two proofs against the line parser's grammar.

The proofs are the line-shape proof (trace.ftrace) and the RE2 grammar
(trace.re2_proof). Either may decline a chunk, and the line parser then
reads it. Neither may accept a chunk that the line parser would read
differently: every line must be an event line by ``_LINE``, and every
``kvm_hvc_arm64`` and ``kvm_exit`` in it the event name of its line. For the
RE2 path the bulk counts themselves are compared with the line parser's. Both
must accept the plain chunks real traces are made of, or the fast path would
be lost.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hvcfilter.trace import ftrace, re2_proof
from hvcfilter.trace.events import TraceTally

pytestmark = pytest.mark.property

_BOTH = (ftrace._HVC_EVENT, ftrace._EXIT_EVENT)

# Pieces of event lines, right and wrong, with bytes from every class.
_COMMS = st.sampled_from(
    [
        b"smccc_oracle",
        b"qemu-system-aar",
        b"<...>",
        b"kworker/0:1",
        b"a b-c",
        b"",
        b"x[1]",
        b"\xc3\xa9t\xc3\xa9",
        b"kvm_exit",
        b"kvm_exit: TRAP: HSR_EC: 0x0017 (SMC64)",
        b"kvm_hvc_arm64: HVC at 0x1 (r0: 0x2, imm: 0x0)",
    ]
)
_PIDS = st.sampled_from([b"138", b"1", b"", b"12a", b"-"])
_TGIDS = st.sampled_from([b"", b"(  138) ", b"(-------) ", b"(1)x "])
_CPUS = st.sampled_from([b"[000]", b"[1]", b"[]", b"[0a]", b"000]"])
_FLAGS = st.sampled_from(
    [b"", b"..... ", b"d.h1. ", b"1.... ", b"\x0b... ", b"\x1c.. ", b"\xff ", b"kvm_exit "]
)
_STAMPS = st.sampled_from([b"2.000013", b"12345.678901", b"7", b"2.", b".5", b"2.0x"])
_EVENTS = st.sampled_from(
    [
        b"kvm_exit",
        b"kvm_hvc_arm64",
        b"kvm_entry",
        b"k-vm",
        b"",
        b"_9",
        b"xkvm_exit",
        b"kvm_hvc_arm64x",
        b"print",
        b"\x00",
        b"\x01",
        # Names the line shapes cannot tell from the counted ones.
        b"kvm_hvc_arm12",
        b"kvm_hvc_zrm64",
        b"kvm_bxit",
    ]
)
_SPACES = st.sampled_from([b" ", b"\t", b"  ", b"", b"\x0c"])
_MESSAGES = st.sampled_from(
    [
        b" TRAP: HSR_EC: 0x0016 (HVC64)",
        b"",
        b" \r",
        b" \xfe#",
        b" a: b",
        b" 5: kvm_hvc_arm64: HVC at 0x1 (r0: 0x2, imm: 0x0)",
        b" kvm_exit: TRAP: HSR_EC: 0x0017",
        b" \x00",
        b" kvkvm_hvc_arm6 kkvm_exi",
        # kvm_hvc_arm64 messages, right and wrong, and kvm_exit traps of every kind.
        b" HVC at 0x0000000040000028 (r0: 0x0000000084000000, imm: 0x0)",
        b"\tHVC at 0x4098e46c (r0: 0x34F5D91D, imm: 0xffff)\r",
        b" HVC at 0x1 (r0: 0x2, imm: 0x12345)",
        b" HVC at 0x1 (r0: 0x2, imm: 0x0) and more",
        b" TRAP: HSR_EC: 0x0017 (SMC64), PC: 0x1",
        b" TRAP: HSR_EC: 0x13 (0x13)",
        b"\t TRAP: HSR_EC: 0x0012 (0x12)",
        b" TRAP: HSR_EC: 0x00170 (0x170)",
        b" TRAP: HSR_EC: 0x0017_",
        b" IRQ: HSR_EC: 0x0000 (UNKNOWN), PC: 0x1",
    ]
)


@st.composite
def _line(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 15)) == 0:
        return draw(st.binary(max_size=40)).replace(b"\n", b"")
    return b"".join(
        [
            draw(st.sampled_from([b"", b"    ", b"\t"])),
            draw(_COMMS),
            b"-",
            draw(_PIDS),
            draw(_SPACES),
            draw(_TGIDS),
            draw(_CPUS),
            draw(_SPACES),
            draw(_FLAGS),
            draw(_STAMPS),
            b":",
            draw(_SPACES),
            draw(_EVENTS),
            b":",
            draw(_MESSAGES),
        ]
    )


def _read_alike(lines: list[bytes]) -> bool:
    """Whether the line parser would read every line as an event, the counted names as events."""
    named = 0
    for line in lines:
        match = ftrace._LINE.fullmatch(line.rstrip(b"\r\n"))
        if match is None or not line.strip():
            return False
        named += match["event"] in (b"kvm_hvc_arm64", b"kvm_exit")
    chunk = b"\n".join(lines)
    return named == chunk.count(b"kvm_hvc_arm64") + chunk.count(b"kvm_exit")


def _proof(lines: list[bytes]) -> int:
    parser = ftrace.FtraceParser(TraceTally(), "t")
    chunk = b"\n".join(lines) + b"\n"
    first = parser._event_lines(chunk, 0, 0, _BOTH)
    # Shapes proven by an earlier chunk are remembered, and change nothing.
    assert parser._event_lines(chunk, 0, 0, _BOTH) == first
    return first


@settings(max_examples=4000, deadline=None)
@given(st.lists(_line(), min_size=1, max_size=3))
@example([b"    smccc_oracle-138     [000] \x0b... 2.000013: kvm_exit: x"])
@example([b"    smccc_oracle-138     [000] \x1c... 2.000013: kvm_exit: x"])
@example([b"    smccc_oracle-138     [000] ..... 2.000013: print: 5: kvm_hvc_arm64: HVC at 0x1"])
@example([b"    kvm_exit-138     [000] ..... 2.000013: kvm_entry: x"])
@example([b"  " + b"a" * 120 + b"-1 [0] 1.5: kvm_exit: long comm, head past the prefix"])
@example([b""])
@example([b"    smccc_oracle-138     [000] ..... 2.000013: \x00: a NUL where the name goes"])
@example(
    [
        b"    smccc_oracle-138     [000] ..... 2.000013: kvm_hvc_arm12: a look-alike event",
        b"    smccc_oracle-138     [000] ..... 2.000013: print: kvm_hvc_arm64: quoted",
    ]
)
@example(
    [
        b"    smccc_oracle-138     [000] ..... 2.000013: kvm_bxit: a look-alike event",
        b"    smccc_oracle-138     [000] ..... 2.000013: print: kvm_exit: quoted",
    ]
)
def test_an_accepted_chunk_is_read_alike_by_the_line_parser(lines: list[bytes]) -> None:
    found = _proof(lines)
    assert found in (-1, len(lines))
    if found == len(lines):
        assert _read_alike(lines)


_PLAIN = st.builds(
    lambda pid, cpu, ts, event, msg: (
        b"    smccc_oracle-%d     [%03d] d.... %d.%06d: %s: %s"
        % (pid, cpu, ts // 10**6, ts % 10**6, event, msg)
    ),
    st.integers(1, 99999),
    st.integers(0, 255),
    st.integers(0, 10**12),
    st.sampled_from([b"kvm_exit", b"kvm_hvc_arm64", b"kvm_entry", b"kvm_userspace_exit"]),
    st.sampled_from([b"TRAP: HSR_EC: 0x0017 (SMC64)", b"PC: 0x0000000040001a2c", b"reason 6"]),
)


@settings(max_examples=1000, deadline=None)
@given(st.lists(_PLAIN, min_size=1, max_size=40))
def test_plain_chunks_are_accepted(lines: list[bytes]) -> None:
    assert _proof(lines) == len(lines)


def test_the_names_shapes_cannot_overlap_so_each_is_counted_once() -> None:
    # _event_lines counts the names' shapes with bytes.count, which counts
    # non-overlapping occurrences: sound only while neither shape can overlap
    # itself or the other, which one "k" at the start of each guarantees.
    assert [byte for byte in range(256) if ftrace._SHAPES[byte] == ord("k")] == [ord("k")]
    for shape in ftrace._SHAPE_NAMES.values():
        assert shape.startswith(b"k")
        assert shape.count(b"k") == 1


def test_a_trace_folds_into_a_few_shapes() -> None:
    chunk = b"".join(
        b"    smccc_oracle-%d     [%03d] d.... %d.%06d: kvm_entry: PC: 0x%x\n"
        % (138 + n % 4, n % 4, n, n * 7 % 10**6, 0x4000_0000 + n * 4)
        for n in range(2000)
    )
    parser = ftrace.FtraceParser(TraceTally(), "t")
    assert parser._event_lines(chunk, 0, 0, _BOTH) == 2000
    assert 0 < len(parser._good_shapes) < 50


# The test extra installs google-re2 wherever PyPI has a wheel for it, so that
# the RE2 tests below run there rather than skip.
_RE2 = re2_proof.chunk_proof()
# PyPI has google-re2 wheels for glibc, not musl, on these machines.
_RE2_WHEELS = (
    sys.platform == "linux"
    and platform.machine() in ("x86_64", "aarch64")
    and platform.libc_ver()[0] == "glibc"
)
needs_re2 = pytest.mark.skipif(_RE2 is None, reason="google-re2 (the fast extra) is absent")


@pytest.mark.skipif(not _RE2_WHEELS, reason="google-re2 has no wheel for this platform")
def test_the_re2_proof_is_installed_where_it_has_wheels() -> None:
    assert _RE2 is not None


def _counts(tally: TraceTally) -> tuple[object, ...]:
    return (
        tally.lines,
        tally.comments,
        tally.events,
        tally.smc_without_id,
        tally.skipped,
        tally.calls,
    )


def _line_parsed(chunk: bytes) -> TraceTally:
    tally = TraceTally()
    parser = ftrace.FtraceParser(tally, "t")
    for number, raw in enumerate(ftrace.split_lines(chunk), 1):
        parser.line(number, raw)
    return tally


def _bulk_counted(
    chunk: bytes, count: Callable[[ftrace.FtraceParser, bytes], int]
) -> TraceTally | None:
    """The tally ``count`` makes of the chunk in bulk, or None if it declines it."""
    tally = TraceTally()
    found = count(ftrace.FtraceParser(tally, "t"), chunk)
    if found < 0:
        assert _counts(tally) == _counts(TraceTally())  # declined: nothing counted
        return None
    assert found == tally.lines
    return tally


def _re2_counted(chunk: bytes) -> TraceTally | None:
    assert _RE2 is not None
    proof = _RE2
    return _bulk_counted(chunk, lambda parser, chunk: parser._count_proven(chunk, 0, 0, proof))


@needs_re2
@settings(max_examples=4000, deadline=None)
@given(st.lists(_line(), min_size=1, max_size=4))
@example([b"    smccc_oracle-138     [000] ..... 2.000013: print: 5: kvm_hvc_arm64: HVC at 0x1"])
@example([b"    smccc_oracle-138     [000] ..... 2.0: print: kvm_exit: TRAP: HSR_EC: 0x0017"])
@example([b"    kvm_exit-138     [000] ..... 2.000013: kvm_entry: x"])
@example([b"    kvm_exit: TRAP: HSR_EC: 0x0017 (SMC64)-138     [000] 2.0: kvm_entry: x"])
@example([b"    kvm_hvc_arm64: HVC at 0x1 (r0: 0x2, imm: 0x0)-1 [000] 2.0: kvm_entry: x"])
@example([b"    smccc_oracle-138     [000] kvm_exit 2.000013: kvm_entry: x"])
@example([b"    smccc_oracle-138     [000] ..... 2.0: kvm_exit: TRAP: HSR_EC: 0x0012 (0x12)"])
@example([b"    smccc_oracle-138     [000] \x0b... 2.000013: kvm_exit: x"])
@example([b"    smccc_oracle-138     [000] ..... 2.000013: kvm_exitx: x"])
def test_a_chunk_the_re2_proof_accepts_is_counted_as_the_line_parser_counts(
    lines: list[bytes],
) -> None:
    chunk = b"\n".join(lines) + b"\n"
    fast = _re2_counted(chunk)
    if fast is not None:
        assert _read_alike(lines)
        slow = _line_parsed(chunk)
        assert slow.skipped == 0
        assert _counts(fast) == _counts(slow)


@settings(max_examples=4000, deadline=None)
@given(st.lists(_line(), min_size=1, max_size=4))
@example([b"-0 [0] 0: kvm_hvc_arm64:"])
@example([b"a-1 [0] 1.0: kvm_hvc_arm64:\r"])
@example([b"a-1 [0] 1.0: kvm_hvc_arm64:HVC at 0x1 (r0: 0x2, imm: 0x0)"])
@example(
    [
        b"a-1 [0] 1.0: kvm_hvc_arm64: HVC at 0x1 (r0: 0x2, imm: 0x0)",
        b"a-1 [0] 1.0: kvm_hvc_arm64:\x0b",
    ]
)
def test_a_chunk_the_shape_proof_accepts_is_counted_as_the_line_parser_counts(
    lines: list[bytes],
) -> None:
    chunk = b"\n".join(lines) + b"\n"
    # Shorter than _RE2_MIN: chunk_fast takes the shape proof.
    fast = _bulk_counted(chunk, ftrace.FtraceParser.chunk_fast)
    if fast is not None:
        assert _counts(fast) == _counts(_line_parsed(chunk))


_LAYOUTS = st.sampled_from(
    [
        # /sys/kernel/tracing/trace on 6.12, an older kernel, record-tgid, trace-cmd report.
        b"    smccc_oracle-%(pid)d     [%(cpu)03d] d.... %(ts)s: %(event)s: %(msg)s",
        b"           <...>-%(pid)d [%(cpu)03d] .... %(ts)s: %(event)s: %(msg)s",
        b" qemu-system-aar-%(pid)d   (  %(pid)d) [%(cpu)03d] ..... %(ts)s: %(event)s: %(msg)s",
        b"     kvm-vcpu-0-%(pid)d [%(cpu)03d] %(ts)s: %(event)s:         %(msg)s",
    ]
)
_REAL_EVENTS = st.sampled_from(
    [
        (b"kvm_exit", b"TRAP: HSR_EC: 0x0016 (HVC64), PC: 0x0000000040000028"),
        (b"kvm_exit", b"TRAP: HSR_EC: 0x0017 (SMC64), PC: 0x0000000040000028"),
        (b"kvm_exit", b"TRAP: HSR_EC: 0x0013 (0x13), PC: 0x0000000040000028"),
        (b"kvm_exit", b"IRQ: HSR_EC: 0x0000 (UNKNOWN), PC: 0xffff800080010000"),
        (b"kvm_hvc_arm64", b"HVC at 0x0000000040000028 (r0: 0x0000000084000000, imm: 0x0)"),
        (b"kvm_hvc_arm64", b"HVC at 0x4098e46c (r0: 0xc2000005, imm: 0x5)"),
        (b"kvm_entry", b"PC: 0x0000000040001a2c"),
        (b"kvm_userspace_exit", b"reason KVM_EXIT_HYPERCALL (3)"),
    ]
)
_REAL = st.builds(
    lambda layout, pid, cpu, ts, event: (
        layout
        % {
            b"pid": pid,
            b"cpu": cpu,
            b"ts": b"%d.%06d" % (ts // 10**6, ts % 10**6),
            b"event": event[0],
            b"msg": event[1],
        }
    ),
    _LAYOUTS,
    st.integers(1, 99999),
    st.integers(0, 255),
    st.integers(0, 10**12),
    _REAL_EVENTS,
)


@needs_re2
@settings(max_examples=1000, deadline=None)
@given(st.lists(_REAL, min_size=1, max_size=40))
def test_the_re2_proof_accepts_real_layouts(lines: list[bytes]) -> None:
    chunk = b"\n".join(lines) + b"\n"
    fast = _re2_counted(chunk)
    assert fast is not None
    assert _counts(fast) == _counts(_line_parsed(chunk))


# Well-formed heads of every layout with the awkward events and messages above,
# on two tasks: dense in the cases where one byte decides (an EC of 0x170, an
# HVC32 trap before an HVC of the same task, a name quoted in a message).
_HEADED = st.builds(
    lambda layout, pid, event, msg: (
        layout
        % {b"pid": pid, b"cpu": 1, b"ts": b"2.000013", b"event": event, b"msg": msg.lstrip(b" ")}
    ),
    _LAYOUTS,
    st.sampled_from([1, 2]),
    _EVENTS,
    _MESSAGES,
)


_TASK_1 = b"    smccc_oracle-1     [001] d.... 2.000013: "


@needs_re2
@settings(max_examples=3000, deadline=None)
@given(st.lists(_HEADED, min_size=1, max_size=4))
@example(
    [
        _TASK_1 + b"kvm_exit: TRAP: HSR_EC: 0x0012 (0x12), PC: 0x1",
        _TASK_1 + b"kvm_hvc_arm64: HVC at 0x1 (r0: 0x2, imm: 0x0)",
    ]
)
@example([_TASK_1 + b"kvm_exit: TRAP: HSR_EC: 0x00170 (0x170)"])
@example([_TASK_1 + b"kvm_hvc_arm64: HVC at 0x1 (r0: 0x2, imm: 0x0) and more"])
def test_the_re2_counts_on_well_formed_heads(lines: list[bytes]) -> None:
    chunk = b"\n".join(lines) + b"\n"
    fast = _re2_counted(chunk)
    if fast is not None:
        assert _read_alike(lines)
        assert _counts(fast) == _counts(_line_parsed(chunk))
