"""Unit tests for hvcfilter.table.payload: the record layout, encode/decode, every HVF4xx rule."""

from __future__ import annotations

import re
import struct

import pytest

from hvcfilter.diagnostics import Severity
from hvcfilter.errors import PayloadError
from hvcfilter.kernel.profiles import get_profile
from hvcfilter.table import payload
from hvcfilter.table.payload import (
    PAYLOAD_RULES,
    RECORD,
    RECORD_BE,
    Record,
    decode,
    encode,
    validate,
)


def raw(base: int, nr: int, action: int, pad: bytes = bytes(15), fmt: str = "<IIB15s") -> bytes:
    """A record packed independently of the module under test."""
    return struct.pack(fmt, base, nr, action, pad)


def test_layout_is_the_kernel_struct() -> None:
    assert RECORD.size == RECORD_BE.size == 24
    # base at 0, nr_functions at 4, action at 8, pad 9..23 (reference 1.2).
    data = encode([Record(0x11223344, 0x55667788, 2)])
    assert data == bytes.fromhex("443322118877665502") + bytes(15)


def test_big_endian_layout() -> None:
    data = encode([Record(0x84000000, 0x20, 1)], "big")
    assert data == bytes.fromhex("840000000000002001") + bytes(15)
    assert decode(data, "big") == [Record(0x84000000, 0x20, 1)]


def test_decode_encode_round_trip() -> None:
    records = [Record(0x84000000, 0x20, 1), Record(0xC2000000, 0x100, 2), Record(0xFFFFFFFF, 1, 0)]
    assert decode(encode(records)) == records


def test_empty_payload_is_an_empty_table() -> None:
    assert decode(b"") == []
    assert validate(b"") == []
    assert encode([]) == b""


