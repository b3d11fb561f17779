"""Rules about the records themselves: overlaps, empty or wrapping ranges, mergeable neighbours.

HVF201 and HVF203 are errors: the kernel rejects such records (EEXIST,
EINVAL); so is HVF207, a kernel without the filter, which rejects them all.
HVF205 is a note: the table works, but says the same more simply as one
range.
"""

from __future__ import annotations

import errno
import operator
from collections.abc import Iterator
from itertools import compress, count, islice, repeat

from hvcfilter.diagnostics import Diagnostic, Location, Severity
from hvcfilter.errors import errno_name
from hvcfilter.model import Action, FilterSpec, OwnerEntry, RawEntry, ServiceEntry
from hvcfilter.rules.analysis import U32_END, analyse, crossing
from hvcfilter.rules.registry import Check, check
from hvcfilter.rules.wording import record_label, span, span_names
from hvcfilter.smccc import format_id
from hvcfilter.spec import locate

_MAX_NR_FUNCTIONS = U32_END - 1

__all__ = [
    "CHECKS",
    "empty_or_wrapping_range",
    "mergeable_ranges",
    "no_smccc_filter",
    "overlapping_ranges",
]


@check("HVF201", "overlapping-ranges", Severity.ERROR)
def overlapping_ranges(spec: FilterSpec) -> Iterator[Diagnostic]:
    """Two records share function IDs: the kernel rejects the second with EEXIST.

    KVM keeps one action per function ID. ``KVM_SET_DEVICE_ATTR`` fails with
    EEXIST for a range that touches any ID already in the filter, whatever
    the order the VMM installs them in and even when the actions agree
    (overlapping by one ID at either end is enough). A VMM that stops at the
    first failure is left with a partly installed table: discard that VM.

    Fail: ``base = 0x84000000, nr_functions = 0x20, action = "deny"`` beside
    ``function = "PSCI_CPU_ON_32", action = "fwd_to_user"`` (they share 0x84000003).
    Pass: ``base = 0x84000000, nr_functions = 3`` beside ``base = 0x84000003,
    nr_functions = 0x1D``: adjacent ranges are fine.
    """
    a = analyse(spec)
    if not a.overlapping:
        return
    # Which earlier record holds the reach; computed only when something overlaps.
    holder: list[int] = []
    best = -1
    for i, last in enumerate(a.lasts):
        if best < 0 or last > a.lasts[best]:
            best = i
        holder.append(best)
    for i in a.overlapping:
        first_rec, second = a.valid[holder[i - 1]], a.valid[i]
        shared = span_names(second.base, min(second.last, first_rec.last))
        same = " (the same entry)" if first_rec.entry == second.entry else ""
        yield overlapping_ranges.finding(
            spec,
            second.entry,
            f"{record_label(first_rec)} overlaps {record_label(second)}{same} at {shared}: "
            "the kernel rejects whichever it receives second with EEXIST",
            "make the ranges disjoint: each function ID can have only one action",
        )


