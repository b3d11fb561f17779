"""Render lint reports (``check``) and explanations (``explain``) as text, JSON, SARIF or GitHub.

:data:`RENDERERS` maps each :class:`Format` to a pure function
``(report, *, color=False) -> str``. Only the text renderer uses rich, imported
lazily and only when colour is on; without colour it writes the same
characters itself, which keeps pipes and CI fast.

JSON output (``--format json``) is stable; :data:`JSON_SCHEMA` is its
schema, and a test validates real output against it. Version 1 is::

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
Fields are only ever added, never renamed or removed, within a version.
SARIF output is SARIF 2.1.0 with ``tool.driver.rules[]`` built from the rule
registry (:func:`hvcfilter.rules.all_rules`); ``github`` prints workflow
commands (``::error file=...,line=...,col=...,title=...::message``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from enum import StrEnum
from pathlib import PurePath, PurePosixPath
from typing import Any, Protocol, assert_never
from urllib.parse import quote

from hvcfilter import __version__, smccc
from hvcfilter.diagnostics import Diagnostic, Location, Severity
from hvcfilter.explain import FunctionExplanation, IdExplanation, RuleExplanation
from hvcfilter.lint import LintReport
from hvcfilter.rules import Rule, all_rules
from hvcfilter.rules.wording import record_label

__all__ = [
    "CHECK_FORMAT_TAG",
    "EXPLAIN_FORMAT_TAG",
    "JSON_SCHEMA",
    "JSON_VERSION",
    "RENDERERS",
    "SARIF_SCHEMA_URI",
    "ExplainFormat",
    "Format",
    "Renderer",
    "render_explanation",
    "render_github",
    "render_json",
    "render_sarif",
    "render_text",
    "renderer",
]

JSON_VERSION = 1
# Every JSON document hvcfilter prints names its kind and version in "format",
# like hvcfilter-simulate-v1; "version" stays for the readers of version 1.
CHECK_FORMAT_TAG = "hvcfilter-check-v1"
EXPLAIN_FORMAT_TAG = "hvcfilter-explain-v1"
SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"


class Format(StrEnum):
    """Output formats of ``hvcfilter check``."""

    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"
    GITHUB = "github"


class ExplainFormat(StrEnum):
    """Output formats of ``hvcfilter explain``."""

    TEXT = "text"
    JSON = "json"


class Renderer(Protocol):
    """A lint-report renderer: pure, returns the whole output."""

    def __call__(self, report: LintReport, *, color: bool = False) -> str: ...


# A line of styled text: (text, rich style or None) segments.
_Segments = list[tuple[str, str | None]]
_SEVERITY_STYLE = {
    Severity.ERROR: "bold red",
    Severity.WARNING: "bold yellow",
    Severity.NOTE: "bold cyan",
}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _where(loc: Location) -> str:
    text = str(loc)
    if loc.line is None and loc.key:
        text += f" ({loc.key})"
    return text


def _diagnostic_lines(diag: Diagnostic) -> list[_Segments]:
    lines: list[_Segments] = [
        [
            (_where(diag.location), "bold"),
            (": ", None),
            (diag.severity.label, _SEVERITY_STYLE[diag.severity]),
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


def _summary_line(report: LintReport) -> _Segments:
    errors = report.count(Severity.ERROR)
    warnings = report.count(Severity.WARNING)
    notes = report.count(Severity.NOTE)
    unreadable = sum(1 for f in report.files if f.unreadable)
    head = f"checked {_plural(len(report.files), 'file')}: "
    if not (errors or warnings or notes):
        return [(head, None), ("no problems found", "bold green")]
    parts: _Segments = [(head, None)]
    counted = [
        (_plural(errors, "error"), "bold red" if errors else None),
        (_plural(warnings, "warning"), "bold yellow" if warnings else None),
        (_plural(notes, "note"), "bold cyan" if notes else None),
    ]
    for i, (text, style) in enumerate(counted):
        parts.append((text, style))
        if i < len(counted) - 1:
            parts.append((", ", None))
    if unreadable:
        parts.append((f" ({_plural(unreadable, 'file')} unreadable)", "bold red"))
    return parts


def _emit(lines: Sequence[_Segments], *, color: bool) -> str:
    """Join styled lines: plain text, or ANSI colour through rich."""
    if not color:
        return "".join("".join(text for text, _ in line) + "\n" for line in lines)
    from rich.console import Console  # only coloured text output pays for rich
    from rich.text import Text

    buffer = io.StringIO()
    console = Console(
        file=buffer,
        force_terminal=True,
        color_system="standard",
        highlight=False,
        emoji=False,
        width=100_000,
    )
    for line in lines:
        text = Text()
        for part, style in line:
            text.append(part, style=style or "")
        console.print(text, soft_wrap=True)
    return buffer.getvalue()


def render_text(report: LintReport, *, color: bool = False) -> str:
    """Human-readable findings, one per line with an indented hint, then a summary."""
    lines: list[_Segments] = []
    for file in report.files:
        for diag in file.diagnostics:
            lines.extend(_diagnostic_lines(diag))
    lines.append(_summary_line(report))
    return _emit(lines, color=color)


def _location_json(loc: Location) -> dict[str, Any]:
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
        "location": _location_json(diag.location),
    }


def render_json(report: LintReport, *, color: bool = False) -> str:
    """The stable JSON document described by :data:`JSON_SCHEMA`; ``color`` is ignored."""
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
    return json.dumps(document, indent=2) + "\n"


_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "note"}


def _artifact_uri(path: str) -> str:
    """A SARIF ``uri``: relative paths stay relative (for ``uriBaseId``-free uploads)."""
    pure = PurePath(path)
    if pure.is_absolute():
        return "file://" + quote(PurePosixPath(*pure.parts).as_posix())
    return quote(pure.as_posix())


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


def render_sarif(report: LintReport, *, color: bool = False) -> str:
    """A SARIF 2.1.0 log with one run; rules come from the registry. ``color`` is ignored."""
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
    return json.dumps(log, indent=2) + "\n"


_GITHUB_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(report: LintReport, *, color: bool = False) -> str:
    """GitHub Actions workflow commands, one annotation per finding; ``color`` is ignored."""
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
    out.append("".join(text for text, _ in _summary_line(report)))
    return "\n".join(out) + "\n"


RENDERERS: dict[Format, Renderer] = {
    Format.TEXT: render_text,
    Format.JSON: render_json,
    Format.SARIF: render_sarif,
    Format.GITHUB: render_github,
}


def renderer(fmt: Format) -> Renderer:
    """The renderer of an output format."""
    match fmt:
        case Format.TEXT:
            return render_text
        case Format.JSON:
            return render_json
        case Format.SARIF:
            return render_sarif
        case Format.GITHUB:
            return render_github
        case _:
            assert_never(fmt)


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


# --------------------------------------------------------------------------- explain


def _rule_lines(rule: Rule) -> list[_Segments]:
    lines: list[_Segments] = [
        [
            (rule.code, "bold"),
            (" ", None),
            (rule.name, "bold"),
            (" (", None),
            (rule.severity.label, _SEVERITY_STYLE[rule.severity]),
            (")", None),
        ],
        [],
    ]
    lines.extend([(line, None)] for line in rule.doc.splitlines())
    return lines


def _field(label: str, value: str) -> _Segments:
    return [(f"  {label:<14} ", "dim"), (value, None)]


def _id_lines(item: IdExplanation) -> list[_Segments]:
    d = item.decoded
    cat = smccc.catalogue()
    head: _Segments = [(smccc.format_id(item.fid), "bold")]
    if item.name:
        head += [("  ", None), (item.name, "bold")]
    lines: list[_Segments] = [head]
    lines.append(_field("call type", d.call_type.value))
    lines.append(_field("convention", d.convention.value.upper()))
    lines.append(_field("owner", f"{d.owner} ({d.owner_display})"))
    lines.append(_field("function", f"{d.function_number:#06x}"))
    lines.append(_field("SVE hint", "set (bit 16)" if d.sve_hint else "clear"))
    if d.reserved_bits:
        lines.append(_field("reserved bits", f"{d.reserved_bits:#x} (bits 23:17)"))
    if item.family:
        lines.append(_field("family", item.family))
    if item.name:
        origin = f" ({item.origin})" if item.origin else ""
        lines.append(_field("catalogue", item.name + origin))
    for twin in item.twins:
        lines.append(_field("twin", cat.label(twin.function_id)))
    for problem in item.problems:
        lines.append(_field("problem", problem))
    for note in item.notes:
        lines.append(_field("note", note))
    lines.append(_field(f"kernel {item.profile.name}", item.kernel_default))
    if item.spec_path is not None:
        if not item.covering:
            lines.append(_field("spec", f"{item.spec_path}: no range covers it"))
        for cover in item.covering:
            state = (
                "installed" if cover.installed else "rejected by the kernel (overlap or reserved)"
            )
            lines.append(
                _field("range", f"{record_label(cover.record)} at {cover.location}: {state}")
            )
        if item.outcome:
            lines.append(_field("outcome", item.outcome))
    return lines


def _explanation_json(expl: RuleExplanation | FunctionExplanation) -> dict[str, Any]:
    if isinstance(expl, RuleExplanation):
        rule = expl.rule
        return {
            "format": EXPLAIN_FORMAT_TAG,
            "version": JSON_VERSION,
            "kind": "rule",
            "code": rule.code,
            "name": rule.name,
            "severity": rule.severity.label,
            "summary": rule.summary,
            "doc": rule.doc,
        }
    functions = []
    for item in expl.functions:
        d = item.decoded
        spec = None
        if item.spec_path is not None:
            spec = {
                "path": item.spec_path,
                "covering": [
                    {
                        "entry": c.record.entry,
                        "base": smccc.format_id(c.record.base),
                        "last": smccc.format_id(c.record.end32),
                        "action": c.record.action.label,
                        "installed": c.installed,
                        "location": _location_json(c.location),
                    }
                    for c in item.covering
                ],
                "outcome": item.outcome,
            }
        functions.append(
            {
                "id": smccc.format_id(item.fid),
                "value": item.fid,
                "name": item.name,
                "origin": item.origin,
                "call_type": d.call_type.value,
                "convention": d.convention.value,
                "owner": {"number": d.owner, "name": d.owner_name, "title": d.owner_display},
                "function_number": d.function_number,
                "sve_hint": d.sve_hint,
                "reserved_bits": d.reserved_bits,
                "family": item.family,
                "twins": [
                    {"id": smccc.format_id(t.function_id), "name": t.name} for t in item.twins
                ],
                "problems": list(item.problems),
                "notes": list(item.notes),
                "kernel": {
                    "profile": item.profile.name,
                    "reserved": (
                        None
                        if item.reserved is None
                        else {
                            "first": smccc.format_id(item.reserved[0]),
                            "last": smccc.format_id(item.reserved[1]),
                        }
                    ),
                    "default": item.kernel_default,
                },
                "spec": spec,
            }
        )
    return {
        "format": EXPLAIN_FORMAT_TAG,
        "version": JSON_VERSION,
        "kind": "function",
        "query": expl.query,
        "functions": functions,
    }


def render_explanation(
    expl: RuleExplanation | FunctionExplanation, fmt: ExplainFormat, *, color: bool = False
) -> str:
    """``hvcfilter explain`` output: a rule's documentation or the decoded function IDs."""
    match fmt:
        case ExplainFormat.JSON:
            return json.dumps(_explanation_json(expl), indent=2) + "\n"
        case ExplainFormat.TEXT:
            if isinstance(expl, RuleExplanation):
                return _emit(_rule_lines(expl.rule), color=color)
            lines: list[_Segments] = []
            for i, item in enumerate(expl.functions):
                if i:
                    lines.append([])
                lines.extend(_id_lines(item))
            return _emit(lines, color=color)
        case _:
            assert_never(fmt)
