"""Unit tests of hvcfilter.smccc: ID fields, owners, services, merging and the catalogue."""

from __future__ import annotations

import pytest

from hvcfilter import smccc
from hvcfilter.model import Action, FilterRange
from hvcfilter.smccc import CallType, Convention, IdRange


@pytest.mark.parametrize(
    "case",
    [
        (0x8400_0003, CallType.FAST, Convention.SMC32, 4, 3, False),
        (0xC400_0003, CallType.FAST, Convention.SMC64, 4, 3, False),
        (0x8401_0000, CallType.FAST, Convention.SMC32, 4, 0, True),
        (0x3200_0004, CallType.YIELD, Convention.SMC32, 50, 4, False),
        (0x4600_0001, CallType.YIELD, Convention.SMC64, 6, 1, False),
        (0xBF00_FF01, CallType.FAST, Convention.SMC32, 63, 0xFF01, False),
        (0x0000_0000, CallType.YIELD, Convention.SMC32, 0, 0, False),
        (0xFFFF_FFFF, CallType.FAST, Convention.SMC64, 63, 0xFFFF, True),
    ],
)
def test_decode_fields(case: tuple[int, CallType, Convention, int, int, bool]) -> None:
    fid, call, conv, owner, number, hint = case
    d = smccc.decode(fid)
    assert (d.value, d.call_type, d.convention, d.owner, d.function_number, d.sve_hint) == (
        fid,
        call,
        conv,
        owner,
        number,
        hint,
    )


def test_decode_reserved_bits_and_names() -> None:
    d = smccc.decode(0x84FF_0003)
    assert d.reserved_bits == 0x7F
    assert d.sve_hint
    assert d.owner_name == "standard"
    assert d.owner_display == "Standard Secure Service"


