"""The kernel's SMCCC filter tree: disjoint inclusive ID ranges, filled one record at a time.

KVM keeps a VM's filter in one tree of disjoint ranges keyed by function ID:
the profile's reserved ranges go in as HANDLE, and each
``KVM_SET_DEVICE_ATTR`` adds one record, refused with EINVAL when its fields
fail validation and with EEXIST when it meets any range already in the tree,
whatever the actions (reference 2.1 and 2.2; hypercalls.c
kvm_smccc_set_filter). :class:`RangeTree` is that set, with binary-search
lookups and inserts; :func:`install` replays records in order into a tree
seeded with a profile's reserved ranges; :func:`validation_errno` is the
field validation by profile; :func:`cover` walks a sorted table over the
whole 32-bit space, gaps included. The linter (``checks.py``), the payload
validator (``payload.py``), the compiler's effective table and the emulator
(``kernel.py``) all build on it, so they cannot disagree about which records
a kernel keeps. Pure: no I/O, no state outside the objects.
"""

from __future__ import annotations

import errno
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

from hvcfilter.profiles import KernelProfile
from hvcfilter.smccc import FUNCTION_ID_MAX

__all__ = ["RESERVED", "RangeTree", "cover", "install", "validation_errno"]

V = TypeVar("V")

# The value :func:`install` gives the reserved ranges (records get their index).
RESERVED = -1


class RangeTree(Generic[V]):
    """Disjoint inclusive ranges sorted by first ID, each with a value.

    ``firsts``, ``lasts`` and ``values`` are parallel lists in first-ID order;
    hot loops may read them directly (the lists are never rebound, only
    mutated, so a reference taken once stays current). Lookups and overlap
    tests are binary searches: O(log n). An insert is a binary search plus a
    list insert, so building a tree in sorted order costs O(n log n).
    """

    __slots__ = ("firsts", "lasts", "values")

    def __init__(self) -> None:
        self.firsts: list[int] = []
        self.lasts: list[int] = []
        self.values: list[V] = []

    @classmethod
    def from_sorted(cls, firsts: list[int], lasts: list[int], values: list[V]) -> RangeTree[V]:
        """A tree over lists that already hold disjoint ranges in first-ID order (not copied).

        Raises:
            ValueError: the lists differ in length.
        """
        if not len(firsts) == len(lasts) == len(values):
            raise ValueError("firsts, lasts and values must have the same length")
        tree: RangeTree[V] = cls()
        tree.firsts, tree.lasts, tree.values = firsts, lasts, values
        return tree

    def __len__(self) -> int:
        return len(self.firsts)

    def find(self, fid: int) -> int:
        """The index of the range holding ``fid``, or -1."""
        i = bisect_right(self.firsts, fid) - 1
        if i >= 0 and fid <= self.lasts[i]:
            return i
        return -1

    def conflict(self, first: int, last: int) -> int:
        """The index of the highest-starting range that meets ``first..last``, or -1 (EEXIST)."""
        # Ranges are disjoint: only the one starting last at or before `last` can reach back.
        i = bisect_right(self.firsts, last) - 1
        if i >= 0 and self.lasts[i] >= first:
            return i
        return -1

    def insert(self, first: int, last: int, value: V) -> None:
        """Add a range the caller knows meets no range in the tree."""
        i = bisect_right(self.firsts, first)
        self.firsts.insert(i, first)
        self.lasts.insert(i, last)
        self.values.insert(i, value)

    def items(self) -> Iterator[tuple[int, int, V]]:
        """``(first, last, value)`` for every range, in first-ID order."""
        return zip(self.firsts, self.lasts, self.values, strict=True)


def install(
    spans: Iterable[tuple[int, int] | None], profile: KernelProfile
) -> tuple[RangeTree[int], dict[int, int]]:
    """Install ranges in order, as the kernel does, into a tree holding the reserved ranges.

    ``spans[i]`` is ``(first, last)``, or None for a record that failed
    validation (it is never inserted, reference 2.1). Returns the tree, whose
    values are span indices (:data:`RESERVED` for the reserved ranges), and,
    for each span refused with EEXIST, the value of the range it met (the
    highest-starting one where it meets several).
    """
    firsts: list[int] = []
    lasts: list[int] = []
    # Values by first ID (unique, as ranges are disjoint): a dict store instead of a
    # third list insert keeps shuffled 100,000-record installs at two memmoves each.
    owner: dict[int, int] = {}
    for first, last in sorted(profile.reserved_ranges):
        firsts.append(first)
        lasts.append(last)
        owner[first] = RESERVED
    refused: dict[int, int] = {}
    i = 0
    for index, span in enumerate(spans):
        if span is None:
            continue
        first, last = span
        # Sorted input (compiled payloads) goes just after the previous span:
        # test that spot before searching the whole tree.
        if not ((i == len(firsts) or firsts[i] > last) and (i == 0 or firsts[i - 1] <= last)):
            i = bisect_right(firsts, last)
        if i and lasts[i - 1] >= first:
            refused[index] = owner[firsts[i - 1]]
            continue
        # Nothing meets first..last, so every range starting at or before
        # `last` ends before `first`: i is also where `first` goes.
        firsts.insert(i, first)
        lasts.insert(i, last)
        owner[first] = index
        i += 1
    return RangeTree.from_sorted(firsts, lasts, [owner[f] for f in firsts]), refused


def validation_errno(
    profile: KernelProfile, base: int, nr_functions: int, action: int, pad: bytes
) -> int:
    """0 if one record passes the kernel's field validation, else the errno it gets.

    In the kernel's order (reference 2.1 rows 4-5, section 10): a nonzero pad,
    then a 32-bit end below the base or an action the profile does not know
    (EINVAL); ``base = 0, nr_functions = 0`` is rejected here only on kernels
    that validate it (7.2), otherwise it wraps to the full range and meets the
    reserved ranges later (EEXIST on 6.12).
    """
    if any(pad):
        return errno.EINVAL
    end = (base + nr_functions - 1) & FUNCTION_ID_MAX  # u32 arithmetic [src]
    if end < base or action >= profile.filter_actions:
        return errno.EINVAL
    if base == 0 and nr_functions == 0 and profile.zero_zero_is_validation:
        return profile.zero_zero_errno
    return 0


def cover(spans: Iterable[tuple[int, int, V]]) -> Iterator[tuple[int, int, V | None]]:
    """The whole ID space 0..0xFFFFFFFF in order: the sorted, disjoint ``spans`` and the gaps.

    A gap (no span reaches it) comes out with the value None.
    """
    nxt = 0
    for first, last, value in spans:
        if first > nxt:
            yield nxt, first - 1, None
        yield first, last, value
        nxt = last + 1
    if nxt <= FUNCTION_ID_MAX:
        yield nxt, FUNCTION_ID_MAX, None
