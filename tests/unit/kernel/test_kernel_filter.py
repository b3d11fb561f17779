"""Unit tests for hvcfilter.kernel.filter: the tree, in-order installs, validation and cover."""

from __future__ import annotations

import errno

import pytest

from hvcfilter.kernel.filter import RESERVED, RangeTree, cover, install, validation_errno
from hvcfilter.kernel.profiles import PROFILES, get_profile

U32 = 0xFFFF_FFFF
ZERO_PAD = bytes(15)


def test_tree_find_conflict_and_insert() -> None:
    tree: RangeTree[str] = RangeTree()
    tree.insert(0x10, 0x1F, "b")
    tree.insert(0x00, 0x0F, "a")
    tree.insert(0x30, 0x30, "c")
    assert tree.firsts == [0x00, 0x10, 0x30]
    assert list(tree.items()) == [(0x00, 0x0F, "a"), (0x10, 0x1F, "b"), (0x30, 0x30, "c")]
    assert len(tree) == 3
    assert [tree.find(f) for f in (0x00, 0x0F, 0x10, 0x1F, 0x20, 0x30, 0x31)] == [
        0,
        0,
        1,
        1,
        -1,
        2,
        -1,
    ]
    # One shared ID at either end is a conflict; adjacency is not.
    assert tree.conflict(0x1F, 0x2F) == 1
    assert tree.conflict(0x2F, 0x30) == 2
    assert tree.conflict(0x20, 0x2F) == -1
    assert tree.conflict(0x31, U32) == -1
    # A range meeting several reports the highest-starting one.
    assert tree.conflict(0, U32) == 2


def test_from_sorted_shares_the_lists_and_checks_lengths() -> None:
    firsts, lasts, values = [1, 5], [2, 9], ["x", "y"]
    tree = RangeTree.from_sorted(firsts, lasts, values)
    assert tree.firsts is firsts and tree.values is values
    assert tree.find(6) == 1
    with pytest.raises(ValueError, match="same length"):
        RangeTree.from_sorted([1], [2], [])


def test_install_keeps_order_reserved_and_refusals() -> None:
    profile = get_profile("6.12")
    spans = [
        (0x8600_0000, 0x8600_000F),  # 0: kept
        (0x8600_000F, 0x8600_0010),  # 1: meets 0
        None,  # 2: failed validation, never inserted
        (0x7FFF_FFFF, 0x8000_0000),  # 3: meets the reserved SMC32 range
        (0x8600_0010, 0x8600_0010),  # 4: adjacent to 0, kept (1 was refused)
        (0x0, 0x0),  # 5: kept, before everything
    ]
    tree, refused = install(spans, profile)
    assert refused == {1: 0, 3: RESERVED}
    assert [v for v in tree.values if v != RESERVED] == [5, 0, 4]
    assert [(f, la) for f, la, v in tree.items() if v == RESERVED] == sorted(
        profile.reserved_ranges
    )


def test_install_order_decides_who_wins() -> None:
    profile = get_profile(None)
    a, b = (0x8600_0000, 0x8600_000F), (0x8600_0008, 0x8600_0018)
    assert install([a, b], profile)[1] == {1: 0}
    assert install([b, a], profile)[1] == {1: 0}
    tree, _ = install([b, a], profile)
    assert b[0] in tree.firsts and a[0] not in tree.firsts


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_validation_errno_follows_the_profile(name: str) -> None:
    profile = PROFILES[name]
    assert validation_errno(profile, 0x8400_0000, 0x20, 2, ZERO_PAD) == 0
    assert validation_errno(profile, 0x8400_0000, 0x20, 1, b"\x01" + bytes(14)) == errno.EINVAL
    assert validation_errno(profile, 0x8400_0000, 0, 1, ZERO_PAD) == errno.EINVAL
    assert validation_errno(profile, 0xFFFF_FFF0, 0x20, 1, ZERO_PAD) == errno.EINVAL
    assert validation_errno(profile, 0xFFFF_FFF0, 0x10, 1, ZERO_PAD) == 0
    assert validation_errno(profile, 0x8400_0000, 1, profile.filter_actions, ZERO_PAD) == (
        errno.EINVAL
    )
    zero = validation_errno(profile, 0, 0, 1, ZERO_PAD)
    assert zero == (profile.zero_zero_errno if profile.zero_zero_is_validation else 0)


def test_validation_errno_zero_zero_differs_by_kernel() -> None:
    assert validation_errno(get_profile("6.12"), 0, 0, 1, ZERO_PAD) == 0  # EEXIST comes later
    assert validation_errno(get_profile("7.2"), 0, 0, 1, ZERO_PAD) == errno.EINVAL


def test_cover_fills_gaps_over_the_whole_space() -> None:
    assert list(cover([])) == [(0, U32, None)]
    assert list(cover([(0, 0, "a"), (U32, U32, "b")])) == [
        (0, 0, "a"),
        (1, U32 - 1, None),
        (U32, U32, "b"),
    ]
    assert list(cover([(0x10, 0x1F, 1), (0x20, 0x2F, 2)])) == [
        (0, 0x0F, None),
        (0x10, 0x1F, 1),
        (0x20, 0x2F, 2),
        (0x30, U32, None),
    ]
