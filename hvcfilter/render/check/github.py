"""``check --format github``: GitHub Actions workflow commands, one annotation per finding.

``::error file=...,line=...,col=...,title=HVF201 overlapping-ranges::message``,
with GitHub's escaping of data and properties, then the summary line.
"""

from __future__ import annotations

from hvcfilter.diagnostics import Severity
from hvcfilter.lint import LintReport
from hvcfilter.render.check.text import summary_line

__all__ = ["render_github"]

_GITHUB_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(report: LintReport, *, color: bool = False, strict: bool = False) -> str:
    """GitHub Actions workflow commands, one annotation per finding.

    ``color`` and ``strict`` are ignored: the job fails by exit code.
    """
    out = []
    for diag in report.diagnostics:
        loc = diag.location
        props = [f"file={_escape_property(loc.file)}"]
        if loc.line is not None:
            props.append(f"line={loc.line}")
            if loc.column is not None:
                props.append(f"col={loc.column}")
        props.append(f"title={_escape_property(f'{diag.code} {diag.name}')}")
        message = diag.message + (f"\nhint: {diag.hint}" if diag.hint else "")
        out.append(f"::{_GITHUB_COMMAND[diag.severity]} {','.join(props)}::{_escape_data(message)}")
    out.append("".join(text for text, _ in summary_line(report)))
    return "\n".join(out) + "\n"
