"""The documentation site: generated pages in sync, claims true, and ``mkdocs build --strict``.

``docs/rules.md`` and the command outputs in ``docs/commands/`` are generated
by ``docs/gen_docs.py`` and committed; these tests regenerate them and compare.
The rules reference's ``allow`` advice is checked against the linter itself,
and the site must build with no broken link or anchor.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import gen_docs
import pytest
import tomli_w
import yaml
from suite_paths import ROOT, TESTS

from hvcfilter.cli import _COMMANDS
from hvcfilter.diagnostics import Severity
from hvcfilter.lint import lint_text
from hvcfilter.render.rules_reference import rule_anchor, rule_doc, rules_reference
from hvcfilter.rules import CHECKS, Rule, all_rules
from hvcfilter.spec import INPUT_RULES

STALE = "{path} is out of date: run `.venv/bin/python docs/gen_docs.py` and review the diff"


def test_rules_reference_is_in_sync_with_the_registry() -> None:
    committed = (ROOT / "docs" / "rules.md").read_text("utf-8")
    assert committed == rules_reference(), STALE.format(path="docs/rules.md")


@pytest.mark.parametrize("rule", all_rules(), ids=lambda r: r.code)
def test_rules_reference_documents_every_code(rule: Rule) -> None:
    page = rules_reference()
    heading = f"### {rule.code} {rule.name} {{ #{rule_anchor(rule.code)} }}"
    assert heading in page
    section = page.split(heading, 1)[1].split("\n### ", 1)[0]
    assert f"**Severity:** {rule.severity.label}" in section
    doc = rule_doc(rule)
    assert doc.fails and doc.passes, f"{rule.code}'s docstring needs a Fail:/Pass: example"
    escaped = doc.fails.replace("*", "\\*")
    assert f"- Fails: {escaped}" in section
    assert "**How to allow it:**" in section


def _with_filter_allow(spec_text: str, item: str) -> str | None:
    try:
        data = tomllib.loads(spec_text)
    except tomllib.TOMLDecodeError:
        return None  # HVF002's cases: nothing to add an allow list to
    data.setdefault("filter", {})["allow"] = [item]
    return tomli_w.dumps(data)


def _fail_specs(code: str) -> list[str]:
    path = TESTS / "rules" / f"{code}.toml"
    if not path.is_file():
        return []
    return [case["spec"] for case in tomllib.loads(path.read_text("utf-8"))["fail"]]


@pytest.mark.parametrize("rule", all_rules(), ids=lambda r: r.code)
def test_rules_reference_allow_advice_is_what_the_linter_does(rule: Rule) -> None:
    section = rules_reference().split(f"{{ #{rule_anchor(rule.code)} }}", 1)[1]
    advice = section.split("**How to allow it:**", 1)[1].split("\n", 1)[0]
    says_allowed = f'allow = ["{rule.name}"]' in advice
    lint_codes = {c.code for c in CHECKS}
    spec_codes = lint_codes | {r.code for r in INPUT_RULES}
    assert says_allowed == (rule.code in spec_codes and rule.severity is not Severity.ERROR)
    for spec in _fail_specs(rule.code):
        if rule.code == "HVF108":
            continue  # its failing cases are allow lists themselves
        allowed = _with_filter_allow(spec, rule.name)
        if allowed is None:
            continue
        assert rule.code in [d.code for d in lint_text(spec).diagnostics]
        after = [d.code for d in lint_text(allowed).diagnostics]
        assert (rule.code not in after) == says_allowed, (rule.code, after)
        # A lint finding points at a range, except one about the table as a whole.
        at_a_range = rule.code in lint_codes and rule.code not in _WHOLE_TABLE_CODES
        if says_allowed and (at_a_range or _points_at_a_range(spec, rule)):
            _assert_range_allow_drops(spec, rule)


# Lint rules whose finding is about the table as a whole: there is no range to point at.
_WHOLE_TABLE_CODES = {"HVF208"}


def _points_at_a_range(spec: str, rule: Rule) -> bool:
    keys = [d.location.key or "" for d in lint_text(spec).diagnostics if d.code == rule.code]
    return any(key.startswith("range[") for key in keys)


def _assert_range_allow_drops(spec: str, rule: Rule) -> None:
    """The advice's second half: the same item in the ``[[range]]`` the finding points at."""
    entries = {
        int(m.group(1))
        for d in lint_text(spec).diagnostics
        if d.code == rule.code and (m := re.match(r"range\[(\d+)\]", d.location.key or ""))
    }
    assert entries, f"{rule.code}'s finding should point at a range"
    data = tomllib.loads(spec)
    for entry in entries:
        data["range"][entry]["allow"] = [rule.name]
    after = [d.code for d in lint_text(tomli_w.dumps(data)).diagnostics]
    assert rule.code not in after, (rule.code, after)