def test_encode_rejects_fields_that_do_not_fit() -> None:
    with pytest.raises(PayloadError, match="does not fit"):
        encode([Record(0x1_0000_0000, 1, 0)])
    with pytest.raises(PayloadError, match="pad is 7 bytes"):
        encode([Record(0, 1, 0, bytes(7))])
    with pytest.raises(PayloadError, match="byte order"):
        encode([], "middle")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (raw(0x84000000, 1, 1)[:20], r"record 0 at offset 0x0 is truncated \(20 bytes\)"),
        (raw(0x84000000, 1, 1) + b"\0" * 5, r"record 1 at offset 0x18 is truncated"),
        (raw(0x84000000, 1, 3), r"record 0: action 3 .*\(offset 0x8\)"),
        (
            raw(0x84000000, 1, 1) + raw(0x84000001, 1, 1, b"\0\x80" + bytes(13)),
            r"record 1: nonzero padding \(pad\[1\]=0x80\).*\(offset 0x22\)",
        ),
        (raw(0xFFFFFFF0, 0x20, 1), r"record 0: the range runs past 0xFFFFFFFF.*\(offset 0x4\)"),
        (raw(0x84000000, 0, 1), r"record 0: the range is empty"),
    ],
)
def test_decode_reports_index_and_offset(data: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        decode(data)


def test_decode_not_strict_keeps_raw_fields() -> None:
    data = raw(0xFFFFFFFF, 2, 9, b"\x01" + bytes(14))
    (rec,) = decode(data, strict=False)
    assert rec == Record(0xFFFFFFFF, 2, 9, b"\x01" + bytes(14))
    assert not rec.is_well_formed
    assert encode([rec]) == data


def codes(data: bytes, **kwargs: object) -> list[tuple[str, int | None, str | None]]:
    return [(d.code, d.location.offset, d.location.key) for d in validate(data, **kwargs)]  # type: ignore[arg-type]


def test_validate_truncated() -> None:
    assert codes(raw(0x84000000, 1, 1) + b"\x01" * 16) == [("HVF401", 24, "record[1]")]


def test_validate_bad_action_bad_pad_and_wrap_together() -> None:
    # Every problem is reported, not only the first.
    data = raw(0xFFFFFFF0, 0x20, 7, bytes(14) + b"\x01")
    assert codes(data) == [
        ("HVF403", 23, "record[0].pad"),
        ("HVF402", 8, "record[0].action"),
        ("HVF404", 4, "record[0].nr_functions"),
    ]


@pytest.mark.parametrize(
    ("base", "nr", "ok"),
    [
        (0xFFFFFFFF, 1, True),  # [obs 7.1] accepted
        (0xFFFFFFFF, 2, False),  # [obs] EINVAL
        (0xFFFFFFF0, 0x20, False),  # [obs] EINVAL
        (0xFFFFFFFF, 0xFFFFFFFF, False),
        (0x84000000, 0, False),  # [obs] EINVAL
        (0, 0, False),  # EEXIST on 6.12, EINVAL on 7.2: rejected either way
        (1, 0x7FFFFFFE, True),  # [obs] OK
    ],
)
def test_validate_wrap_cases(base: int, nr: int, ok: bool) -> None:
    found = codes(raw(base, nr, 1))
    assert (found == []) is ok
    if not ok:
        assert found[0][0] == "HVF404"


def test_validate_overlap_with_earlier_record() -> None:
    # reference 7.1: (0x86000000, 0x10), then (0x8600000F, 2) gives EEXIST; adjacent is fine.
    data = raw(0x86000000, 0x10, 1) + raw(0x8600000F, 2, 2) + raw(0x86000010, 1, 2)
    diags = validate(data, "t.bin")
    assert [(d.code, d.location.offset) for d in diags] == [("HVF405", 24)]
    assert "overlaps record 0" in diags[0].message
    assert str(diags[0].location) == "t.bin@0x18"


def test_validate_overlap_ignores_records_the_kernel_refused() -> None:
    # Record 0 is refused (bad pad), so it is never inserted and cannot cause EEXIST.
    data = raw(0x86000000, 0x10, 1, b"\x01" + bytes(14)) + raw(0x86000000, 0x10, 1)
    assert [c for c, _, _ in codes(data)] == ["HVF403"]


def test_validate_overlap_with_an_earlier_record_not_a_neighbour() -> None:
    # Install order matters: the big record came first, the small one inside it is second.
    data = raw(0x86000000, 0x1000, 1) + raw(0x85000000, 1, 1) + raw(0x86000800, 1, 2)
    assert [(c, k) for c, _, k in codes(data)] == [("HVF405", "record[2]")]


@pytest.mark.parametrize(
    ("base", "nr"),
    [
        (0x80000000, 1),
        (0x8000FFFF, 1),
        (0x7FFFFFFF, 2),
        (0xC0000000, 1),
        (0xC000FFFF, 1),
        (1, 0xFFFFFFFF),
    ],
)
def test_validate_reserved(base: int, nr: int) -> None:
    diags = validate(raw(base, nr, 0))
    assert [d.code for d in diags] == ["HVF406"]
    assert "EEXIST" in diags[0].message


@pytest.mark.parametrize(("base", "nr"), [(0x80010000, 1), (0xBFFFFFFF, 1), (0xC0010000, 0x10)])
def test_validate_just_outside_reserved(base: int, nr: int) -> None:
    assert validate(raw(base, nr, 1)) == []


def test_deny_all_but_reserved_is_clean() -> None:
    # reference 2.2: the triple a 6.12 kernel accepted.
    data = raw(0, 0x80000000, 1) + raw(0x80010000, 0x3FFF0000, 1) + raw(0xC0010000, 0x3FFF0000, 1)
    assert validate(data, profile=get_profile("6.12")) == []


def test_a_kernel_without_the_filter_refuses_every_record_once() -> None:
    # 6.1 fails KVM_SET_DEVICE_ATTR with EINVAL before it looks at a record (observed on
    # 6.1.176): one HVF407, not the records' own problems (this one overlaps and has a pad).
    six_one = get_profile("6.1")
    padded = raw(0xC2000000, 1, 1, pad=b"\x01" + bytes(14))
    data = raw(0x86000000, 0x10, 1) + raw(0x8600000F, 2, 2) + padded
    diags = validate(data, profile=six_one)
    assert [(d.code, d.location.key) for d in diags] == [("HVF407", "record[0]")]
    assert "none of the 3 records" in diags[0].message and "EINVAL" in diags[0].message
    assert payload.install(payload.decode(data[:48]), profile=six_one) == []  # nothing installed
    assert validate(b"", profile=six_one) == []  # an empty table installs nothing anyway


def test_install_model_matches_kernel_order() -> None:
    records = [Record(0x86000000, 0x10, 1), Record(0x8600000F, 2, 2), Record(0x85000000, 1, 2)]
    assert payload.install(records) == [(0x85000000, 0x85000000, 2), (0x86000000, 0x8600000F, 1)]


def test_rules_are_unique_documented_and_failing_cases_exist() -> None:
    seen = set()
    for rule in PAYLOAD_RULES:
        assert re.fullmatch(r"HVF4\d\d", rule.code)
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.name)
        assert rule.code not in seen
        seen.add(rule.code)
        assert "Fail:" in rule.doc and "Pass:" in rule.doc
        assert rule.severity is Severity.ERROR  # each one makes SET_ATTR fail
    assert seen == {"HVF401", "HVF402", "HVF403", "HVF404", "HVF405", "HVF406", "HVF407"}


def test_record_text() -> None:
    assert str(Record(0x84000000, 0x20, 1)) == "0x84000000-0x8400001F"
    assert str(Record(0x84000003, 1, 1)) == "0x84000003"
    assert str(Record(0, 0, 1)) == "0x00000000 (empty)"
    # Past 0xFFFFFFFF the kernel's 32-bit last ID would read backwards.
    assert str(Record(0xFFFFFFF0, 0x20, 1)) == "0xFFFFFFF0 + 0x20 (past 0xFFFFFFFF)"
    assert str(Record(0xFFFFFFF0, 0x10, 1)) == "0xFFFFFFF0-0xFFFFFFFF"
