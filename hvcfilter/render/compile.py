"""Rendering for ``compile --dry-run`` and ``diff``: plain text for people, JSON for tools.

Text output names every range with the catalogue calls it covers, the way
the issue asks for it: ``0x84000003 PSCI_CPU_ON_32: handle -> fwd_to_user``.
JSON is plain ``json.dumps`` with a format tag, no colour.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hvcfilter import smccc
from hvcfilter.diagnostics import Diagnostic
from hvcfilter.lint import FileReport, LintReport
from hvcfilter.model import Action
from hvcfilter.render.check.text import render_text
from hvcfilter.table.dryrun import DryRunResult
from hvcfilter.table.effective import Change, covered_calls
from hvcfilter.table.files import DiffResult
from hvcfilter.utf8 import json_text

__all__ = [
    "DIFF_FORMAT_TAG",
    "DRY_RUN_FORMAT_TAG",
    "diagnostics_text",
    "diff_json",
    "diff_text",
    "dry_run_json",
    "dry_run_text",
    "range_label",
]

DIFF_FORMAT_TAG = "hvcfilter-diff-v1"
DRY_RUN_FORMAT_TAG = "hvcfilter-dry-run-v1"
_SHOWN_CALLS = 3


def range_label(first: int, last: int) -> str:
    """An ID range with the well-known calls in it.

    ``0x84000003 PSCI_CPU_ON_32`` for one ID, ``0x84000002-0x84000003
    (PSCI_CPU_OFF_32, PSCI_CPU_ON_32)`` for a range, and a count past three.
    """
    names = covered_calls(first, last)
    shown = str(smccc.IdRange(first, last))
    if first == last:
        return f"{shown} {names[0]}" if names else shown
    if not names:
        return shown
    if len(names) <= _SHOWN_CALLS:
        return f"{shown} ({', '.join(names)})"
    return f"{shown} ({', '.join(names[:_SHOWN_CALLS])}, ... {len(names)} well-known calls)"


def _change_line(change: Change) -> str:
    return (
        f"{range_label(change.first, change.last)}: {change.before.label} -> {change.after.label}"
    )


def diff_text(result: DiffResult) -> str:
    """``--- A`` / ``+++ B`` headers, one line per changed range, and a summary."""
    assert result.a.table is not None and result.b.table is not None
    a, b = result.a.table, result.b.table
    lines = [
        f"--- {a.path} ({a.kind}, {a.digest})",
        f"+++ {b.path} ({b.kind}, {b.digest})",
    ]
    changes = result.changes or ()
    lines += [_change_line(change) for change in changes]
    if not changes:
        lines.append("equivalent: every function ID has the same effective action")
    else:
        ids = sum(change.count for change in changes)
        lines.append(
            f"{len(changes)} range{'s' * (len(changes) != 1)} ({ids:,} function "
            f"ID{'s' * (ids != 1)}) "
            + ("changes its" if len(changes) == 1 else "change their")
            + " effective action"
        )
    return "\n".join(lines) + "\n"


def diff_json(result: DiffResult) -> str:
    """The comparison as a JSON document (``hvcfilter-diff-v1``)."""
    assert result.a.table is not None and result.b.table is not None
    sides = [
        {"path": t.path, "kind": t.kind, "records": len(t.records), "digest": t.digest}
        for t in (result.a.table, result.b.table)
    ]
    document: dict[str, Any] = {
        "format": DIFF_FORMAT_TAG,
        "equivalent": result.equivalent,
        "a": sides[0],
        "b": sides[1],
        "changes": [
            {
                "first": change.first,
                "last": change.last,
                "count": change.count,
                "range": str(change),
                "from": change.before.label,
                "to": change.after.label,
                "calls": covered_calls(change.first, change.last),
            }
            for change in result.changes or ()
        ],
    }
    return json_text(document, indent=2) + "\n"


def dry_run_text(result: DryRunResult) -> str:
    """One line per ``KVM_SET_DEVICE_ATTR`` call with its result, then a verdict."""
    table = result.table
    lines = [
        f"dry run: {Path(table.spec_path).name} on kernel {result.profile.name} "
        f"({result.profile.title}), {len(result.steps)} "
        f"record{'s' * (len(result.steps) != 1)} in install order"
    ]
    width = max((len(str(step.compiled.record)) for step in result.steps), default=0)
    for step in result.steps:
        rec = step.compiled.record
        sources = "; ".join(s.label for s in step.compiled.sources)
        lines.append(
            f"  [{step.index}] {rec!s:<{width}}  {Action(rec.action).label:<11}  "
            f"{step.errno_name:<6}  {sources}"
        )
    failed = [step for step in result.steps if step.errno]
    if result.probe_errno:
        lines.append(
            f"FAILED: kernel {result.profile.name} has no SMCCC filter (it arrived in Linux "
            f"6.4): the KVM_HAS_DEVICE_ATTR probe fails with {result.probe_errno_name} and "
            "so does every record; the guest gets the kernel's default handling"
        )
    elif not failed:
        lines.append(f"ok: all {len(result.steps)} records would be accepted")
    else:
        lines.append(
            f"FAILED: {len(failed)} of {len(result.steps)} records would be refused; "
            "the VM would keep a partial table, so a VMM must discard it"
        )
        if failed[0] is not result.steps[-1]:
            # Each SET is answered on its own (reference 2.1), which the list above shows; an
            # installer that stops at the first error (compile's C and Rust do) never sends
            # the rest.
            lines.append(
                f"  (the kernel answers each record on its own; the C and Rust installers "
                f"compile writes stop at record {failed[0].index} and send none after it)"
            )
    return "\n".join(lines) + "\n"


def dry_run_json(result: DryRunResult) -> str:
    """The dry run as a JSON document (``hvcfilter-dry-run-v1``)."""
    document = {
        "format": DRY_RUN_FORMAT_TAG,
        "spec": Path(result.table.spec_path).name,
        "kernel": result.profile.name,
        "ok": result.ok,
        "filter_available": result.profile.has_filter,
        "probe_errno": result.probe_errno,
        "probe_result": result.probe_errno_name,
        "steps": [
            {
                "index": step.index,
                "base": step.compiled.record.base,
                "nr_functions": step.compiled.record.nr_functions,
                "action": Action(step.compiled.record.action).label,
                "errno": step.errno,
                "result": step.errno_name,
                "sources": [s.label for s in step.compiled.sources],
            }
            for step in result.steps
        ],
    }
    return json_text(document, indent=2) + "\n"


def diagnostics_text(diagnostics: Iterable[Diagnostic]) -> str:
    """Diagnostics exactly as ``hvcfilter check`` prints them, grouped by file, with a summary."""
    by_file: dict[str, list[Diagnostic]] = {}
    for diag in diagnostics:
        by_file.setdefault(diag.location.file, []).append(diag)
    report = LintReport(
        tuple(FileReport(path, tuple(sorted(diags, key=_order))) for path, diags in by_file.items())
    )
    return render_text(report)


def _order(diag: Diagnostic) -> tuple[int, int, int, str]:
    loc = diag.location
    return (loc.line or 0, loc.column or 0, loc.offset or 0, diag.code)
