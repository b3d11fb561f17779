"""The editor schema (``hvcfilter schema``): generated from the models, shipped, and honest.

It must be what the models generate, identical in the package and in the
repository, accept every spec ``check`` accepts (the examples and every
rule case), and flag a wrong type or an unknown key, both for the
``jsonschema`` validator and for taplo reading the examples' directive.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from suite_paths import EXAMPLES, ROOT, TESTS

from hvcfilter import smccc
from hvcfilter.cli import cli
from hvcfilter.diagnostics import Severity
from hvcfilter.lint import lint_text
from hvcfilter.spec import json_schema

REPO_SCHEMA = ROOT / "schema" / "hvcfilter.schema.json"
PACKAGE_SCHEMA = ROOT / "hvcfilter" / "data" / "hvcfilter.schema.json"
DIRECTIVE = "#:schema ../schema/hvcfilter.schema.json"
TAPLO = str(Path(sys.executable).with_name("taplo"))
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.toml"))


def _schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(REPO_SCHEMA.read_text())
    return loaded


def _validator() -> Draft202012Validator:
    return Draft202012Validator(_schema())


def _rule_cases() -> list[tuple[str, str]]:
    cases = []
    for path in sorted((TESTS / "rules").glob("HVF*.toml")):
        data = tomllib.loads(path.read_text())
        for kind in ("pass", "fail"):
            for index, case in enumerate(data.get(kind, [])):
                cases.append((f"{path.stem}-{kind}{index}", case["spec"]))
    return cases


def _input_error(text: str) -> bool:
    """Whether ``check`` rejects the text as TOML or schema (HVF0xx/HVF1xx errors)."""
    report = lint_text(text, "case.toml")
    return any(d.severity is Severity.ERROR and d.code[3] in "01" for d in report.diagnostics)


def test_the_shipped_schemas_are_what_the_models_generate() -> None:
    generated = json_schema.render(json_schema.generate())
    assert PACKAGE_SCHEMA.read_text() == generated, "run python -m hvcfilter.spec.json_schema"
    assert REPO_SCHEMA.read_text() == generated
    assert json_schema.shipped() == generated


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = _schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_the_schema_command_prints_the_shipped_schema(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["schema"], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.output == REPO_SCHEMA.read_text()
    out = tmp_path / "s.json"
    assert CliRunner().invoke(cli, ["schema", "-o", str(out)]).exit_code == 0
    assert out.read_text() == REPO_SCHEMA.read_text()


def _walk(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(_walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_walk(value))
    return found


def _enums() -> list[list[Any]]:
    return [n["enum"] for n in _walk(_schema()) if "enum" in n]


def test_the_schema_names_actions_selectors_and_every_catalogue_service_and_owner() -> None:
    enums = _enums()
    assert ["handle", "deny", "fwd_to_user"] in enums
    assert ["smc32", "smc64"] in enums
    assert list(smccc.SERVICES) in enums
    assert list(smccc.owner_numbers()) in enums
    assert sorted(e.name for e in smccc.catalogue().entries) in enums
    defs = _schema()["$defs"]
    selectors = {key for model in defs.values() for key in model.get("required", [])}
    assert selectors == {"action", "base", "function", "functions", "service", "owner"}


def test_every_key_has_a_description() -> None:
    for node in _walk(_schema()):
        for key, prop in node.get("properties", {}).items():
            assert prop.get("description"), key


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_examples_carry_the_directive_and_validate(path: Path) -> None:
    text = path.read_text()
    assert text.splitlines()[0] == DIRECTIVE
    assert (path.parent / DIRECTIVE.split()[1]).resolve() == REPO_SCHEMA
    errors = list(_validator().iter_errors(tomllib.loads(text)))
    assert not errors, errors


@pytest.mark.parametrize(("name", "text"), _rule_cases(), ids=[n for n, _ in _rule_cases()])
def test_the_schema_accepts_every_rule_case_check_accepts(name: str, text: str) -> None:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return  # HVF002 cases: not TOML, so no schema applies
    if not _validator().is_valid(document):
        assert _input_error(text), f"{name}: the schema rejects a spec that check accepts"


BAD_TYPE = '[[range]]\nbase = "0xC2000000"\nnr_functions = 1\naction = "deny"\n'
UNKNOWN_KEY = '[[range]]\nbase = 0xC2000000\nnr_functions = 1\naction = "deny"\nbogus = 1\n'
UNKNOWN_TABLE_KEY = '[filter]\nnmae = "x"\n'
BAD_ACTION = '[[range]]\nbase = 0xC2000000\nnr_functions = 1\naction = "allow"\n'
BAD_CASES = [BAD_TYPE, UNKNOWN_KEY, UNKNOWN_TABLE_KEY, BAD_ACTION]


@pytest.mark.parametrize("text", BAD_CASES)
def test_jsonschema_flags_what_check_rejects(text: str) -> None:
    assert _input_error(text)
    assert not _validator().is_valid(tomllib.loads(text))


def _taplo(*files: Path) -> subprocess.CompletedProcess[str]:
    assert shutil.which(TAPLO), "taplo comes with the test extra"
    return subprocess.run(
        [TAPLO, "lint", "--no-auto-config", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "RUST_LOG": "error"},
    )


def test_taplo_accepts_every_example_through_its_directive() -> None:
    result = _taplo(*EXAMPLE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("text", BAD_CASES)
def test_taplo_flags_a_wrong_type_or_an_unknown_key(tmp_path: Path, text: str) -> None:
    # Beside a copy of the schema, as an example sits beside ../schema/.
    (tmp_path / "schema").mkdir()
    shutil.copy(REPO_SCHEMA, tmp_path / "schema" / REPO_SCHEMA.name)
    (tmp_path / "examples").mkdir()
    good = tmp_path / "examples" / "good.toml"
    good.write_text(f"{DIRECTIVE}\n" + EXAMPLE_FILES[0].read_text().split("\n", 1)[1])
    bad = tmp_path / "examples" / "bad.toml"
    bad.write_text(f"{DIRECTIVE}\n{text}")
    assert _taplo(good).returncode == 0
    result = _taplo(bad)
    assert result.returncode == 1
    assert "bad.toml:" in result.stderr
    assert "error:" in result.stderr


def test_enum_values_carry_taplo_hover_docs() -> None:
    documented = [n for n in _walk(_schema()) if "x-taplo" in n]
    actions = [n for n in documented if n.get("enum") == ["handle", "deny", "fwd_to_user"]]
    assert actions
    for node in documented:
        docs = node["x-taplo"]["docs"]["enumValues"]
        assert len(docs) == len(node["enum"]) and all(docs)
