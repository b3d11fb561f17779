"""Rendering for ``simulate``: rich tables for people, JSON and JSON Lines for tools.

``report_json`` is one document (``"format": "hvcfilter-simulate-v1"``)::

    {"format": "hvcfilter-simulate-v1",
     "table": {"kind": "spec"|"payload"|"none", "path": str|null, "label": str},
     "kernel": "6.12",
     "summary": {"calls": N, "outcomes": {"handled": a, "not_supported": b,
                 "forwarded": c, "rejected": d}, "skipped_lines": k,
                 "smc_without_id": s, "lines": L, "events": E, "ignored_events": I,
                 "differs_from_default": D, "baseline_changes": B|null},
     "functions": [{"function_id": "0x84000000", "name": "PSCI_VERSION_32"|null,
                    "conduit": "hvc"|"smc", "mode": "a64"|"a32"|"t32", "count": n,
                    "action": "handle"|"deny"|"fwd_to_user"|null, "outcome": ...,
                    "reason": str, "default_outcome": ..., "baseline_outcome": ...|null,
                    "record": index|null}],
     "unused_ranges": [{"record": i, "first": "0x...", "last": "0x...",
                        "action": ..., "origin": str}],
     "install": [{"record": i, "base": "0x...", "nr_functions": n, "action": ...,
                  "origin": str, "errno": null|"EEXIST"|...}],
     "baseline": null | {"table": {...}, "install": [...], "changes": [function rows]},
     "skipped": [{"source": str, "line": n, "reason": str, "text": str}],
     "notes": [str]}

``call_jsonl`` is one line per call, in trace order: the call (source, line,
ts, vcpu, x0, function_id, name, conduit, imm, mode), the result (action,
outcome, reason, service, exit, nr, flags, x0..x3 as the guest reads them or
null where unknown), ``default_outcome``, and with a baseline
``baseline_outcome`` and ``changed``. Only this module imports rich, lazily.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator
from typing import Any

from hvcfilter import smccc
from hvcfilter.replay import CallRecord, FunctionRow, InstallResult, ReplayReport
from hvcfilter.table.files import Table
from hvcfilter.trace import Progress, TraceTally
from hvcfilter.utf8 import json_text, visible

__all__ = [
    "SIMULATE_FORMAT_TAG",
    "call_jsonl",
    "notes",
    "progress",
    "report_json",
    "report_text",
]

SIMULATE_FORMAT_TAG = "hvcfilter-simulate-v1"
# Inputs at least this large get a progress bar (when stderr is a terminal).
_PROGRESS_MIN = 16 << 20


def notes(tally: TraceTally) -> list[str]:
    """Plain-language caveats about what the traces could not tell."""
    found = []
    if tally.smc_without_id:
        found.append(
            f"{tally.smc_without_id} SMC trap(s) (kvm_exit EC 0x17/0x13) were not replayed: "
            "ftrace does not record SMC function IDs"
        )
    if any(fmt == "ftrace" for fmt in tally.formats.values()) and tally.call_count:
        found.append(
            "ftrace does not show HVCs answered at EL2 (ARCH_WORKAROUND_1/2/3); HVC modes are "
            "inferred from the preceding kvm_exit (HVC32 gives a32, otherwise a64)"
        )
    if tally.skipped:
        found.append(f"{tally.skipped} line(s) could not be parsed and were skipped")
    return found


def _hex(value: int | None) -> str | None:
    return None if value is None else f"{value:#x}"


def _table(table: Table) -> dict[str, Any]:
    return {"kind": table.kind, "path": table.path, "label": table.label}


def _row(row: FunctionRow) -> dict[str, Any]:
    return {
        "function_id": smccc.format_id(row.function_id),
        "name": row.name,
        "conduit": row.conduit,
        "mode": row.mode,
        "count": row.count,
        "action": row.action,
        "outcome": row.outcome,
        "reason": row.reason,
        "default_outcome": row.default_outcome,
        "baseline_outcome": row.baseline_outcome,
        "record": row.record,
    }


def _install(rec: InstallResult) -> dict[str, Any]:
    return {
        "record": rec.index,
        "base": smccc.format_id(rec.base),
        "nr_functions": rec.nr_functions,
        "action": rec.action_label,
        "origin": rec.origin,
        "errno": rec.error,
    }


def report_json(report: ReplayReport) -> str:
    """The whole report as one JSON document (schema in the module docstring)."""
    summary = report.summary
    doc: dict[str, Any] = {
        "format": SIMULATE_FORMAT_TAG,
        "table": _table(report.table),
        "kernel": report.kernel,
        "summary": {
            "calls": summary.calls,
            "outcomes": summary.outcomes,
            "skipped_lines": summary.skipped_lines,
            "smc_without_id": summary.smc_without_id,
            "lines": summary.lines,
            "events": summary.events,
            "ignored_events": summary.ignored_events,
            "differs_from_default": summary.differs_from_default,
            "baseline_changes": summary.baseline_changes,
        },
        "functions": [_row(r) for r in report.functions],
        "unused_ranges": [
            {
                "record": r.index,
                "first": smccc.format_id(r.base),
                "last": smccc.format_id(r.last),
                "action": r.action_label,
                "origin": r.origin,
            }
            for r in report.unused_ranges
        ],
        "install": [_install(r) for r in report.install],
        "baseline": None
        if report.baseline is None
        else {
            "table": _table(report.baseline),
            "install": [_install(r) for r in report.baseline_install],
            "changes": [_row(r) for r in report.functions if r.baseline_changed],
        },
        "skipped": [
            {"source": b.source, "line": b.line, "reason": b.reason, "text": b.text}
            for b in report.tally.bad_lines
        ],
        "notes": notes(report.tally),
    }
    return json_text(doc, indent=2) + "\n"


def call_jsonl(record: CallRecord) -> str:
    """One call and its result as a JSON line (with the newline)."""
    event, result = record.event, record.result
    doc: dict[str, Any] = {
        "source": event.source,
        "line": event.line,
        "ts": event.ts,
        "vcpu": event.vcpu,
        "x0": f"{event.x0:#x}",
        "function_id": smccc.format_id(event.function_id),
        "name": smccc.catalogue().name_of(event.function_id),
        "conduit": event.conduit,
        "imm": event.imm,
        "mode": event.mode,
        "action": result.action.label if result.action is not None else None,
        "outcome": result.outcome,
        "reason": result.reason,
        "service": result.service,
        "exit": result.exit,
        "nr": _hex(result.nr),
        "flags": result.flags,
        "regs": [_hex(result.x0), _hex(result.x1), _hex(result.x2), _hex(result.x3)],
        "default_outcome": record.default.outcome,
    }
    if record.baseline is not None:
        doc["baseline_outcome"] = record.baseline.outcome
        doc["changed"] = record.baseline.outcome != result.outcome
    return json_text(doc, separators=(",", ":")) + "\n"


def _function_table(title: str, rows: list[FunctionRow], *, compare: str | None = None) -> Any:
    from rich.table import Table as RichTable

    table = RichTable(title=title, title_justify="left", show_lines=False)
    for name, justify in (
        ("function ID", "left"),
        ("name", "left"),
        ("conduit", "left"),
        ("calls", "right"),
        ("action", "left"),
        ("outcome", "left"),
    ):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    if compare:
        table.add_column(compare, no_wrap=True)
    table.add_column("reason", overflow="fold")
    for row in rows:
        conduit = row.conduit if row.mode == "a64" else f"{row.conduit} ({row.mode})"
        cells = [
            smccc.format_id(row.function_id),
            row.name or "",
            conduit,
            f"{row.count:,}",
            row.action or "-",
            row.outcome,
        ]
        if compare == "without filter":
            cells.append(row.default_outcome)
        elif compare:
            cells.append(row.baseline_outcome or "-")
        cells.append(row.reason)
        table.add_row(*cells)
    return table


def report_text(report: ReplayReport, *, width: int = 120, color: bool = False) -> str:
    """The report for people: tables per function, totals, unused ranges, differences."""
    from rich.console import Console
    from rich.table import Table as RichTable

    buffer = io.StringIO()
    console = Console(
        file=buffer, width=width, force_terminal=color, no_color=not color, highlight=False
    )
    summary = report.summary
    # Names come from the user's file system: neither rich markup ("x[red].toml") nor
    # an ESC sequence in one may style or drive the terminal.
    console.print(
        f"Filter: {visible(report.table.label)}; kernel profile {report.kernel}", markup=False
    )
    if report.baseline is not None:
        console.print(f"Baseline: {visible(report.baseline.label)}", markup=False)
    failed = [r for r in report.install if r.errno]
    for rec in failed:
        console.print(
            f"record {rec.index} ({rec.span} {rec.action_label}, "
            f"{visible(rec.origin)}) was refused by the kernel: {rec.error}",
            markup=False,
        )
    console.print()
    if report.functions:
        console.print(_function_table("Calls by function", list(report.functions)))
    else:
        console.print("No calls with a function ID in the trace(s).")
    totals = RichTable(title="Totals", title_justify="left")
    totals.add_column("outcome")
    totals.add_column("calls", justify="right")
    for outcome, count in summary.outcomes.items():
        totals.add_row(outcome, f"{count:,}")
    totals.add_row("all", f"{summary.calls:,}")
    console.print(totals)
    console.print(
        f"{summary.lines:,} lines: {summary.events:,} events, {summary.calls:,} calls, "
        f"{summary.smc_without_id:,} SMC traps without function ID, "
        f"{summary.ignored_events:,} other events ignored, "
        f"{summary.skipped_lines:,} unparseable lines skipped"
    )
    if report.table.kind != "none":
        if report.unused_ranges:
            console.print("\nRanges never hit:")
            for rec in report.unused_ranges:
                console.print(
                    f"  record {rec.index}: {rec.span} {rec.action_label} ({visible(rec.origin)})",
                    markup=False,
                )
        else:
            console.print("\nEvery installed range was hit.")
        differing = [r for r in report.functions if r.differs_from_default]
        if differing:
            console.print()
            console.print(
                _function_table(
                    f"Calls whose outcome differs without this filter "
                    f"({summary.differs_from_default:,})",
                    differing,
                    compare="without filter",
                )
            )
        else:
            console.print("No call's outcome differs from the kernel without this filter.")
    if report.baseline is not None:
        changed = [r for r in report.functions if r.baseline_changed]
        if changed:
            console.print()
            console.print(
                _function_table(
                    f"Calls whose outcome changes against the baseline "
                    f"({summary.baseline_changes:,})",
                    changed,
                    compare="baseline",
                )
            )
        else:
            console.print("No call's outcome changes against the baseline.")
    if report.tally.bad_lines:
        console.print("\nFirst unparseable lines:")
        for bad in report.tally.bad_lines:
            console.print(f"  {bad}", markup=False)
    for note in notes(report.tally):
        console.print(f"note: {visible(note)}", markup=False)
    return buffer.getvalue()


@contextlib.contextmanager
def progress(enabled: bool) -> Iterator[Progress | None]:
    """A byte-based progress bar on stderr for large inputs, or None when disabled.

    The bar starts only once an input of at least 16 MB (or of unknown size)
    is being read, so small runs print nothing.
    """
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    bar = Progress(
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(file=sys.stderr),
        transient=True,
    )
    state: dict[str, Any] = {"task": None, "total": None}

    def update(done: int, total: int | None) -> None:
        if state["task"] is None:
            if total is not None and total < _PROGRESS_MIN:
                return
            bar.start()
            state["task"] = bar.add_task("replay", total=total)
        elif state["total"] != total:
            bar.reset(state["task"], total=total)
        state["total"] = total
        bar.update(state["task"], completed=done)

    try:
        yield update
    finally:
        if state["task"] is not None:
            bar.stop()
