"""Unit tests of hvcfilter.rules.registry: codes, severities, documentation, providers."""

from __future__ import annotations

import re

import pytest

from hvcfilter import rules
from hvcfilter.diagnostics import Severity
from hvcfilter.rules import (
    CHECKS,
    Rule,
    all_rules,
    find_rule,
    register_rules,
    registry,
)
from hvcfilter.spec import INPUT_RULES

# What the issue asks of each rule: only a table the kernel refuses is an error.
EXPECTED_SEVERITY = {
    "HVF201": Severity.ERROR,
    "HVF202": Severity.ERROR,
    "HVF203": Severity.ERROR,
    "HVF204": Severity.WARNING,
    "HVF205": Severity.NOTE,
    "HVF206": Severity.WARNING,
    "HVF207": Severity.ERROR,
    "HVF208": Severity.WARNING,
    "HVF301": Severity.WARNING,
    "HVF302": Severity.WARNING,
    "HVF303": Severity.WARNING,
    "HVF304": Severity.WARNING,
    "HVF305": Severity.WARNING,
    "HVF306": Severity.WARNING,
    "HVF307": Severity.WARNING,
}


def test_checks_have_the_expected_codes_and_severities() -> None:
    assert {c.code: c.severity for c in CHECKS} == EXPECTED_SEVERITY


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.code)
def test_check_docstring_is_documentation_with_examples(check: rules.Check) -> None:
    doc = check.doc
    assert doc.splitlines()[0].endswith(".")
    assert "Fail:" in doc and "Pass:" in doc
    assert check.rule.summary == doc.splitlines()[0]


def test_all_rules_unique_well_formed_and_sorted() -> None:
    rules = all_rules()
    codes = [r.code for r in rules]
    names = [r.name for r in rules]
    assert codes == sorted(codes)
    assert len(set(codes)) == len(codes)
    # Names are unique across every group, so `explain NAME` is exact.
    assert len(set(names)) == len(names)
    for rule in rules:
        assert re.fullmatch(r"HVF\d{3}", rule.code)
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.name)
        assert rule.doc.strip()
    assert {r.code for r in INPUT_RULES} <= set(codes)
    assert {c.code for c in CHECKS} <= set(codes)


def test_all_rules_reads_provider_modules() -> None:
    # payload.py documents the HVF4xx codes; they are listed without importing it up front.
    assert any(r.code.startswith("HVF4") for r in all_rules())


def test_register_rules_adds_and_refuses_reuse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTERED", [])
    register_rules([Rule("HVF599", "test-only-rule", Severity.NOTE, "Only for a test.")])
    assert find_rule("HVF599") is not None
    register_rules([Rule("HVF599", "test-only-rule", Severity.NOTE, "Same again.")])  # idempotent
    with pytest.raises(ValueError, match="never reused"):
        register_rules([Rule("HVF201", "something-else", Severity.NOTE, "x")])
    with pytest.raises(ValueError, match="three digits"):
        register_rules([Rule("HVF59", "bad-code", Severity.NOTE, "x")])
    with pytest.raises(ValueError, match="kebab"):
        register_rules([Rule("HVF598", "Bad_Name", Severity.NOTE, "x")])


def test_missing_provider_module_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "RULE_PROVIDERS", [("hvcfilter.no_such_module", "RULES")])
    assert {r.code for r in all_rules()} == {r.code for r in INPUT_RULES} | {c.code for c in CHECKS}


@pytest.mark.parametrize("query", ["HVF201", "hvf201", "overlapping-ranges", "overlapping_ranges"])
def test_find_rule(query: str) -> None:
    rule = find_rule(query)
    assert rule is not None and rule.code == "HVF201"


def test_find_rule_by_name_prefers_the_lowest_code() -> None:
    rule = find_rule("reserved-range")
    assert rule is not None and rule.code == "HVF202"


def test_find_rule_unknown() -> None:
    assert find_rule("HVF999") is None
