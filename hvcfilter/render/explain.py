"""Rendering ``hvcfilter explain``: a rule's documentation, or each decoded function ID.

Text for people (through :mod:`hvcfilter.render.styled`), or a JSON
document tagged ``hvcfilter-explain-v1``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, assert_never

from hvcfilter import smccc
from hvcfilter.explain import FunctionExplanation, IdExplanation, RuleExplanation
from hvcfilter.render.check.json import JSON_VERSION, location_json
from hvcfilter.render.rules_reference import rule_doc_link
from hvcfilter.render.styled import SEVERITY_STYLE, Segments, styled
from hvcfilter.rules import Rule
from hvcfilter.rules.wording import record_label
from hvcfilter.utf8 import json_text

__all__ = ["EXPLAIN_FORMAT_TAG", "ExplainFormat", "render_explanation"]

EXPLAIN_FORMAT_TAG = "hvcfilter-explain-v1"


class ExplainFormat(StrEnum):
    """Output formats of ``hvcfilter explain``."""

    TEXT = "text"
    JSON = "json"


def _rule_lines(rule: Rule) -> list[Segments]:
    lines: list[Segments] = [
        [
            (rule.code, "bold"),
            (" ", None),
            (rule.name, "bold"),
            (" (", None),
            (rule.severity.label, SEVERITY_STYLE[rule.severity]),
            (")", None),
        ],
        [],
    ]
    lines.extend([(line, None)] for line in rule.doc.splitlines())
    lines += [[], [("Docs: ", "dim"), (rule_doc_link(rule.code), None)]]
    return lines


def _field(label: str, value: str) -> Segments:
    return [(f"  {label:<14} ", "dim"), (value, None)]


def _id_lines(item: IdExplanation) -> list[Segments]:
    d = item.decoded
    cat = smccc.catalogue()
    head: Segments = [(smccc.format_id(item.fid), "bold")]
    if item.name:
        head += [("  ", None), (item.name, "bold")]
    lines: list[Segments] = [head]
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
        refused = (
            "rejected by the kernel (overlap or reserved)"
            if item.profile.has_filter
            else f"rejected by the kernel (kernel {item.profile.name} has no SMCCC filter)"
        )
        for cover in item.covering:
            state = "installed" if cover.installed else refused
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
            "docs": rule_doc_link(rule.code),
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
                        "location": location_json(c.location),
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
            return json_text(_explanation_json(expl), indent=2) + "\n"
        case ExplainFormat.TEXT:
            if isinstance(expl, RuleExplanation):
                return styled(_rule_lines(expl.rule), color=color)
            lines: list[Segments] = []
            for i, item in enumerate(expl.functions):
                if i:
                    lines.append([])
                lines.extend(_id_lines(item))
            return styled(lines, color=color)
        case _:
            assert_never(fmt)
