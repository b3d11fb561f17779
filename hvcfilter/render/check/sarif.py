"""``check --format sarif``: a SARIF 2.1.0 log, its rules built from the registry.

``ruleId`` is the code, ``level`` comes from the severity, and
``tool.driver.rules[]`` lists every documented code
(:func:`hvcfilter.rules.all_rules`), so code-scanning tools show each
rule's documentation.
"""

from __future__ import annotations

from pathlib import PurePath, PurePosixPath
from typing import Any
from urllib.parse import quote

from hvcfilter import __version__
from hvcfilter.diagnostics import Diagnostic, Severity
from hvcfilter.lint import LintReport
from hvcfilter.rules import Rule, all_rules
from hvcfilter.utf8 import json_text

__all__ = ["SARIF_SCHEMA_URI", "render_sarif"]

SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "note"}


def _artifact_uri(path: str) -> str:
    """A SARIF ``uri``: relative paths stay relative (for ``uriBaseId``-free uploads)."""
    pure = PurePath(path)
    posix = PurePosixPath(*pure.parts).as_posix() if pure.is_absolute() else pure.as_posix()
    # surrogateescape: a file name that is not UTF-8 is percent-encoded as its own bytes.
    uri = quote(posix, errors="surrogateescape")
    return "file://" + uri if pure.is_absolute() else uri


def _sarif_rule(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.doc},
        "help": {"text": rule.doc},
        "defaultConfiguration": {"level": _SARIF_LEVEL[rule.severity]},
    }


def _sarif_result(diag: Diagnostic, index: dict[str, int]) -> dict[str, Any]:
    loc = diag.location
    physical: dict[str, Any] = {"artifactLocation": {"uri": _artifact_uri(loc.file)}}
    if loc.line is not None:
        region: dict[str, int] = {"startLine": loc.line}
        if loc.column is not None:
            region["startColumn"] = loc.column
        physical["region"] = region
    elif loc.offset is not None:
        physical["region"] = {"byteOffset": loc.offset}
    location: dict[str, Any] = {"physicalLocation": physical}
    if loc.key:
        location["logicalLocations"] = [{"fullyQualifiedName": loc.key}]
    text = diag.message + (f" Hint: {diag.hint}" if diag.hint else "")
    result: dict[str, Any] = {
        "ruleId": diag.code,
        "level": _SARIF_LEVEL[diag.severity],
        "message": {"text": text},
        "locations": [location],
    }
    if diag.code in index:
        result["ruleIndex"] = index[diag.code]
    return result


def render_sarif(report: LintReport, *, color: bool = False, strict: bool = False) -> str:
    """A SARIF 2.1.0 log with one run; rules come from the registry.

    ``color`` and ``strict`` are ignored.
    """
    rules = all_rules()
    index = {rule.code: i for i, rule in enumerate(rules)}
    log = {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "hvcfilter",
                        "version": __version__,
                        "rules": [_sarif_rule(r) for r in rules],
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": [_sarif_result(d, index) for d in report.diagnostics],
            }
        ],
    }
    return json_text(log, indent=2) + "\n"
