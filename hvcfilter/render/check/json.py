"""``check --format json``: the stable JSON document, and its schema.

Version 1 is::

    {
      "format": "hvcfilter-check-v1",
      "version": 1,
      "tool": {"name": "hvcfilter", "version": "0.1.0"},
      "files": [
        {"path": "spec.toml", "unreadable": false,
         "diagnostics": [
           {"code": "HVF201", "name": "overlapping-ranges", "severity": "error",
            "message": "...", "hint": "..." | null,
            "location": {"file": "spec.toml", "line": 12 | null, "column": 1 | null,
                         "key": "range[3].base" | null, "offset": null}}]}],
      "summary": {"files": 1, "errors": 1, "warnings": 0, "notes": 0, "unreadable": 0}
    }

Files appear in the order given, diagnostics sorted by line, column and code.
Fields are only ever added, never renamed or removed, within a version;
:data:`JSON_SCHEMA` is the schema, and a test validates real output against it.
"""

from __future__ import annotations

from typing import Any

from hvcfilter import __version__
from hvcfilter.diagnostics import Diagnostic, Location, Severity
from hvcfilter.lint import LintReport
from hvcfilter.utf8 import json_text

__all__ = ["CHECK_FORMAT_TAG", "JSON_SCHEMA", "JSON_VERSION", "location_json", "render_json"]

JSON_VERSION = 1
# Every JSON document hvcfilter prints names its kind and version in "format",
# like hvcfilter-simulate-v1; "version" stays for the readers of version 1.
CHECK_FORMAT_TAG = "hvcfilter-check-v1"


def location_json(loc: Location) -> dict[str, Any]:
    """A location as JSON: file, line, column, key, offset (null where unknown)."""
    return {
        "file": loc.file,
        "line": loc.line,
        "column": loc.column,
        "key": loc.key,
        "offset": loc.offset,
    }


def _diagnostic_json(diag: Diagnostic) -> dict[str, Any]:
    return {
        "code": diag.code,
        "name": diag.name,
        "severity": diag.severity.label,
        "message": diag.message,
        "hint": diag.hint,
        "location": location_json(diag.location),
    }


def render_json(report: LintReport, *, color: bool = False, strict: bool = False) -> str:
    """The stable JSON document described by :data:`JSON_SCHEMA`.

    ``color`` and ``strict`` are ignored.
    """
    document = {
        "format": CHECK_FORMAT_TAG,
        "version": JSON_VERSION,
        "tool": {"name": "hvcfilter", "version": __version__},
        "files": [
            {
                "path": f.path,
                "unreadable": f.unreadable,
                "diagnostics": [_diagnostic_json(d) for d in f.diagnostics],
            }
            for f in report.files
        ],
        "summary": {
            "files": len(report.files),
            "errors": report.count(Severity.ERROR),
            "warnings": report.count(Severity.WARNING),
            "notes": report.count(Severity.NOTE),
            "unreadable": sum(1 for f in report.files if f.unreadable),
        },
    }
    return json_text(document, indent=2) + "\n"


_NULLABLE_INT = {"type": ["integer", "null"]}
_NULLABLE_STR = {"type": ["string", "null"]}

JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "hvcfilter check --format json, version 1",
    "type": "object",
    "required": ["format", "version", "tool", "files", "summary"],
    "additionalProperties": False,
    "properties": {
        "format": {"const": "hvcfilter-check-v1"},
        "version": {"const": JSON_VERSION},
        "tool": {
            "type": "object",
            "required": ["name", "version"],
            "properties": {"name": {"const": "hvcfilter"}, "version": {"type": "string"}},
        },
        "files": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["path", "unreadable", "diagnostics"],
                "additionalProperties": False,
                "properties": {
                    "path": {"type": "string"},
                    "unreadable": {"type": "boolean"},
                    "diagnostics": {"type": "array", "items": {"$ref": "#/$defs/diagnostic"}},
                },
            },
        },
        "summary": {
            "type": "object",
            "required": ["files", "errors", "warnings", "notes", "unreadable"],
            "additionalProperties": False,
            "properties": {
                key: {"type": "integer", "minimum": 0}
                for key in ("files", "errors", "warnings", "notes", "unreadable")
            },
        },
    },
    "$defs": {
        "diagnostic": {
            "type": "object",
            "required": ["code", "name", "severity", "message", "hint", "location"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "string", "pattern": "^HVF[0-9]{3}$"},
                "name": {"type": "string", "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$"},
                "severity": {"enum": ["error", "warning", "note"]},
                "message": {"type": "string"},
                "hint": _NULLABLE_STR,
                "location": {
                    "type": "object",
                    "required": ["file", "line", "column", "key", "offset"],
                    "additionalProperties": False,
                    "properties": {
                        "file": {"type": "string"},
                        "line": _NULLABLE_INT,
                        "column": _NULLABLE_INT,
                        "key": _NULLABLE_STR,
                        "offset": _NULLABLE_INT,
                    },
                },
            },
        }
    },
}
