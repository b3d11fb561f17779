"""Run every ``tests/rules/HVFnnn.toml``: each [[fail]] spec must produce the code, each
[[pass]] spec must not.

A case file holds ``code`` and arrays of tables ``fail`` and ``pass``, each with
a ``name`` and a ``spec`` (TOML text). A fail case may also say how many
findings to ``expect``, substrings the messages must ``contain`` (one finding
must contain all of them), ``hint_contains``, and the ``key`` or ``line`` of
the first finding.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from hvcfilter.lint import lint_text
from hvcfilter.rules import CHECKS, all_rules

CASE_DIR = Path(__file__).parent
CASE_FILES = sorted(CASE_DIR.glob("HVF*.toml"))


def _cases(kind: str) -> list[Any]:
    params = []
    for path in CASE_FILES:
        data = tomllib.loads(path.read_text("utf-8"))
        for i, case in enumerate(data.get(kind, [])):
            params.append(pytest.param(data["code"], case, id=f"{path.stem}-{kind}-{i}"))
    return params


def test_case_files_exist() -> None:
    assert len(CASE_FILES) >= len(CHECKS)


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: p.stem)
def test_case_file_is_well_formed(path: Path) -> None:
    data = tomllib.loads(path.read_text("utf-8"))
    assert data["code"] == path.stem
    assert data.get("fail"), "every code needs a failing case"
    assert data.get("pass"), "every code needs a passing case"
    allowed = {"name", "spec", "expect", "contains", "hint_contains", "key", "line"}
    for case in [*data["fail"], *data["pass"]]:
        assert set(case) <= allowed, set(case) - allowed
        assert case["name"] and "spec" in case


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.code)
def test_every_check_has_a_case_file(check: Any) -> None:
    assert (CASE_DIR / f"{check.code}.toml").is_file()


@pytest.mark.parametrize(("code", "case"), _cases("fail"))
def test_fail_case(code: str, case: dict[str, Any]) -> None:
    report = lint_text(case["spec"], "case.toml")
    found = [d for d in report.diagnostics if d.code == code]
    assert found, f"{case['name']}: expected {code}, got {[d.code for d in report.diagnostics]}"
    if "expect" in case:
        assert len(found) == case["expect"], [d.message for d in found]
    severity = {r.code: r.severity for r in all_rules()}[code]
    assert all(d.severity is severity for d in found)
    if "contains" in case:
        assert any(all(s in d.message for s in case["contains"]) for d in found), [
            d.message for d in found
        ]
    if "hint_contains" in case:
        assert any(d.hint and all(s in d.hint for s in case["hint_contains"]) for d in found), [
            d.hint for d in found
        ]
    if "key" in case:
        assert found[0].location.key == case["key"]
    if "line" in case:
        assert found[0].location.line == case["line"]
    for diag in found:
        assert diag.location.file == "case.toml"
        assert (diag.message and diag.hint is None) or isinstance(diag.hint, str)


@pytest.mark.parametrize(("code", "case"), _cases("pass"))
def test_pass_case(code: str, case: dict[str, Any]) -> None:
    report = lint_text(case["spec"], "case.toml")
    assert not [d for d in report.diagnostics if d.code == code], [
        d.message for d in report.diagnostics if d.code == code
    ]
    # A pass case must be a spec the loader understands, so the check really ran.
    assert report.spec is not None, [d.message for d in report.diagnostics]
