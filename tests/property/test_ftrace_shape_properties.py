"""The ftrace fast path's line-shape proof (trace.ftrace) against the line parser's grammar.

The proof may decline a chunk (the line parser then reads it), but it must
never accept one the line parser would read differently: every line an
event line by ``_LINE``, and every ``kvm_hvc_arm64`` and ``kvm_exit`` in it
the event name of its line. And it must accept the plain chunks real traces
are made of, or the fast path would be lost.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hvcfilter.trace import ftrace
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


def test_a_trace_folds_into_a_few_shapes() -> None:
    chunk = b"".join(
        b"    smccc_oracle-%d     [%03d] d.... %d.%06d: kvm_entry: PC: 0x%x\n"
        % (138 + n % 4, n % 4, n, n * 7 % 10**6, 0x4000_0000 + n * 4)
        for n in range(2000)
    )
    parser = ftrace.FtraceParser(TraceTally(), "t")
    assert parser._event_lines(chunk, 0, 0, _BOTH) == 2000
    assert 0 < len(parser._good_shapes) < 50
