"""Unit tests of the CI formats of ``check``: GitLab Code Quality and JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import jsonschema
import pytest

from hvcfilter.diagnostics import Diagnostic, Location, Severity
from hvcfilter.lint import FileReport, LintReport, lint_text
from hvcfilter.render.check.gitlab import GITLAB_SEVERITY, render_gitlab
from hvcfilter.render.check.junit import render_junit

# An error, a warning and a note (HVF201, HVF301, mergeable ranges), on known lines.
SPEC = """
[filter]
kernel = "6.12"

[[range]]
base = 0x84000000
nr_functions = 0x20
action = "deny"

[[range]]
function = "PSCI_CPU_ON_32"
action = "fwd_to_user"

[[range]]
base = 0xC2000000
nr_functions = 0x10
action = "fwd_to_user"

[[range]]
base = 0xC2000010
nr_functions = 0x10
action = "fwd_to_user"
"""


def _report() -> LintReport:
    """The spec, an unreadable file and a payload finding (no line, a byte offset)."""
    missing = Diagnostic(
        "HVF001",
        "unreadable-file",
        Severity.ERROR,
        "cannot read it: no such file",
        Location("missing.toml"),
    )
    payload = Diagnostic(
        "HVF402",
        "bad-action",
        Severity.ERROR,
        "record 1 has action 9",
        Location("/abs/table.bin", offset=0x20, key="record[1].action"),
        "actions are 0, 1 or 2",
    )
    return LintReport(
        (
            lint_text(SPEC, "specs/a.toml"),
            FileReport("missing.toml", (missing,)),
            FileReport("/abs/table.bin", (payload,)),
        )
    )


# The fields GitLab's Code Quality widget reads (docs.gitlab.com, "Code Quality report format").
CODE_QUALITY_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["description", "check_name", "fingerprint", "severity", "location"],
        "properties": {
            "description": {"type": "string", "minLength": 1},
            "check_name": {"type": "string", "minLength": 1},
            "fingerprint": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "severity": {"enum": ["info", "minor", "major", "critical", "blocker"]},
            "location": {
                "type": "object",
                "required": ["path", "lines"],
                "properties": {
                    "path": {"type": "string", "minLength": 1},
                    "lines": {
                        "type": "object",
                        "required": ["begin"],
                        "properties": {"begin": {"type": "integer", "minimum": 1}},
                    },
                },
            },
        },
    },
}


def _issues(report: LintReport) -> list[dict[str, Any]]:
    issues: list[dict[str, Any]] = json.loads(render_gitlab(report))
    return issues


# --------------------------------------------------------------------------- gitlab


def test_gitlab_issues_have_every_field_code_quality_reads() -> None:
    report = _report()
    issues = _issues(report)
    jsonschema.validate(issues, CODE_QUALITY_SCHEMA)
    assert len(issues) == len(report.diagnostics)
    for issue, diag in zip(issues, report.diagnostics, strict=True):
        assert issue["check_name"] == f"{diag.code} {diag.name}"
        assert issue["description"].startswith(diag.message)
        assert issue["location"]["lines"]["begin"] == (diag.location.line or 1)
    assert len({i["fingerprint"] for i in issues}) == len(issues)


def test_gitlab_severity_mapping() -> None:
    assert GITLAB_SEVERITY == {
        Severity.ERROR: "critical",
        Severity.WARNING: "major",
        Severity.NOTE: "minor",
    }
    by_code = {i["check_name"].split()[0]: i["severity"] for i in _issues(_report())}
    assert by_code["HVF001"] == "blocker"  # an unreadable spec stops everything
    assert by_code["HVF402"] == "critical"
    assert "major" in by_code.values()  # the spec's warnings


def test_gitlab_clean_report_is_an_empty_array() -> None:
    clean = LintReport((lint_text('[[range]]\nowner = "sip"\naction = "deny"\n', "a.toml"),))
    assert render_gitlab(clean) == "[]\n"


def _fingerprints(text: str, path: str = "specs/a.toml") -> dict[str, str]:
    issues = _issues(LintReport((lint_text(text, path),)))
    return {i["check_name"] + i["description"].split(")")[-1]: i["fingerprint"] for i in issues}


def test_fingerprints_are_stable_across_runs() -> None:
    assert _fingerprints(SPEC) == _fingerprints(SPEC)
    assert _fingerprints(SPEC)


def test_fingerprints_survive_lines_and_entries_inserted_above() -> None:
    before = _fingerprints(SPEC)
    moved = "# a new comment\n\n" + SPEC.replace(
        '[filter]\nkernel = "6.12"\n',
        '[filter]\nkernel = "6.12"\n\n[[range]]\nowner = "oem"\naction = "deny"\n',
    )
    after = _fingerprints(moved)
    assert set(before.values()) <= set(after.values())


def test_fingerprints_differ_by_file_and_by_finding() -> None:
    here = _fingerprints(SPEC)
    assert len(set(here.values())) == len(here)
    assert not set(here.values()) & set(_fingerprints(SPEC, "specs/b.toml").values())


# --------------------------------------------------------------------------- junit


def _junit(report: LintReport, *, strict: bool = False) -> ET.Element:
    text = render_junit(report, strict=strict)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    return ET.fromstring(text)


def _check_counts(root: ET.Element) -> None:
    """The counts JUnit consumers read agree with the elements they count."""
    assert root.tag == "testsuites"
    total = failures = errors = 0
    for suite in root:
        assert suite.tag == "testsuite"
        cases = suite.findall("testcase")
        assert all(set(case.attrib) == {"classname", "name"} for case in cases)
        assert int(suite.get("tests", "-1")) == len(cases) >= 1
        assert int(suite.get("failures", "-1")) == len(suite.findall("testcase/failure"))
        assert int(suite.get("errors", "-1")) == len(suite.findall("testcase/error"))
        assert suite.get("skipped") == "0"
        total += len(cases)
        failures += int(suite.get("failures", "0"))
        errors += int(suite.get("errors", "0"))
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == (
        str(total),
        str(failures),
        str(errors),
    )


@pytest.mark.parametrize("strict", [False, True])
def test_junit_has_one_suite_per_file_and_one_case_per_finding(strict: bool) -> None:
    report = _report()
    root = _junit(report, strict=strict)
    _check_counts(root)
    assert [s.get("name") for s in root] == [f.path for f in report.files]
    for suite, file in zip(root, report.files, strict=True):
        assert len(suite.findall("testcase")) == len(file.diagnostics)
        assert all(c.get("classname") == file.path for c in suite.iter("testcase"))


def test_junit_failures_follow_strict() -> None:
    report = LintReport((lint_text(SPEC, "specs/a.toml"),))
    warnings = report.count(Severity.WARNING)
    errors = report.count(Severity.ERROR)
    assert warnings and errors
    assert _junit(report).get("failures") == str(errors)
    assert _junit(report, strict=True).get("failures") == str(errors + warnings)
    notes = [
        c for c in _junit(report, strict=True).iter("testcase") if c.find("system-out") is not None
    ]
    assert len(notes) == report.count(Severity.NOTE)


def test_junit_unreadable_file_is_an_error_and_a_clean_file_one_passing_case() -> None:
    clean = lint_text('[[range]]\nowner = "sip"\naction = "deny"\n', "clean.toml")
    report = LintReport((clean, _report().files[1]))
    root = _junit(report)
    _check_counts(root)
    clean_suite, missing_suite = list(root)
    (case,) = clean_suite.findall("testcase")
    assert list(case) == []
    error = missing_suite.find("testcase/error")
    assert error is not None
    assert error.get("type") == "HVF001"
