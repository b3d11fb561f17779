"""Rules about the ID space KVM keeps for itself: reserved ranges and explicit ``handle`` ranges.

HVF202 is an error: any range over the reserved Arm Architecture ranges
gets EEXIST. HVF204 is a warning: an explicit ``handle`` range changes
nothing but blocks later ranges.
"""

from __future__ import annotations

from collections.abc import Iterator

from hvcfilter.diagnostics import Diagnostic, Severity
from hvcfilter.model import Action, FilterRange, FilterSpec
from hvcfilter.rules.analysis import analyse
from hvcfilter.rules.registry import Check, check
from hvcfilter.rules.wording import entry_label, record_label, reserved_text, span_names
from hvcfilter.smccc import format_id

__all__ = ["CHECKS", "explicit_handle", "reserved_range"]


@check("HVF202", "reserved-range", Severity.ERROR)
def reserved_range(spec: FilterSpec) -> Iterator[Diagnostic]:
    """A range touches an Arm Architecture range that KVM reserves: EEXIST.

    KVM holds ``0x80000000-0x8000FFFF`` (SMC32) and ``0xC0000000-0xC000FFFF``
    (SMC64) as fixed ``handle`` ranges so that userspace cannot misreport the
    Spectre mitigations (SMCCC_ARCH_WORKAROUND_*) to the guest. Any range that
    touches them fails with EEXIST, whatever its action, even ``handle``; so
    does forwarding SMCCC_ARCH_SOC_ID (0x80000002), which KVM answers with
    NOT_SUPPORTED. Arch IDs with bits 23:16 set (``0x80010000`` and up) and
    yielding arch IDs (``0x00000000-0x0000FFFF``) are not reserved.

    Fail: ``base = 0x80000000, nr_functions = 0x10, action = "deny"``, or
    ``function = "SMCCC_ARCH_SOC_ID", action = "fwd_to_user"``.
    Pass: ``base = 0x80010000, nr_functions = 0x3FFF0000, action = "deny"``.
    """
    a = analyse(spec)
    profile = spec.profile
    for i, (first, last) in a.reserved_hits:
        rec = a.valid[i]
        lo, hi = max(rec.base, first), min(rec.last, last)
        hint = (
            "KVM always handles these IDs itself; start the range after the reserved one "
            f"({format_id(last + 1)}) or leave the Arm Architecture calls out"
        )
        if rec.action is Action.FWD_TO_USER and lo <= 0x8000_0002 <= hi:
            hint = (
                "SMCCC_ARCH_SOC_ID (0x80000002) is reserved: it cannot be forwarded or "
                "denied, and KVM answers it with NOT_SUPPORTED"
            )
        yield reserved_range.finding(
            spec,
            rec.entry,
            f"{record_label(rec)} touches the KVM-reserved {reserved_text(first, last)} at "
            f"{span_names(lo, hi)}: kernel {profile.name} rejects it with EEXIST",
            hint,
        )


@check("HVF204", "explicit-handle", Severity.WARNING)
def explicit_handle(spec: FilterSpec) -> Iterator[Diagnostic]:
    """An explicit ``handle`` range: it changes nothing, but blocks later ranges.

    ``handle`` means "no opinion": KVM already handles every ID that no range
    covers. An explicit handle range still occupies its IDs, so a later
    ``deny`` or ``fwd_to_user`` range over them fails with EEXIST; the kernel
    documentation advises against writing them. Nor can ``handle`` enable a
    call KVM does not implement: the guest still gets NOT_SUPPORTED (-1).

    Fail: ``owner = "vendor-hyp", action = "handle"``.
    Pass: leave the IDs out of the table.
    """
    a = analyse(spec)
    by_entry: dict[int, list[FilterRange]] = {}
    for rec in a.valid:
        if rec.action is Action.HANDLE:
            by_entry.setdefault(rec.entry, []).append(rec)
    for entry, records in sorted(by_entry.items()):
        implemented = any(a.kernel_ids_in(r.base, r.last) for r in records)
        extra = (
            ""
            if implemented
            else "; KVM implements none of its IDs, so the guest gets NOT_SUPPORTED (-1) "
            "there whatever the table says"
        )
        yield explicit_handle.finding(
            spec,
            entry,
            f"{entry_label(records)} is an explicit handle range: KVM handles unfiltered IDs "
            "anyway, so it changes nothing, but it occupies its IDs and any deny or "
            f"fwd_to_user range over them fails with EEXIST{extra}",
            "remove it; a table needs only its deny and fwd_to_user ranges",
        )


CHECKS: tuple[Check, ...] = (
    reserved_range,
    explicit_handle,
)
