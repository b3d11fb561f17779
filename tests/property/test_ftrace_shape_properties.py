"""The ftrace fast path's line-shape proof (trace.ftrace) against its whole-chunk regex.

A chunk passes the shape proof exactly when every line matches the regex the
line parser's grammar was written as: the shapes only stand in for the bytes.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hvcfilter.trace import ftrace
from hvcfilter.trace.events import TraceTally

pytestmark = pytest.mark.property

# Pieces of event-line heads, right and wrong, and bytes from every class.
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
    ]
)
_PIDS = st.sampled_from([b"138", b"1", b"", b"12a", b"-"])
_TGIDS = st.sampled_from([b"", b"(  138) ", b"(-------) ", b"(1)x "])
_CPUS = st.sampled_from([b"[000]", b"[1]", b"[]", b"[0a]", b"000]"])
_FLAGS = st.sampled_from([b"", b"..... ", b"d.h1. ", b"1.... ", b"\x0b... ", b"\x1c.. ", b"\xff "])
_STAMPS = st.sampled_from([b"2.000013", b"12345.678901", b"7", b"2.", b".5", b"2.0x"])
_EVENTS = st.sampled_from([b"kvm_exit", b"kvm_hvc_arm64", b"kvm_entry", b"k-vm", b"", b"_9"])
_SPACES = st.sampled_from([b" ", b"\t", b"  ", b"", b"\x0c"])
_MESSAGES = st.sampled_from(
    [b" TRAP: HSR_EC: 0x0016 (HVC64)", b"", b" \r", b" \x00\xfe#", b" a: b"]
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


def _heads(line: bytes) -> bool:
    return ftrace._HEAD.match(line) is not None


@settings(max_examples=5000, deadline=None)
@given(_line())
@example(b"    smccc_oracle-138     [000] \x0b... 2.000013: kvm_exit: x")
@example(b"    smccc_oracle-138     [000] \x1c... 2.000013: kvm_exit: x")
def test_a_lines_shape_has_a_head_exactly_when_the_line_has(line: bytes) -> None:
    assert _heads(line.translate(ftrace._SHAPES)) is _heads(line)


@settings(max_examples=3000, deadline=None)
@given(st.lists(_line(), min_size=1, max_size=4))
@example([b"    smccc_oracle-138     [000] ..... 2.000013: kvm_exit: x"])
@example([b"  " + b"a" * 120 + b"-1 [0] 1.5: kvm_exit: long comm, head past the prefix"])
@example([b""])
def test_shape_proof_is_the_whole_chunk_regex(lines: list[bytes]) -> None:
    chunk = b"\n".join(lines) + b"\n"
    parser = ftrace.FtraceParser(TraceTally(), "t")
    expected = len(lines) if ftrace._LINES.fullmatch(chunk) else -1
    assert parser._event_lines(chunk, 0, 0) == expected
    # Shapes proven by an earlier chunk are remembered, and change nothing.
    assert parser._event_lines(chunk, 0, 0) == expected


def test_clean_chunks_are_proven_by_their_shapes_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoWholeChunkRegex:
        def fullmatch(self, *_: object) -> None:
            raise AssertionError("the shapes should have proven this chunk")

    monkeypatch.setattr(ftrace, "_LINES", NoWholeChunkRegex())
    chunk = b"".join(
        b"    smccc_oracle-%d     [%03d] d.... %d.%06d: kvm_entry: PC: 0x%x\n"
        % (138 + n % 4, n % 4, n, n * 7 % 10**6, 0x4000_0000 + n * 4)
        for n in range(2000)
    )
    parser = ftrace.FtraceParser(TraceTally(), "t")
    assert parser._event_lines(chunk, 0, 0) == 2000
    assert 0 < len(parser._good_shapes) < 50
