"""``check --format text``: one line per finding with an indented hint, then a summary."""

from __future__ import annotations

from hvcfilter.diagnostics import Diagnostic, Location, Severity
from hvcfilter.lint import LintReport
from hvcfilter.render.styled import SEVERITY_STYLE, Segments, plural, styled

__all__ = ["render_text", "summary_line"]


def _where(loc: Location) -> str:
    text = str(loc)
    if loc.line is None and loc.key:
        text += f" ({loc.key})"
    return text


def _diagnostic_lines(diag: Diagnostic) -> list[Segments]:
    lines: list[Segments] = [
        [
            (_where(diag.location), "bold"),
            (": ", None),
            (diag.severity.label, SEVERITY_STYLE[diag.severity]),
            (" ", None),
            (diag.code, "bold"),
            (" ", None),
            (diag.name, "dim"),
            (": ", None),
            (diag.message, None),
        ]
    ]
    if diag.hint:
        lines.append([("    hint: ", "dim"), (diag.hint, "dim")])
    return lines


def summary_line(report: LintReport) -> Segments:
    """``checked 2 files: 1 error, 0 warnings, 0 notes``."""
    errors = report.count(Severity.ERROR)
    warnings = report.count(Severity.WARNING)
    notes = report.count(Severity.NOTE)
    unreadable = sum(1 for f in report.files if f.unreadable)
    head = f"checked {plural(len(report.files), 'file')}: "
    if not (errors or warnings or notes):
        return [(head, None), ("no problems found", "bold green")]
    parts: Segments = [(head, None)]
    counted = [
        (plural(errors, "error"), "bold red" if errors else None),
        (plural(warnings, "warning"), "bold yellow" if warnings else None),
        (plural(notes, "note"), "bold cyan" if notes else None),
    ]
    for i, (text, style) in enumerate(counted):
        parts.append((text, style))
        if i < len(counted) - 1:
            parts.append((", ", None))
    if unreadable:
        parts.append((f" ({plural(unreadable, 'file')} unreadable)", "bold red"))
    return parts


def render_text(report: LintReport, *, color: bool = False, strict: bool = False) -> str:
    """Human-readable findings, one per line with an indented hint, then a summary.

    ``strict`` is ignored: the exit code says whether warnings fail.
    """
    lines: list[Segments] = []
    for file in report.files:
        for diag in file.diagnostics:
            lines.extend(_diagnostic_lines(diag))
    lines.append(summary_line(report))
    return styled(lines, color=color)
