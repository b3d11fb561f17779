"""Unit tests of hvcfilter.table.effective: segments over the whole ID space, the digest, diffs."""

from __future__ import annotations

import hashlib
import struct

from hvcfilter.model import Action
from hvcfilter.table import effective
from hvcfilter.table.effective import Segment, effective_segments
from hvcfilter.table.payload import Record


def test_empty_table_is_one_handle_segment() -> None:
    assert effective_segments([]) == [Segment(0, 0xFFFFFFFF, Action.HANDLE)]


def test_effective_segments_merge_and_cover_everything() -> None:
    recs = [Record(0x84000000, 0x10, 1), Record(0x84000010, 0x10, 1), Record(0xC2000000, 0x100, 0)]
    segs = effective_segments(recs)
    assert segs == [
        Segment(0, 0x83FFFFFF, Action.HANDLE),
        Segment(0x84000000, 0x8400001F, Action.DENY),
        Segment(0x84000020, 0xFFFFFFFF, Action.HANDLE),  # explicit HANDLE = no range
    ]


def test_effective_segments_edges() -> None:
    assert effective_segments([Record(0, 1, 2), Record(0xFFFFFFFF, 1, 2)]) == [
        Segment(0, 0, Action.FWD_TO_USER),
        Segment(1, 0xFFFFFFFE, Action.HANDLE),
        Segment(0xFFFFFFFF, 0xFFFFFFFF, Action.FWD_TO_USER),
    ]


def test_effective_segments_follow_the_kernel_for_refused_records() -> None:
    # The second record overlaps and is refused (EEXIST); the reserved one too.
    recs = [Record(0x86000000, 0x10, 1), Record(0x86000008, 0x10, 2), Record(0x80000000, 1, 1)]
    assert [s for s in effective_segments(recs) if s.action is not Action.HANDLE] == [
        Segment(0x86000000, 0x8600000F, Action.DENY)
    ]


def test_digest_of_empty_table_by_the_documented_form() -> None:
    expected = hashlib.sha256(
        b"hvcfilter-effective-table-v1\x00" + struct.pack("<IIB", 0, 0xFFFFFFFF, 0)
    ).hexdigest()
    assert effective.digest(effective_segments([])) == f"sha256:{expected}"


def test_digest_ignores_layout_and_explicit_handle() -> None:
    split = [Record(0x84000010, 0x10, 1), Record(0x84000000, 0x10, 1)]
    whole = [Record(0x84000000, 0x20, 1), Record(0x85000000, 0x10, 0)]
    assert effective.digest(effective_segments(split)) == effective.digest(
        effective_segments(whole)
    )
    other = [Record(0x84000000, 0x20, 2)]
    assert effective.digest(effective_segments(other)) != effective.digest(
        effective_segments(whole)
    )


def test_diff_segments() -> None:
    a = effective_segments([Record(0x84000000, 0x20, 1)])
    b = effective_segments(
        [Record(0x84000000, 3, 1), Record(0x84000003, 1, 2), Record(0x84000004, 0x1C, 1)]
    )
    (change,) = effective.diff_segments(a, b)
    assert (change.first, change.last, change.before, change.after) == (
        0x84000003,
        0x84000003,
        Action.DENY,
        Action.FWD_TO_USER,
    )
    assert effective.diff_segments(a, a) == []


def test_diff_merges_neighbouring_changes_with_the_same_actions() -> None:
    a = effective_segments([])
    b = effective_segments([Record(0x84000000, 0x10, 1), Record(0x84000010, 0x10, 1)])
    assert len(effective.diff_segments(a, b)) == 1
