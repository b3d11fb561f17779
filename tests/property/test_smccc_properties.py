"""Property tests of the function-ID codec and range helpers in hvcfilter.smccc."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hvcfilter import smccc
from hvcfilter.smccc import CallType, Convention, IdRange

pytestmark = pytest.mark.property

u32 = st.integers(min_value=0, max_value=smccc.FUNCTION_ID_MAX)
call_types = st.sampled_from(list(CallType))
conventions = st.sampled_from(list(Convention))
owners = st.integers(min_value=0, max_value=63)
numbers = st.integers(min_value=0, max_value=smccc.FUNCTION_NUMBER_MASK)


@given(call_types, conventions, owners, numbers, st.booleans())
def test_decode_inverts_encode(
    call: CallType, conv: Convention, owner: int, number: int, hint: bool
) -> None:
    d = smccc.decode(smccc.encode(call, conv, owner, number, sve_hint=hint))
    assert (d.call_type, d.convention, d.owner, d.function_number, d.sve_hint) == (
        call,
        conv,
        owner,
        number,
        hint,
    )
    assert d.reserved_bits == 0


@given(u32)
def test_encode_inverts_decode_when_reserved_bits_are_clear(fid: int) -> None:
    d = smccc.decode(fid)
    rebuilt = smccc.encode(
        d.call_type, d.convention, d.owner, d.function_number, sve_hint=d.sve_hint
    )
    assert rebuilt == fid & ~smccc.RESERVED_BITS_MASK
    if d.reserved_bits == 0:
        assert rebuilt == fid


@given(u32)
def test_fields_partition_the_32_bits(fid: int) -> None:
    d = smccc.decode(fid)
    value = (
        (smccc.CALL_TYPE_BIT if d.call_type is CallType.FAST else 0)
        | (smccc.CONVENTION_BIT if d.convention is Convention.SMC64 else 0)
        | d.owner << smccc.OWNER_SHIFT
        | d.reserved_bits << 17
        | (smccc.SVE_HINT_BIT if d.sve_hint else 0)
        | d.function_number
    )
    assert value == fid


@given(u32)
def test_format_id_round_trips(fid: int) -> None:
    text = smccc.format_id(fid)
    assert len(text) == 10 and text.startswith("0x")
    assert int(text, 16) == fid


@given(u32)
def test_twin_differs_only_in_the_convention_bit(fid: int) -> None:
    twin = smccc.decode(fid ^ smccc.CONVENTION_BIT)
    d = smccc.decode(fid)
    assert twin.convention is not d.convention
    assert (twin.owner, twin.function_number, twin.call_type) == (
        d.owner,
        d.function_number,
        d.call_type,
    )


ranges = st.builds(
    lambda first, size: IdRange(first, min(first + size, smccc.FUNCTION_ID_MAX)),
    st.integers(min_value=0, max_value=2000),
    st.integers(min_value=0, max_value=50),
)


@given(st.lists(ranges, max_size=30))
def test_merge_ranges_keeps_coverage_and_separates(items: list[IdRange]) -> None:
    merged = smccc.merge_ranges(items)
    for a, b in itertools.pairwise(merged):
        assert a.last + 1 < b.first  # sorted, disjoint and not even adjacent
    covered = {i for r in items for i in range(r.first, r.last + 1)}
    assert covered == {i for r in merged for i in range(r.first, r.last + 1)}


@given(st.integers(min_value=0, max_value=63), st.integers(min_value=0, max_value=0xFFFFFF))
def test_owner_ranges_hold_every_id_of_the_owner(owner: int, low: int) -> None:
    held = smccc.owner_ranges(range(owner, owner + 1))
    for call in (0, smccc.CALL_TYPE_BIT):
        for conv in (0, smccc.CONVENTION_BIT):
            fid = call | conv | owner << smccc.OWNER_SHIFT | low
            assert any(fid in r for r in held)
    outsider = ((owner + 1) % 64) << smccc.OWNER_SHIFT | low
    assert not any(outsider in r for r in held)


@given(u32, u32)
def test_catalogue_in_range_matches_a_scan(a: int, b: int) -> None:
    first, last = min(a, b), max(a, b)
    cat = smccc.catalogue()
    expected = [e for e in cat.entries if first <= e.function_id <= last]
    assert list(cat.in_range(first, last)) == expected