@pytest.mark.parametrize("fid", [-1, 1 << 32])
def test_decode_rejects_out_of_range(fid: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        smccc.decode(fid)


def test_encode_known_ids() -> None:
    assert smccc.encode(CallType.FAST, Convention.SMC32, 4, 3) == 0x8400_0003
    assert smccc.encode(CallType.FAST, Convention.SMC64, 5, 0x21) == 0xC500_0021
    assert smccc.encode(CallType.FAST, Convention.SMC32, 4, 0, sve_hint=True) == 0x8401_0000
    assert smccc.encode(CallType.YIELD, Convention.SMC64, 6, 1) == 0x4600_0001


@pytest.mark.parametrize(("owner", "number"), [(64, 0), (-1, 0), (0, 0x10000), (0, -1)])
def test_encode_rejects_bad_fields(owner: int, number: int) -> None:
    with pytest.raises(ValueError):
        smccc.encode(CallType.FAST, Convention.SMC32, owner, number)


def test_problems() -> None:
    assert smccc.decode(0x8400_0003).problems() == []
    assert any("reserved bits" in p for p in smccc.decode(0x84FF_0003).problems())
    assert any("reserved by SMCCC" in p for p in smccc.decode(0x4600_0001).problems())
    assert any("owner 21" in p for p in smccc.decode(0x95C1_BA5E).problems())
    assert smccc.decode(0x0200_0000).problems() == []  # Trusted OS yielding block


def test_format_id() -> None:
    assert smccc.format_id(0x8400_0003) == "0x84000003"
    assert smccc.format_id(0) == "0x00000000"


def test_id_range() -> None:
    rng = IdRange(0x8400_0000, 0x8400_001F)
    assert rng.size == 0x20
    assert 0x8400_0003 in rng and 0x8400_0020 not in rng
    not_an_id: object = "x"
    assert not_an_id not in rng
    assert str(rng) == "0x84000000-0x8400001F"
    assert str(IdRange(5, 5)) == "0x00000005"


@pytest.mark.parametrize(
    ("name", "numbers"),
    [
        ("sip", range(2, 3)),
        ("SIP", range(2, 3)),
        ("std_hyp", range(5, 6)),
        ("hyp", range(5, 6)),
        ("vendor", range(6, 7)),
        ("trusted-os", range(50, 64)),
        ("tos", range(50, 64)),
        ("ta", range(48, 50)),
        (7, range(7, 8)),
    ],
)
def test_parse_owner(name: str | int, numbers: range) -> None:
    assert smccc.parse_owner(name) == numbers


def test_parse_owner_errors() -> None:
    with pytest.raises(ValueError, match="did you mean 'sip'"):
        smccc.parse_owner("sipp")
    with pytest.raises(ValueError, match=r"0\.\.63"):
        smccc.parse_owner(64)


def test_owner_names() -> None:
    assert smccc.owner_name(2) == "sip"
    assert smccc.owner_name(55) == "trusted-os"
    assert smccc.owner_name(20) == "reserved"
    assert smccc.owner_display(49) == "Trusted Application"
    assert smccc.owner_display(60) == "Trusted OS"
    assert smccc.owner_display(9) == "reserved for future use"
    assert "sip" in smccc.owner_numbers()


def test_owner_ranges_cover_the_whole_low_24_bits() -> None:
    ranges = smccc.owner_ranges(range(2, 3))
    assert [(r.first, r.last) for r in ranges] == [
        (0x0200_0000, 0x02FF_FFFF),
        (0x4200_0000, 0x42FF_FFFF),
        (0x8200_0000, 0x82FF_FFFF),
        (0xC200_0000, 0xC2FF_FFFF),
    ]
    fast64 = smccc.owner_ranges(range(50, 64), [Convention.SMC64], [CallType.FAST])
    assert [(r.first, r.last) for r in fast64] == [(0xF200_0000, 0xFFFF_FFFF)]


def test_merge_ranges() -> None:
    merged = smccc.merge_ranges([IdRange(10, 12), IdRange(0, 3), IdRange(4, 5), IdRange(11, 20)])
    assert merged == [IdRange(0, 5), IdRange(10, 20)]
    assert smccc.merge_ranges([]) == []


def test_services() -> None:
    psci = smccc.parse_service("PSCI")
    assert [(r.first, r.last) for r in smccc.service_ranges(psci, [Convention.SMC32])] == [
        (0x8400_0000, 0x8400_001F)
    ]
    both = smccc.service_ranges(psci, [Convention.SMC32, Convention.SMC64])
    assert [r.first for r in both] == [0x8400_0000, 0xC400_0000]
    assert smccc.parse_service("pvtime").name == "pv-time"
    with pytest.raises(ValueError, match="did you mean 'psci'"):
        smccc.parse_service("pcsi")


def test_catalogue_lookup() -> None:
    cat = smccc.catalogue()
    assert len(cat) > 150
    on64 = cat.by_name("psci_cpu_on_64")
    assert on64.function_id == 0xC400_0003
    assert on64.convention is Convention.SMC64 and on64.call_type is CallType.FAST
    assert on64.stem == "PSCI_CPU_ON"
    assert [t.name for t in cat.twins(on64)] == ["PSCI_CPU_ON_32"]
    assert cat.by_id(0x8400_0003) is not None
    assert cat.by_id(0x1234_5678) is None
    assert cat.name_of(0x8000_0002) == "SMCCC_ARCH_SOC_ID"
    assert cat.label(0x8400_0003) == "0x84000003 PSCI_CPU_ON_32"
    assert cat.label(0xC200_0005) == "0xC2000005"
    with pytest.raises(KeyError, match="PSCI_CPU_ON_64"):
        cat.by_name("PSCI_CPU_ONN_64")


def test_catalogue_in_range_uses_id_order() -> None:
    cat = smccc.catalogue()
    names = [e.name for e in cat.in_range(0x8400_0000, 0x8400_0003)]
    assert names == ["PSCI_VERSION_32", "PSCI_CPU_SUSPEND_32", "PSCI_CPU_OFF_32", "PSCI_CPU_ON_32"]
    assert list(cat.in_range(0xC200_0000, 0xC2FF_FFFF)) == []
    ids = [e.function_id for e in cat.entries]
    assert ids == sorted(ids)


def test_catalogue_is_cached() -> None:
    assert smccc.catalogue() is smccc.catalogue()


def test_suggest() -> None:
    assert smccc.suggest("psci", ["psci", "sdei"]) == ["psci"]
    assert smccc.suggest("zzzz", ["psci"]) == []


def test_owner_field_of_yielding_ids_is_not_judged() -> None:
    # Reference 5.4: the owner field structures fast calls only; 0x12345678 is a
    # Trusted OS yielding ID, not owner 18.
    assert smccc.decode(0x1234_5678).problems() == []
    assert smccc.decode(0x8A00_0000).problems() == [
        "owner 10 is reserved for future use (DEN0028 6.2)"
    ]


@pytest.mark.parametrize(
    ("base", "nr", "text"),
    [
        (0x84000000, 0x20, "0x84000000-0x8400001F"),
        (0x84000003, 1, "0x84000003"),
        (0xFFFFFFF0, 0x10, "0xFFFFFFF0-0xFFFFFFFF"),
        (0xC2000000, 0, "0xC2000000 (empty)"),
        (0, 0, "0x00000000 (empty)"),
        (0xFFFFFFF0, 0x20, "0xFFFFFFF0 + 0x20 (past 0xFFFFFFFF)"),
    ],
)
def test_a_record_span_never_reads_backwards(base: int, nr: int, text: str) -> None:
    # A spec's range and a payload's record name their IDs the same way.
    assert smccc.format_record_span(base, nr) == text
    assert str(FilterRange(base, nr, Action.DENY, 0)) == text