def _mkdocs(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    result = _mkdocs(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "rules.html").is_file()
    assert 'id="hvf201"' in (tmp_path / "site" / "rules.html").read_text("utf-8")


def test_mkdocs_build_strict_fails_on_a_broken_link(tmp_path: Path) -> None:
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns("__pycache__"))
    index = tmp_path / "docs" / "index.md"
    index.write_text(index.read_text("utf-8") + "\nSee [HVF999](rules.md#hvf999).\n", "utf-8")
    result = _mkdocs(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    assert "hvf999" in result.stderr


def test_gen_docs_check_reports_nothing_stale() -> None:
    stale = [
        str(path.relative_to(ROOT))
        for path, text in gen_docs.expected_files().items()
        if not path.is_file() or path.read_text("utf-8") != text
    ]
    assert not stale, STALE.format(path=", ".join(stale))


def _nav_pages(nav: object) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in _nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in _nav_pages(value)]
    return []


@pytest.mark.parametrize("command", list(_COMMANDS))
def test_every_command_has_a_page_with_real_output(command: str) -> None:
    page = ROOT / "docs" / "commands" / f"{command}.md"
    assert page.is_file(), f"hvcfilter {command} needs a page: docs/commands/{command}.md"
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text("utf-8"))
    assert f"commands/{command}.md" in _nav_pages(config["nav"]), "add the page to the nav"
    text = page.read_text("utf-8")
    assert f"<!-- run: hvcfilter {command}" in text or f": hvcfilter {command} " in text


@pytest.mark.parametrize(
    "page", sorted((ROOT / "docs" / "commands").glob("*.md")), ids=lambda p: p.stem
)
def test_command_page_output_is_what_the_command_prints(page: Path) -> None:
    text = page.read_text("utf-8")
    assert "<!-- run" in text
    assert gen_docs.refresh_outputs(text) == text, STALE.format(path=page.relative_to(ROOT))


def test_in_process_output_is_what_the_console_script_prints() -> None:
    # The pages run the CLI in-process; a real process must print the same.
    block = gen_docs.run_command("hvcfilter check docs/examples/overlap.toml")
    real = subprocess.run(
        [sys.executable, "-m", "hvcfilter", "check", "docs/examples/overlap.toml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "100", "NO_COLOR": "1"},
        check=False,
    )
    assert (real.returncode, real.stdout.rstrip("\n")) == (block.exit_code, block.output)
    assert block.exit_code == 1 and "HVF201 overlapping-ranges" in block.output


def _fenced(page: str, language: str) -> list[str]:
    text = (ROOT / "docs" / page).read_text("utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.S | re.M)


def test_python_api_examples_run() -> None:
    blocks = _fenced("api.md", "python")
    assert len(blocks) >= 2
    for code in blocks:
        gen_docs.run_python(code)  # raises with the example's stderr if it fails
    api_page = gen_docs.API_PAGE.read_text("utf-8")
    assert gen_docs.refresh_python(api_page) == api_page, STALE.format(path="docs/api.md")


def test_python_example_failure_is_reported() -> None:
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        gen_docs.run_python("1 / 0")


@pytest.mark.parametrize("page", ["spec.md", "getting-started.md"])
def test_toml_examples_are_specs_without_errors(page: str) -> None:
    blocks = _fenced(page, "toml")
    assert blocks
    for block in blocks:
        if block.startswith("#:schema"):
            continue
        report = lint_text(block, page)
        assert not [d for d in report.diagnostics if d.severity is Severity.ERROR], block


def test_docs_tools_are_extras_not_run_time_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    extras = project["optional-dependencies"]
    assert {r.split(">")[0] for r in extras["docs"]} == {"mkdocs", "mkdocs-material"}
    # .ci/run installs only .[test], and the suite builds the site.
    assert "hvcfilter[docs]" in extras["test"]
    assert not [r for r in project["dependencies"] if r.startswith("mkdocs")]
