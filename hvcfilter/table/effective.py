"""The effective table: the filter's action for every one of the 2**32 function IDs.

As maximal segments (:func:`effective_segments`), computed by a sweep over
sorted breakpoints, never per ID; the common ground of ``diff``
(:func:`diff_segments`) and of the migration digest (:func:`digest`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from hvcfilter import smccc
from hvcfilter.kernel.filter import cover
from hvcfilter.kernel.profiles import KernelProfile
from hvcfilter.model import Action
from hvcfilter.table import payload
from hvcfilter.table.payload import Record

__all__ = [
    "DIGEST_TAG",
    "Change",
    "Segment",
    "covered_calls",
    "diff_segments",
    "digest",
    "effective_segments",
]


# Named tuples, not dataclasses: importing dataclasses (and inspect) costs every
# simulate start more than the rest of a small replay.
class Segment(NamedTuple):
    """A maximal run of function IDs, ``first..last`` inclusive, that the filter treats alike."""

    first: int
    last: int
    action: Action

    @property
    def count(self) -> int:  # type: ignore[override]  # a size, not tuple.count
        """How many IDs the segment holds."""
        return self.last - self.first + 1

    def __str__(self) -> str:
        return str(smccc.IdRange(self.first, self.last))


def effective_segments(
    records: Iterable[Record], profile: KernelProfile | None = None
) -> list[Segment]:
    """The filter's action for every function ID, as maximal segments covering 0..0xFFFFFFFF.

    Records are installed in order as the kernel installs them (a record that
    would fail is left out, as the kernel leaves it out); the reserved ranges
    and every ID without a range are HANDLE. Adjacent segments never share an
    action. Cost: a sort of the records, whatever the sizes of the ranges.
    """
    segments: list[Segment] = []

    def add(first: int, last: int, action: Action) -> None:
        if segments and segments[-1].action is action:
            segments[-1] = Segment(segments[-1].first, last, action)
        else:
            segments.append(Segment(first, last, action))

    for first, last, action in cover(payload.install(records, profile=profile)):
        add(first, last, Action.HANDLE if action is None else Action(action))
    return segments


DIGEST_TAG = b"hvcfilter-effective-table-v1\x00"
_DIGEST_SEGMENT = struct.Struct("<IIB")


def digest(segments: Sequence[Segment]) -> str:
    """The canonical digest of an effective table: ``sha256:`` and 64 lower-case hex digits.

    Canonical form, version 1, so that a VMM can recompute it in C or Rust:

    1. Take the effective action of every function ID 0..0xFFFFFFFF: the
       action of the installed record holding it, else HANDLE (0); the
       reserved ranges are HANDLE.
    2. Split 0..0xFFFFFFFF into maximal segments of one action, in ascending
       order: neighbouring segments always differ in action, the first starts
       at 0 and the last ends at 0xFFFFFFFF. An empty table is one segment
       ``(0, 0xFFFFFFFF, 0)``.
    3. Hash with SHA-256 the 28 ASCII bytes ``hvcfilter-effective-table-v1``
       and one NUL byte (29 bytes in all), then for each segment 9 bytes:
       ``first`` (u32 little-endian), ``last`` (u32 little-endian), ``action`` (u8).

    Tables that treat every ID alike get the same digest, however their
    records are split, merged or ordered, and whatever the payload byte order.
    """
    import hashlib  # only digests need it

    hasher = hashlib.sha256(DIGEST_TAG)
    for seg in segments:
        hasher.update(_DIGEST_SEGMENT.pack(seg.first, seg.last, int(seg.action)))
    return f"sha256:{hasher.hexdigest()}"


class Change(NamedTuple):
    """IDs ``first..last`` whose effective action differs between two tables."""

    first: int
    last: int
    before: Action
    after: Action

    @property
    def count(self) -> int:  # type: ignore[override]  # a size, not tuple.count
        """How many IDs change."""
        return self.last - self.first + 1

    def __str__(self) -> str:
        return str(smccc.IdRange(self.first, self.last))


def diff_segments(a: Sequence[Segment], b: Sequence[Segment]) -> list[Change]:
    """The ID ranges whose action differs between two effective tables.

    Both inputs must cover 0..0xFFFFFFFF (as :func:`effective_segments`
    returns them); the sweep walks both lists once. Neighbouring changes with
    the same before/after pair are merged.
    """
    changes: list[Change] = []
    i = j = 0
    cursor = 0
    while i < len(a) and j < len(b):
        last = min(a[i].last, b[j].last)
        if a[i].action is not b[j].action:
            prev = changes[-1] if changes else None
            if (
                prev is not None
                and prev.last + 1 == cursor
                and prev.before is a[i].action
                and prev.after is b[j].action
            ):
                changes[-1] = Change(prev.first, last, prev.before, prev.after)
            else:
                changes.append(Change(cursor, last, a[i].action, b[j].action))
        cursor = last + 1
        if a[i].last == last:
            i += 1
        if b[j].last == last:
            j += 1
    return changes


def covered_calls(first: int, last: int) -> list[str]:
    """The catalogue names of the well-known calls in ``first..last``, in ID order."""
    return [e.name for e in smccc.catalogue().in_range(first, last)]
