"""The rules reference: every documented diagnostic code as one Markdown page.

:func:`rules_reference` turns the registry (:func:`hvcfilter.rules.all_rules`)
into ``docs/rules.md``: per code its name, severity, what it catches (the
rule's docstring, the same text ``hvcfilter explain`` prints), its failing and
passing example, and whether and how ``allow`` accepts it. ``explain`` links
each rule to its anchor (:func:`rule_doc_link`). The page is plain Markdown
with ``attr_list`` anchors; nothing here knows about mkdocs.

Imports: the rule registry and the spec loader's input rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from hvcfilter.diagnostics import Severity
from hvcfilter.rules import CHECKS, Rule, all_rules
from hvcfilter.spec import INPUT_RULES

__all__ = [
    "RULES_REFERENCE_PATH",
    "RuleDoc",
    "rule_anchor",
    "rule_doc",
    "rule_doc_link",
    "rules_reference",
]

# There is no hosted site: the link points into the source tree, where the page
# is committed (and which `mkdocs build` turns into rules/index.html#hvf201).
RULES_REFERENCE_PATH = "docs/rules.md"

# The hundreds digit of a code is its group (STYLE.md).
_GROUPS = {
    "0": "TOML input",
    "1": "Schema",
    "2": "Ranges and overlaps",
    "3": "SMCCC conformance",
    "4": "Payloads",
    "5": "Replay",
}
_EXAMPLE = re.compile(r"^Fail:\s*(?P<fail>.*?)\s*^Pass:\s*(?P<pass_>.*)\Z", re.S | re.M)
# A Markdown code span written reST-style (``x``); kept as it is.
_CODE_SPAN = re.compile(r"(``.*?``)", re.S)


@dataclass(frozen=True, slots=True)
class RuleDoc:
    """A rule's documentation split for the reference: summary, body and example."""

    rule: Rule
    summary: str
    body: str
    fails: str | None
    passes: str | None


def rule_anchor(code: str) -> str:
    """The anchor of a code on the rules reference page: ``hvf201``."""
    return code.lower()


def rule_doc_link(code: str) -> str:
    """Where a code is documented: ``docs/rules.md#hvf201``."""
    return f"{RULES_REFERENCE_PATH}#{rule_anchor(code)}"


def rule_doc(rule: Rule) -> RuleDoc:
    """Split a rule's docstring into its summary line, body and ``Fail:``/``Pass:`` example."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", rule.doc.strip()) if p.strip()]
    summary = paragraphs.pop(0) if paragraphs else rule.name
    fails = passes = None
    if paragraphs and (match := _EXAMPLE.match(paragraphs[-1])):
        paragraphs.pop()
        fails, passes = _unwrap(match["fail"]), _unwrap(match["pass_"])
    return RuleDoc(rule, _unwrap(summary), "\n\n".join(paragraphs), fails, passes)


def _unwrap(text: str) -> str:
    return " ".join(text.split())


def _markdown(text: str) -> str:
    # Docstrings are prose with reST code spans, which Markdown reads the same;
    # outside them a `*` (SMCCC_ARCH_WORKAROUND_*, 2**32) must not start emphasis.
    parts = _CODE_SPAN.split(text)
    return "".join(p if i % 2 else p.replace("*", r"\*") for i, p in enumerate(parts))


def _how_to_allow(rule: Rule, lint_codes: set[str], input_codes: set[str]) -> str:
    """What ``allow`` does with this code, as :mod:`hvcfilter.rules.allow` implements it."""
    if rule.severity is Severity.ERROR:
        return (
            "It cannot be allowed: it is an error, so the kernel rejects the table (or the "
            "input cannot be read) whatever the spec says. Naming it in `allow` is itself "
            "a finding ([HVF108](#hvf108)). Fix what it points at instead."
        )
    if rule.code in lint_codes or rule.code in input_codes:
        return (
            f'Accept it for the whole spec with `allow = ["{rule.name}"]` (or '
            f'`allow = ["{rule.code}"]`) in `[filter]`, or only for one entry with the same '
            "line in the `[[range]]` the finding points at (where its location is "
            "`range[N]...`)."
        )
    return "`allow` does not apply: this code is about a payload or a replay, not a spec."


def _rule_section(doc: RuleDoc, lint_codes: set[str], input_codes: set[str]) -> list[str]:
    rule = doc.rule
    lines = [
        f"### {rule.code} {rule.name} {{ #{rule_anchor(rule.code)} }}",
        "",
        f"**Severity:** {rule.severity.label} · **Code:** `{rule.code}` · **Name:** `{rule.name}`",
        "",
        f"**{_markdown(doc.summary)}**",
        "",
    ]
    if doc.body:
        lines += [_markdown(doc.body), ""]
    if doc.fails is not None and doc.passes is not None:
        lines += [
            "**Example**",
            "",
            f"- Fails: {_markdown(doc.fails)}",
            f"- Passes: {_markdown(doc.passes)}",
            "",
        ]
    lines += [
        f"**How to allow it:** {_how_to_allow(rule, lint_codes, input_codes)}",
        "",
    ]
    return lines


def rules_reference(rules: Iterable[Rule] | None = None) -> str:
    """The Markdown of ``docs/rules.md``: an index, then one section per code by group.

    ``rules`` defaults to every registered code.
    """
    docs = [rule_doc(r) for r in (all_rules() if rules is None else rules)]
    lint_codes = {c.code for c in CHECKS}
    input_codes = {r.code for r in INPUT_RULES}
    lines = [
        "<!-- Generated from the rule registry by docs/gen_docs.py: do not edit. -->",
        "",
        "# Rules reference",
        "",
        "Every diagnostic code hvcfilter reports, generated from the rule registry: the same",
        "text `hvcfilter explain CODE` prints. An **error** means the kernel will reject the",
        "table (or the input cannot be understood), a **warning** that the kernel accepts it",
        "but it probably does not do what its author meant, a **note** a simplification.",
        "",
        "`allow` lists accept reviewed warnings and notes of the lint rules, by code or",
        'name: `allow = ["forwards-kernel-call"]` in `[filter]` for the whole spec, or in',
        "one `[[range]]` for that entry. Errors can never be allowed.",
        "",
        "| code | name | severity | finding |",
        "|---|---|---|---|",
    ]
    for d in docs:
        summary = _markdown(d.summary).replace("|", r"\|")
        lines.append(
            f"| [{d.rule.code}](#{rule_anchor(d.rule.code)}) | `{d.rule.name}` | "
            f"{d.rule.severity.label} | {summary} |"
        )
    lines.append("")
    group = None
    for doc in docs:
        digit = doc.rule.code[3]
        if digit != group:
            group = digit
            lines += [f"## HVF{digit}xx: {_GROUPS.get(digit, 'Other')}", ""]
        lines += _rule_section(doc, lint_codes, input_codes)
    return "\n".join(lines).rstrip("\n") + "\n"
