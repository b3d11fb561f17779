"""Rules about SMCCC owners and conventions: boundaries, SMC32/SMC64 twins, hinted IDs.

Function IDs are grouped by call type, convention, owner and service family
(DEN0028); KVM compares all 32 bits of W0. These warnings catch ranges that
spill across those groups (HVF206), policies that cover one width of a call
but not its twin (HVF301), and ranges over IDs with the SVE hint or reserved
bits set, which are not the plain calls (HVF304).
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from functools import cache
from itertools import compress, count, repeat
from typing import NamedTuple

from hvcfilter import smccc
from hvcfilter.diagnostics import Diagnostic, Severity
from hvcfilter.model import Action, FilterSpec
from hvcfilter.rules.analysis import SERVICE_BLOCKS, analyse, crossing
from hvcfilter.rules.registry import Check, check
from hvcfilter.rules.wording import Groups, record_label, span_names
from hvcfilter.smccc import format_id

__all__ = ["CHECKS", "crosses_boundary", "hinted_or_malformed_id", "twin_gap"]


@check("HVF206", "crosses-boundary", Severity.WARNING)
def crosses_boundary(spec: FilterSpec) -> Iterator[Diagnostic]:
    """A range spills across an SMCCC owner, convention or service-family boundary.

    Function IDs are grouped by call type and convention (bits 31:30), owner
    (bits 29:24) and, within the Standard Secure and Standard Hypervisor
    owners, service families: PSCI 0x00-0x1F, SDEI 0x20-0x3F, TRNG 0x50-0x5F,
    FF-A 0x60-0xFF, RMI, RSI, general queries 0xFF00-0xFFFF and PV time. A range
    that starts or ends inside one of these blocks and runs into the next is
    usually an off-by-one or a PSCI/SDEI mix-up. Ranges made of whole blocks
    (``0x80010000-0xBFFFFFFF``) are fine.

    Fail: ``base = 0x84000010, end = 0x8400002F`` (half PSCI, half SDEI).
    Pass: ``service = "psci"``, or ``base = 0x84000000, end = 0x8400003F``
    (all of PSCI and SDEI).
    """
    a = analyse(spec)
    bases, lasts = a.bases, a.lasts
    crosses_block = compress(
        count(), map(operator.rshift, map(operator.xor, bases, lasts), repeat(24))
    )
    in_services = compress(
        count(), map(SERVICE_BLOCKS.__contains__, map(operator.rshift, bases, repeat(24)))
    )
    for i in sorted(set(crosses_block).union(in_services)):
        reason = crossing(bases[i], lasts[i])
        if reason:
            rec = a.valid[i]
            yield crosses_boundary.finding(
                spec,
                rec.entry,
                f"{record_label(rec)} {reason}",
                "split the range at the boundary, or select whole families with "
                'service = "..." or owner = "..."',
            )


class _Twin(NamedTuple):
    one: int
    other: int


@cache
def _twin_pairs() -> tuple[_Twin, ...]:
    """Catalogue calls defined in both widths: same stem, or names differing in 32/64."""
    cat = smccc.catalogue()
    pairs: dict[tuple[int, int], _Twin] = {}
    for entry in cat.entries:
        partners = list(cat.twins(entry))
        flipped = cat.by_id(entry.function_id ^ smccc.CONVENTION_BIT)
        if flipped is not None and flipped.name.replace("64", "32") == entry.name.replace(
            "64", "32"
        ):
            partners.append(flipped)
        for partner in partners:
            a, b = sorted((entry.function_id, partner.function_id))
            pairs[(a, b)] = _Twin(a, b)
    return tuple(sorted(pairs.values(), key=lambda t: (t.one, t.other)))


@check("HVF301", "twin-gap", Severity.WARNING)
def twin_gap(spec: FilterSpec) -> Iterator[Diagnostic]:
    """A call is filtered in one width but its SMC32/SMC64 twin is treated differently.

    Many calls exist as an SMC32 and an SMC64 ID (``PSCI_CPU_ON_32``
    0x84000003 and ``PSCI_CPU_ON_64`` 0xC4000003). The filter matches exact
    IDs, so a policy written for one width does not cover the other: a guest
    that uses the other ID reaches KVM instead. This is how a public VMM patch
    series forwarded only the 64-bit CPU_ON and left the 32-bit one in the
    kernel. Warned when the twins get different filter actions, or when one is
    filtered and KVM still answers the other. (Denying one width of a call
    KVM does not implement is not reported: the guest gets NOT_SUPPORTED for
    both.)

    Fail: ``function = "PSCI_CPU_ON_64", action = "fwd_to_user"`` alone.
    Pass: ``functions = ["PSCI_CPU_ON_32", "PSCI_CPU_ON_64"], action = "fwd_to_user"``.
    """
    a = analyse(spec)
    cat = smccc.catalogue()
    groups = Groups()
    for twin in _twin_pairs():
        act_one, rec_one = a.action_at(twin.one)
        act_other, rec_other = a.action_at(twin.other)
        if act_one is act_other:
            continue  # both unfiltered, or filtered alike
        if act_one is not None and act_other is not None and rec_one is not None:
            verb = "forwarded" if act_other is Action.FWD_TO_USER else "denied"
            entry = rec_other.entry if rec_other is not None else "?"
            status = f"{verb} by range[{entry}]"
            fid, ofid, rec = twin.one, twin.other, rec_one
        else:
            act: Action | None
            if act_one is not None:
                fid, ofid, act, rec_f = twin.one, twin.other, act_one, rec_one
            else:
                fid, ofid, act, rec_f = twin.other, twin.one, act_other, rec_other
            if rec_f is None:
                continue
            rec = rec_f
            if ofid in a.kernel:
                status = "answered by KVM, so a guest using it bypasses the filter"
            elif act is Action.DENY:
                continue  # NOT_SUPPORTED either way
            else:
                status = "not forwarded, so the guest gets NOT_SUPPORTED for it"
        groups.add(rec, f"{cat.label(fid)}, whose twin {cat.label(ofid)} is {status}")
    for entry, label, items in groups:
        action = spec.entries[entry].action
        verb = "forwards" if action == Action.FWD_TO_USER.label else "denies"
        shown = "; ".join(items[:4]) + (f"; and {len(items) - 4} more" if len(items) > 4 else "")
        yield twin_gap.finding(
            spec,
            entry,
            f"{label} {verb} {shown}",
            'filter both widths alike, e.g. functions = ["PSCI_CPU_ON_32", '
            '"PSCI_CPU_ON_64"], or a service/owner entry without a convention',
        )


@check("HVF304", "hinted-or-malformed-id", Severity.WARNING)
def hinted_or_malformed_id(spec: FilterSpec) -> Iterator[Diagnostic]:
    """A fast-call range covers only IDs with the SVE hint or reserved bits set.

    Bits 23:17 of a fast-call ID are reserved (zero) and bit 16 is the SMCCC
    1.3 SVE hint. KVM compares all 32 bits of W0 and does not strip the hint,
    so ``0x84010000`` is not PSCI_VERSION: a range there does not filter the
    plain calls, and a range on the plain IDs does not catch hinted ones.
    Ranges that merely extend into that space (whole-owner selectors, "deny
    everything" tables) are not reported.

    Fail: ``base = 0x84010000, nr_functions = 0x20, action = "deny"``.
    Pass: ``base = 0x84000000, nr_functions = 0x20, action = "deny"``.
    """
    a = analyse(spec)
    bases, lasts = a.bases, a.lasts
    candidates = compress(
        count(), map(operator.and_, map(operator.rshift, bases, repeat(16)), repeat(0xFF))
    )
    for i in candidates:
        base, last = bases[i], lasts[i]
        if not base >> 31 or (base ^ last) >> 24 or not (last >> 16) & 0xFF:
            continue
        owner = (base >> 24) & 0x3F
        if 8 <= owner <= 47:
            continue  # no SMCCC owner: not a hinted call (KVM's legacy PSCI IDs live here)
        rec = a.valid[i]
        plain_first, plain_last = base & ~0x00FF_0000, last & ~0x00FF_0000
        if (base >> 16) & 0xFF == 1 and (last >> 16) & 0xFF == 1:
            what = "the SVE hint bit (16) set"
        else:
            what = "reserved bits 23:17 set (malformed fast calls)"
        yield hinted_or_malformed_id.finding(
            spec,
            rec.entry,
            f"{record_label(rec)} covers only IDs with {what}: they are not "
            f"{span_names(plain_first, plain_last)}, and KVM does not strip these bits",
            f"to filter the plain calls use base = {format_id(plain_first)}",
        )


CHECKS: tuple[Check, ...] = (
    crosses_boundary,
    twin_gap,
    hinted_or_malformed_id,
)
