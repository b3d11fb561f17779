"""The kernel's SMCCC filter: a tree of disjoint inclusive ID ranges, filled one record at a time.

KVM keeps a VM's filter in one tree of disjoint ranges keyed by function ID:
the profile's reserved ranges go in as HANDLE, and each
``KVM_SET_DEVICE_ATTR`` adds one record, refused with EINVAL when its fields
fail validation and with EEXIST when it meets any range already in the tree,
whatever the actions (reference 2.1 and 2.2; hypercalls.c
kvm_smccc_set_filter). :class:`RangeTree` is that set, with binary-search
lookups and inserts; :func:`install` replays records in order into a tree
seeded with a profile's reserved ranges; :func:`validation_errno` is the
field validation by profile; :func:`cover` walks a sorted table over the
whole 32-bit space, gaps included; :class:`FilterTable` is one emulated VM's
filter, with ``KVM_SET_DEVICE_ATTR``'s checks in the kernel's order. The
linter (:mod:`hvcfilter.rules`), the payload validator, the effective table
and the emulator all build on it, so they cannot disagree about which
records a kernel keeps. Pure: no I/O, no state outside the objects.
"""

from __future__ import annotations

import errno
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

from hvcfilter.kernel.abi import PAD_SIZE, Action
from hvcfilter.kernel.profiles import KernelProfile
from hvcfilter.kernel.results import Segment
from hvcfilter.smccc import FUNCTION_ID_MAX

__all__ = ["RESERVED", "FilterTable", "RangeTree", "cover", "install", "validation_errno"]

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


class FilterTable:
    """One VM's filter: the reserved and installed ranges, each with (action, install order).

    The order is None for a reserved range. Plain tuples, not Segments: they
    are built once per install, and a frozen dataclass costs ~10x more.
    """

    __slots__ = ("_installed", "_reserved_inserted", "profile", "tree")

    def __init__(self, profile: KernelProfile) -> None:
        self.profile = profile
        self.tree: RangeTree[tuple[Action, int | None]] = RangeTree()
        self._installed = 0
        self._reserved_inserted = False
        if profile.reserved_insertion == "create":
            self._insert_reserved()

    def set(
        self,
        base: int,
        nr_functions: int,
        action: int,
        pad: bytes,
        *,
        locked: bool,
        protected: bool = False,
    ) -> int:
        """``KVM_SET_DEVICE_ATTR`` of one range: 0 or the errno the kernel returns.

        Checks in the kernel's order (reference 2.1): pad, then the 32-bit
        end and the action byte, then EBUSY once ``locked`` (a vCPU has run),
        then the lazy insertion of the reserved ranges, then overlap (EEXIST).
        ``protected`` is a pKVM protected VM.

        Raises:
            ValueError: a field does not fit its C type (u32, u32, u8, 15 bytes).
        """
        if not (
            0 <= base <= FUNCTION_ID_MAX
            and 0 <= nr_functions <= FUNCTION_ID_MAX
            and 0 <= action <= 0xFF
        ):
            raise ValueError("base and nr_functions must fit u32 and action u8")
        if len(pad) != PAD_SIZE:
            raise ValueError(f"pad must be {PAD_SIZE} bytes, got {len(pad)}")
        prof = self.profile
        if prof.no_filter_errno is not None:
            return prof.no_filter_errno  # no VM-fd attribute ioctls before 6.4
        if protected and prof.protected_filter_errno is not None:
            return prof.protected_filter_errno  # [obs section 10]
        # EINVAL for the pad wins over EEXIST and EBUSY [obs 7.1]; 7.2 rejects
        # (0, 0) before the EBUSY test [obs section 10].
        err = validation_errno(prof, base, nr_functions, action, pad)
        if err:
            return err
        if locked:
            return errno.EBUSY  # VM-wide, also for would-be EEXIST [obs 7.1]
        if not self._reserved_inserted:
            self._insert_reserved()  # stays inserted even if this SET fails [src]
        # u32 arithmetic: (0, 0) is the full range [src]
        end = (base + nr_functions - 1) & FUNCTION_ID_MAX
        if self.tree.conflict(base, end) >= 0:
            return errno.EEXIST
        self.tree.insert(base, end, (Action(action), self._installed))
        self._installed += 1
        return 0

    def _insert_reserved(self) -> None:
        for first, last in self.profile.reserved_ranges:
            self.tree.insert(first, last, (Action.HANDLE, None))
        self._reserved_inserted = True

    @property
    def reserved_inserted(self) -> bool:
        """Whether the reserved ranges are in the tree yet (internal state, 6.7+ lazy)."""
        return self._reserved_inserted

    def lookup(self, fid: int) -> Action | None:
        """The entry for a 32-bit ID; None where no range covers it. Reserved ranges are HANDLE.

        O(log n). The reserved ranges count even before their lazy insertion:
        they always behave as HANDLE.
        """
        tree = self.tree
        i = tree.find(fid)
        if i >= 0:
            return tree.values[i][0]
        for first, last in self.profile.reserved_ranges:
            if first <= fid <= last:
                return Action.HANDLE
        return None

    def entries(self) -> list[Segment]:
        """Every reserved and installed range, in ID order."""
        entries = [
            Segment(first, last, action, "reserved" if order is None else "installed", order)
            for first, last, (action, order) in self.tree.items()
        ]
        if not self._reserved_inserted:
            # Not in the tree yet (6.7+ lazy insertion), but they behave as HANDLE already.
            entries += [
                Segment(f, la, Action.HANDLE, "reserved") for f, la in self.profile.reserved_ranges
            ]
            entries.sort(key=lambda s: s.first)
        return entries

    def effective_segments(self) -> Iterator[Segment]:
        """The whole 32-bit space in order: reserved, installed and uncovered stretches."""
        for first, last, seg in cover((s.first, s.last, s) for s in self.entries()):
            yield seg if seg is not None else Segment(first, last, None, "none")
