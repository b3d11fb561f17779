"""Rendering ``learn --against``: the calls a spec would break and the ranges no guest used.

``against_json`` is one document (``"format": "hvcfilter-learn-against-v1"``)
with ``would_break``, ``unused`` and ``refused`` lists and the call count;
``against_text`` is plain lines for people. Both are pure.
"""

from __future__ import annotations

from typing import Any

from hvcfilter import smccc
from hvcfilter.learn.against import AgainstReport, BrokenCall
from hvcfilter.replay import InstallResult
from hvcfilter.utf8 import json_text

__all__ = ["AGAINST_FORMAT_TAG", "against_json", "against_text"]

AGAINST_FORMAT_TAG = "hvcfilter-learn-against-v1"


def _broken(call: BrokenCall) -> dict[str, Any]:
    return {
        "function_id": smccc.format_id(call.function_id),
        "name": call.name,
        "conduit": call.conduit,
        "count": call.count,
        "traced": call.traced,
        "under_spec": call.under_spec,
        "record": call.record,
        "origin": call.origin,
    }


def _range(rec: InstallResult) -> dict[str, Any]:
    return {
        "index": rec.index,
        "base": smccc.format_id(rec.base),
        "last": smccc.format_id(rec.last),
        "action": rec.action_label,
        "origin": rec.origin,
        "error": rec.error,
    }


def against_json(report: AgainstReport) -> str:
    """The report as one JSON document."""
    doc = {
        "format": AGAINST_FORMAT_TAG,
        "spec": report.spec,
        "kernel": report.kernel,
        "calls": report.calls,
        "would_break": [_broken(c) for c in report.would_break],
        "unused": [_range(r) for r in report.unused],
        "refused": [_range(r) for r in report.refused],
        "tightened_records": len(report.tightened.learned.records),
    }
    return json_text(doc, indent=2) + "\n"


def _span(rec: InstallResult) -> str:
    # "record N" as simulate says it: N counts the compiled records, not the spec's ranges.
    first, last = smccc.format_id(rec.base), smccc.format_id(rec.last)
    return f"record {rec.index}: {rec.action_label} {first}-{last} ({rec.origin})"


def _record(call: BrokenCall) -> str:
    if call.record is None:
        return ""
    return f" (record {call.record}" + (f": {call.origin})" if call.origin else ")")


def against_text(report: AgainstReport, written: str | None = None) -> str:
    """The report as lines for people; ``written`` names where the tightened spec went."""
    lines = [f"{report.spec} against {report.calls:,} traced calls (kernel {report.kernel}):"]
    if report.would_break:
        lines.append(f"would break {len(report.would_break)} call(s) guests make:")
        lines += [
            f"  {smccc.format_id(c.function_id)} {c.name or ''} ({c.conduit}, {c.count:,}x): "
            + ("got forwarded" if c.traced == "forwarded" else f"kernel answered ({c.traced})")
            + f", would get {c.under_spec}"
            + _record(c)
            for c in report.would_break
        ]
        if any(c.traced != "forwarded" for c in report.would_break):
            # Reference 6.1: a DENY and a HANDLE cannot be told apart in a trace.
            lines.append(
                "  (a trace shows only whether a call reached the VMM; what the kernel answered "
                "is its answer without a filter, so a call a traced table already denied reads "
                "the same)"
            )
    else:
        lines.append("breaks no traced call")
    if report.unused:
        lines.append(f"{len(report.unused)} range(s) no guest used (privilege to take away):")
        lines += [f"  {_span(r)}" for r in report.unused]
    if report.refused:
        lines.append(f"the kernel refuses {len(report.refused)} record(s):")
        lines += [f"  {_span(r)}: {r.error}" for r in report.refused]
    where = "standard output" if written == "-" else written
    lines.append(
        f"tightened: {len(report.tightened.learned.records)} record(s), "
        + (f"written to {where}" if where else "write it with -o FILE")
    )
    return "\n".join(lines) + "\n"
