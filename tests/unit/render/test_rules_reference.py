"""Unit tests of hvcfilter.render.rules_reference: splitting a rule's docs, and the page."""

from __future__ import annotations

from hvcfilter.diagnostics import Severity
from hvcfilter.render.rules_reference import (
    RULES_REFERENCE_PATH,
    rule_anchor,
    rule_doc,
    rule_doc_link,
    rules_reference,
)
from hvcfilter.rules import Rule, find_rule

DOC = """Summary line.

Body with SMCCC_ARCH_WORKAROUND_* and ``code *kept*``.

Fail: ``a = 1``
over two lines.
Pass: ``a = 2``."""


def test_rule_doc_splits_summary_body_and_example() -> None:
    doc = rule_doc(Rule("HVF998", "made-up", Severity.WARNING, DOC))
    assert doc.summary == "Summary line."
    assert doc.body == "Body with SMCCC_ARCH_WORKAROUND_* and ``code *kept*``."
    assert (doc.fails, doc.passes) == ("``a = 1`` over two lines.", "``a = 2``.")


def test_rule_doc_without_an_example() -> None:
    doc = rule_doc(Rule("HVF998", "made-up", Severity.NOTE, "Only a summary."))
    assert (doc.summary, doc.body, doc.fails, doc.passes) == ("Only a summary.", "", None, None)


def test_anchor_and_link() -> None:
    assert rule_anchor("HVF201") == "hvf201"
    assert rule_doc_link("HVF201") == f"{RULES_REFERENCE_PATH}#hvf201" == "docs/rules.md#hvf201"


def test_page_escapes_emphasis_outside_code_spans_only() -> None:
    page = rules_reference([Rule("HVF998", "made-up", Severity.WARNING, DOC)])
    assert r"SMCCC_ARCH_WORKAROUND_\*" in page
    assert "``code *kept*``" in page
    assert "## HVF9xx: Other" in page
    assert "### HVF998 made-up { #hvf998 }" in page
    assert "| [HVF998](#hvf998) | `made-up` | warning | Summary line. |" in page


def test_allow_advice_by_kind_of_rule() -> None:
    def advice(code: str) -> str:
        rule = find_rule(code)
        assert rule is not None
        section = rules_reference([rule]).split("**How to allow it:** ", 1)[1]
        return section.split("\n", 1)[0]

    assert 'allow = ["forwards-kernel-call"]' in advice("HVF303")  # a lint warning
    assert 'allow = ["mergeable-ranges"]' in advice("HVF205")  # a lint note
    assert advice("HVF201").startswith("It cannot be allowed: it is an error")
    assert advice("HVF401").startswith("It cannot be allowed")  # payload errors too
    assert 'allow = ["vm-config"]' in advice("HVF107")  # a loader warning
