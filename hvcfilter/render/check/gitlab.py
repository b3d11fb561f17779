"""``check --format gitlab``: a GitLab Code Quality report (a JSON array of issues).

Each finding is one issue with ``description``, ``check_name`` (the code
and rule name), a ``fingerprint`` that survives line moves
(:mod:`.fingerprint`), ``severity`` and ``location.path`` /
``location.lines.begin``. Severities map as: error (the kernel rejects the
table) -> ``critical``, warning -> ``major``, note -> ``minor``; an
unreadable file (HVF001) is a ``blocker``. GitLab matches ``location.path``
against the repository, so run ``check`` from the repository root with
relative paths.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from hvcfilter.diagnostics import Diagnostic, Severity
from hvcfilter.lint import LintReport
from hvcfilter.render.check.fingerprint import fingerprints
from hvcfilter.utf8 import json_text

__all__ = ["GITLAB_SEVERITY", "render_gitlab"]

GITLAB_SEVERITY = {Severity.ERROR: "critical", Severity.WARNING: "major", Severity.NOTE: "minor"}
_UNREADABLE = "HVF001"


def _issue(diag: Diagnostic, fingerprint: str) -> dict[str, Any]:
    loc = diag.location
    severity = "blocker" if diag.code == _UNREADABLE else GITLAB_SEVERITY[diag.severity]
    description = diag.message + (f"\nhint: {diag.hint}" if diag.hint else "")
    return {
        "type": "issue",
        "description": description,
        "check_name": f"{diag.code} {diag.name}",
        "categories": ["Bug Risk"] if diag.severity is not Severity.NOTE else ["Style"],
        "fingerprint": fingerprint,
        "severity": severity,
        "location": {
            "path": PurePath(loc.file).as_posix(),
            # GitLab needs a line; findings about the whole file sit on its first.
            "lines": {"begin": loc.line if loc.line is not None else 1},
        },
    }


def render_gitlab(report: LintReport, *, color: bool = False, strict: bool = False) -> str:
    """A GitLab Code Quality JSON array, one issue per finding.

    ``color`` and ``strict`` are ignored: GitLab shows every finding with its severity.
    """
    diagnostics = report.diagnostics
    issues = [_issue(d, f) for d, f in zip(diagnostics, fingerprints(diagnostics), strict=True)]
    return json_text(issues, indent=2) + "\n"
