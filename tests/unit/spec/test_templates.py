"""The starter specs of ``hvcfilter init``: check-clean, commented, and the examples' twins."""

from __future__ import annotations

import tomllib

import pytest
from suite_paths import ROOT

from hvcfilter.lint import lint_text
from hvcfilter.spec.templates import UnknownTemplateError, get_template, templates

NAMES = [t.name for t in templates()]


def test_the_templates_cover_what_vmms_do() -> None:
    assert set(NAMES) >= {"lockdown", "trng-in-vmm", "vcpu-hotplug", "sip-in-vmm"}


@pytest.mark.parametrize("name", NAMES)
def test_each_template_as_written_is_check_clean(name: str) -> None:
    text = get_template(name).render()
    report = lint_text(text, f"{name}.toml")
    assert report.diagnostics == (), [d.message for d in report.diagnostics]
    assert text.startswith("# Made by `hvcfilter init --template")
    assert tomllib.loads(text)["filter"]["name"] == name


@pytest.mark.parametrize("name", NAMES)
def test_each_template_is_its_example_without_the_schema_directive(name: str) -> None:
    example = (ROOT / "examples" / f"{name}.toml").read_text()
    first, _, rest = example.partition("\n")
    assert first == "#:schema ../schema/hvcfilter.schema.json"
    assert rest == get_template(name).text, f"examples/{name}.toml and its template differ"


@pytest.mark.parametrize("name", NAMES)
def test_each_template_says_why_in_comments(name: str) -> None:
    t = get_template(name)
    comments = [ln for ln in t.text.splitlines() if ln.startswith("#")]
    assert len(comments) >= 4 and t.summary and len(t.summary) < 80


def test_an_unknown_template_suggests_the_closest() -> None:
    with pytest.raises(UnknownTemplateError, match="did you mean vcpu-hotplug"):
        get_template("hotplug")