@check("HVF203", "empty-or-wrapping-range", Severity.ERROR)
def empty_or_wrapping_range(spec: FilterSpec) -> Iterator[Diagnostic]:
    """A record with no IDs, or one that wraps past 0xFFFFFFFF: EINVAL.

    The kernel computes ``end = base + nr_functions - 1`` in 32 bits and rejects
    the record when ``end < base``: ``nr_functions = 0`` and any range that runs
    past 0xFFFFFFFF. ``base = 0, nr_functions = 0`` is the exception whose errno
    depends on the kernel: its 32-bit end wraps to 0xFFFFFFFF, so Linux 6.12
    lets it through validation and answers EEXIST (it overlaps the reserved
    ranges), while 7.2 answers EINVAL. ``base = 0, end = 0xFFFFFFFF`` becomes
    that record, because 2**32 IDs do not fit in the u32 ``nr_functions``.

    Fail: ``base = 0x84000000, nr_functions = 0`` or ``base = 0xFFFFFFF0,
    nr_functions = 0x20``.
    Pass: ``base = 0xFFFFFFF0, nr_functions = 0x10`` (ends exactly at 0xFFFFFFFF).
    """
    a = analyse(spec)
    profile = spec.profile
    for rec in a.invalid:
        entry = spec.entries[rec.entry]
        uses_end = isinstance(entry, RawEntry) and entry.end is not None
        key = "end" if uses_end else "nr_functions"
        if rec.base == 0 and rec.nr_functions == 0:
            what = (
                "base 0x00000000 with end 0xFFFFFFFF needs 2**32 IDs, which nr_functions "
                "(u32) cannot hold: the record becomes base = 0, nr_functions = 0"
                if uses_end
                else "base = 0, nr_functions = 0 is empty"
            )
            reason = (
                "its 32-bit end wraps to 0xFFFFFFFF and the full range meets the reserved ranges"
                if profile.zero_zero_errno == errno.EEXIST
                else "the kernel validates it as empty"
            )
            yield empty_or_wrapping_range.finding(
                spec,
                rec.entry,
                f"range[{rec.entry}] ({rec.action.label}): {what}; kernel {profile.name} "
                f"rejects it with {errno_name(profile.zero_zero_errno)} ({reason})",
                "to cover everything except the reserved ranges use 0x00000000+0x80000000, "
                "0x80010000+0x3FFF0000 and 0xC0010000+0x3FFF0000",
                key=key,
            )
        elif isinstance(entry, RawEntry) and entry.end is not None and entry.end < entry.base:
            yield empty_or_wrapping_range.finding(
                spec,
                rec.entry,
                f"range[{rec.entry}] ({rec.action.label}) has end {format_id(entry.end)} below "
                f"base {format_id(rec.base)}: as a record nr_functions becomes "
                f"{rec.nr_functions:#x}, which is empty or wraps past 0xFFFFFFFF; kernel "
                f"{profile.name} rejects it with EINVAL",
                "end is the last ID (inclusive) and must not be below base",
                key=key,
            )
        elif rec.nr_functions == 0:
            yield empty_or_wrapping_range.finding(
                spec,
                rec.entry,
                f"range[{rec.entry}] ({rec.action.label} at {format_id(rec.base)}) has "
                f"nr_functions = 0: kernel {profile.name} rejects the empty range with EINVAL",
                "nr_functions counts IDs: use 1 for a single function",
                key=key,
            )
        else:
            room = U32_END - rec.base
            yield empty_or_wrapping_range.finding(
                spec,
                rec.entry,
                f"range[{rec.entry}] ({rec.action.label} {format_id(rec.base)} + "
                f"{rec.nr_functions:#x}) wraps past 0xFFFFFFFF (its 32-bit end "
                f"{format_id(rec.end32)} is below the base): kernel {profile.name} rejects it "
                "with EINVAL",
                f"the last ID is 0xFFFFFFFF: use at most nr_functions = {room:#x}",
                key=key,
            )


@check("HVF205", "mergeable-ranges", Severity.NOTE)
def mergeable_ranges(spec: FilterSpec) -> Iterator[Diagnostic]:
    """Adjacent ranges of separate entries with the same action could be one range.

    The compiler already merges the records of one entry (and, with the
    default ``layout = "merged"``, adjacent records across entries); this note
    is about separate ``[[range]]`` entries that touch end to start with the
    same action: one entry says the same more simply, and with
    ``layout = "sorted"`` or ``"as-written"`` it also saves a
    ``KVM_SET_DEVICE_ATTR`` call. Ranges are not suggested for merging across
    an owner or service boundary, named ``service``/``owner`` selectors are
    left alone, ``handle`` ranges are left to HVF204, and no run is suggested
    that would span all 2^32 IDs (a record's ``nr_functions`` holds at most
    0xFFFFFFFF).

    Fail: ``base = 0xC2000000, nr_functions = 0x10`` and
    ``base = 0xC2000010, nr_functions = 0x10``, both ``fwd_to_user``.
    Pass: one range ``base = 0xC2000000, nr_functions = 0x20``, or the same two
    with different actions.
    """
    a = analyse(spec)
    acc, bases, lasts = a.installed.values, a.installed.firsts, a.installed.lasts
    touching = compress(
        count(1),
        map(operator.eq, islice(bases, 1, None), map(operator.add, lasts, repeat(1))),
    )
    run_start: int | None = None
    run_end = -2

    def report(start: int, end: int) -> Diagnostic:
        first, last = acc[start], acc[end]
        if end == start + 1:
            who = f"{record_label(first)} and {record_label(last)} are"
        else:
            who = (
                f"{record_label(first)} and the next {end - start} ranges "
                f"(range[{acc[start + 1].entry}] ... range[{last.entry}]) are"
            )
        return mergeable_ranges.finding(
            spec,
            first.entry,
            f"{who} adjacent with the same action: one {first.action.label} range "
            f"{span(first.base, last.last)} would do",
            f"merge them into one [[range]] with base = {format_id(first.base)} and "
            f"end = {format_id(last.last)}",
        )

    named = (ServiceEntry, OwnerEntry)
    for i in touching:
        prev, cur = acc[i - 1], acc[i]
        extending = run_start is not None and run_end == i - 1
        start = run_start if extending and run_start is not None else i - 1
        joinable = (
            prev.action is cur.action
            and cur.action is not Action.HANDLE
            and prev.entry != cur.entry
            # Service and owner selectors name their IDs on purpose; a raw range is no better.
            and not isinstance(spec.entries[prev.entry], named)
            and not isinstance(spec.entries[cur.entry], named)
            and crossing(bases[start], lasts[i]) is None
            # nr_functions is a u32: one record holds at most 0xFFFFFFFF IDs,
            # so a run over all 2^32 cannot be said as one range.
            and lasts[i] - bases[start] < _MAX_NR_FUNCTIONS
        )
        if joinable and extending:
            run_end = i
            continue
        if run_start is not None:
            yield report(run_start, run_end)
            run_start = None
        if joinable:
            run_start, run_end = i - 1, i
    if run_start is not None:
        yield report(run_start, run_end)


