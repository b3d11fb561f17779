"""Property tests: payload round trips, compile(decompile(p)) == p, digest and diff laws."""

from __future__ import annotations

import itertools
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hvcfilter.kernel import KvmVm
from hvcfilter.kernel.profiles import get_profile
from hvcfilter.model import Action
from hvcfilter.spec import loads
from hvcfilter.table import decompiler, payload
from hvcfilter.table.compiler import compile_spec
from hvcfilter.table.effective import diff_segments, digest, effective_segments
from hvcfilter.table.payload import Record

pytestmark = pytest.mark.property

U32 = 0xFFFFFFFF
RESERVED = get_profile(None).reserved_ranges

raw_records = st.builds(
    Record,
    st.integers(0, U32),
    st.integers(0, U32),
    st.integers(0, 255),
    st.binary(min_size=15, max_size=15),
)


def _touches_reserved(first: int, last: int) -> bool:
    return any(a <= last and first <= b for a, b in RESERVED)


@st.composite
def accepted_records(draw: st.DrawFn) -> list[Record]:
    """Records a kernel accepts: disjoint, no wrap, no reserved ID, any order, adjacency likely."""
    anchors = [0, 0x7FFFFFF0, 0x80010000, 0x84000000, 0xC2000000, 0xFFFFFF00]
    cursor = draw(st.sampled_from(anchors) | st.integers(0, U32))
    found: list[Record] = []
    for _ in range(draw(st.integers(0, 10))):
        cursor += draw(st.sampled_from([0, 0, 1, 0x10]) | st.integers(0, 1 << 28))
        size = draw(st.sampled_from([1, 2, 0x20]) | st.integers(1, 1 << 30))
        last = cursor + size - 1
        if last > U32:
            break
        if not _touches_reserved(cursor, last):
            found.append(Record(cursor, size, draw(st.integers(0, 2))))
        cursor = last + 1
    order = draw(st.sampled_from(["sorted", "shuffled"]))
    if order == "shuffled":
        found = draw(st.permutations(found))
    return found


def compile_back(text: str) -> bytes:
    """compile(decompile(p)): load the decompiled spec and compile it with defaults."""
    result = loads(text, "back.toml")
    assert result.spec is not None, result.diagnostics
    return payload.encode(compile_spec(result.spec).raw_records)


@given(st.lists(raw_records, max_size=8), st.sampled_from(["little", "big"]))
def test_decode_encode_round_trip(records: list[Record], order: payload.ByteOrder) -> None:
    data = payload.encode(records, order)
    assert len(data) == 24 * len(records)
    assert payload.decode(data, order, strict=False) == records


@settings(max_examples=300)
@given(accepted_records())
def test_compile_decompile_round_trip(records: list[Record]) -> None:
    data = payload.encode(records)
    assert payload.validate(data) == []
    result = decompiler.decompile(data, "p.bin")
    assert result.text is not None
    assert compile_back(result.text) == data


@given(accepted_records())
def test_decompile_is_deterministic_and_canonical(records: list[Record]) -> None:
    data = payload.encode(records)
    first = decompiler.decompile(data).text
    assert first == decompiler.decompile(data).text
    assert first is not None
    document = tomllib.loads(first)
    for entry in document.get("range", []):
        assert set(entry) == {"action", "base", "nr_functions", "comment"}


@given(accepted_records())
def test_digest_ignores_layout(records: list[Record]) -> None:
    ordered = sorted(records)
    merged: list[Record] = []
    for rec in ordered:
        if (
            merged
            and merged[-1].action == rec.action
            and merged[-1].base + merged[-1].nr_functions == rec.base
        ):
            merged[-1] = Record(
                merged[-1].base, merged[-1].nr_functions + rec.nr_functions, rec.action
            )
        else:
            merged.append(rec)
    assert digest(effective_segments(records)) == digest(effective_segments(merged))
    assert effective_segments(records) == effective_segments(merged)


@given(accepted_records())
def test_effective_segments_are_maximal_and_match_the_emulator(records: list[Record]) -> None:
    segments = effective_segments(records)
    assert segments[0].first == 0 and segments[-1].last == U32
    for a, b in itertools.pairwise(segments):
        assert a.last + 1 == b.first and a.action is not b.action
    vm = KvmVm()
    for rec in records:
        assert vm.set_filter(rec.base, rec.nr_functions, rec.action) == 0
    for seg in segments:
        for fid in {seg.first, seg.last, (seg.first + seg.last) // 2}:
            assert (vm.lookup(fid) or Action.HANDLE) is seg.action


@given(accepted_records(), accepted_records())
def test_diff_laws(a_records: list[Record], b_records: list[Record]) -> None:
    a, b = effective_segments(a_records), effective_segments(b_records)
    forward, backward = diff_segments(a, b), diff_segments(b, a)
    assert (forward == []) is (digest(a) == digest(b))
    assert [(c.first, c.last, c.after, c.before) for c in backward] == [
        (c.first, c.last, c.before, c.after) for c in forward
    ]
    for change in forward:
        assert change.before is not change.after


@given(accepted_records())
def test_compile_is_deterministic(records: list[Record]) -> None:
    text = decompiler.decompile(payload.encode(records)).text
    assert text is not None
    assert compile_back(text) == compile_back(text)