@check("HVF207", "no-smccc-filter", Severity.ERROR)
def no_smccc_filter(spec: FilterSpec) -> Iterator[Diagnostic]:
    """The target kernel has no SMCCC filter: before Linux 6.4 every install fails.

    The filter arrived in Linux 6.4. Older kernels (Linux 6.1 is the lab's) do
    not know the VM-fd device-attribute ioctls on arm64, so a VMM's
    ``KVM_HAS_DEVICE_ATTR`` probe and every ``KVM_SET_DEVICE_ATTR`` fail with
    EINVAL (observed on 6.1.176), and the guest gets the kernel's default
    handling of every call. It is an error, not a warning: hvcfilter's errors
    are tables the kernel rejects, and this kernel rejects every record. One
    finding per spec, at its first range.

    Fail: any ``[[range]]`` with ``[filter] kernel = "6.1"`` (or ``--kernel 6.1``).
    Pass: the same table for ``kernel = "6.12"``, or no ranges at all (an
    empty table probes nothing).
    """
    profile = spec.profile
    if profile.has_filter or not spec.entries:
        return
    err = errno_name(profile.no_filter_errno or 0)
    n = len(spec.ranges)
    yield no_smccc_filter.finding(
        spec,
        0,
        f"kernel {profile.name} has no SMCCC filter (it arrived in Linux 6.4): a VMM's "
        f"KVM_HAS_DEVICE_ATTR probe and KVM_SET_DEVICE_ATTR fail with {err}, so none of "
        f"the {n} record{'s' if n != 1 else ''} can be installed and the guest gets the "
        "kernel's default handling of every call",
        "target Linux 6.4 or later ([filter] kernel or --kernel), or install no table on "
        "this kernel",
    )


@check("HVF208", "empty-table", Severity.WARNING)
def empty_table(spec: FilterSpec) -> Iterator[Diagnostic]:
    """The spec has no ``[[range]]``: its payload is empty, and the VMM installs no filter.

    The kernel accepts an empty table, as there is nothing to install: no
    ``KVM_SET_DEVICE_ATTR`` call is made and every call the guest makes gets
    the kernel's default handling, as with no spec at all. That is seldom
    what a file meant to lock a guest down was written for: an empty or
    truncated file, or one whose ranges an edit lost. A deliberately empty
    table says so with ``allow = ["empty-table"]``.

    Fail: a spec of only ``[filter] kernel = "6.12"``, or an empty file.
    Pass: any spec with at least one ``[[range]]``.
    """
    if spec.entries:
        return
    at = locate(spec, ("filter",))
    yield Diagnostic(
        empty_table.code,
        empty_table.name,
        empty_table.severity,
        "the spec has no [[range]]: the table is empty, so the VMM installs no filter and "
        "every call gets the kernel's default handling",
        at if at.line is not None else Location(spec.path),  # the file, when it has no [filter]
        "add [[range]] entries (`hvcfilter init` writes a starter table), or "
        'allow = ["empty-table"] in [filter] if no filter is meant',
    )


CHECKS: tuple[Check, ...] = (
    overlapping_ranges,
    empty_or_wrapping_range,
    mergeable_ranges,
    no_smccc_filter,
    empty_table,
)
