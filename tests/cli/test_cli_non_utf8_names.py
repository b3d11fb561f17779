"""File names that are not UTF-8 are normal input: every output format survives them.

Python hands such a name over with its bytes as surrogates (PEP 383), which a
plain ``str.encode()`` refuses: the commands used to end in an internal error
(exit 3). Reports for people keep the name's own bytes; documents that must be
UTF-8 (JSON, SARIF, JUnit XML, C, Rust, TOML) stay valid.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from hvcfilter.cli.group import cli

WARNS = '[[range]]\nfunction = "PSCI_CPU_ON_64"\naction = "fwd_to_user"\n'
RAW_NAME = b"\xfewarn.toml"


@pytest.fixture
def spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    with open(RAW_NAME, "w", encoding="utf-8") as file:
        file.write(WARNS)
    return os.fsdecode(RAW_NAME)  # "\udcfewarn.toml", as sys.argv would hold it


def _invoke(*args: str) -> bytes:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code in (0, 1, 2), result.stderr
    assert "internal error" not in result.stderr
    return result.stdout_bytes


def test_the_text_report_names_the_file_by_its_own_bytes(spec: str) -> None:
    out = _invoke("check", spec)
    assert out.startswith(RAW_NAME + b":2:1: warning HVF301")


def test_a_missing_file_that_is_not_utf8_is_hvf001_not_an_internal_error() -> None:
    result = CliRunner().invoke(cli, ["check", os.fsdecode(b"\xffmissing.toml")])
    assert result.exit_code == 2
    assert result.stdout_bytes.startswith(b"\xffmissing.toml: error HVF001")


@pytest.mark.parametrize("fmt", ["json", "sarif", "gitlab"])
def test_json_reports_stay_valid_json(spec: str, fmt: str) -> None:
    document = json.loads(_invoke("check", "--format", fmt, spec))
    assert document


def test_sarif_percent_encodes_the_names_bytes(spec: str) -> None:
    document = json.loads(_invoke("check", "--format", "sarif", spec))
    location = document["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "%FEwarn.toml"


def test_junit_stays_well_formed_xml(spec: str) -> None:
    root = ET.fromstring(_invoke("check", "--format", "junit", spec))
    assert root.find("testsuite").get("name") == "\ufffdwarn.toml"  # type: ignore[union-attr]


@pytest.mark.parametrize("fmt", ["c", "rust", "json"])
def test_generated_code_stays_valid_utf8(spec: str, fmt: str) -> None:
    out = _invoke("compile", "--format", fmt, spec)
    assert "\ufffdwarn.toml" in out.decode("utf-8")


def test_a_learned_spec_stays_valid_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tomllib

    monkeypatch.chdir(tmp_path)
    trace = Path(__file__).resolve().parents[1] / "traces" / "aarch32.txt"
    with open(b"\xfdtrace.txt", "wb") as file:
        file.write(trace.read_bytes())
    _invoke("learn", os.fsdecode(b"\xfdtrace.txt"), "-o", "learned.toml")
    text = Path("learned.toml").read_bytes().decode("utf-8")
    assert "\ufffdtrace.txt" in text and tomllib.loads(text)["range"]


def _has_lone_surrogate(value: object) -> bool:
    if isinstance(value, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


@pytest.mark.parametrize(
    "args",
    [
        ["check", "--format", "json"],
        ["check", "--format", "gitlab"],
        ["diff", "--format", "json", "SPEC", "SPEC"],
        ["compile-check", "--format", "json"],
        ["compile", "--dry-run", "--format", "json"],
        ["explain", "0x84000003", "--format", "json", "--spec"],
        ["simulate", "--format", "json", "TRACE", "--spec"],
        ["learn", "TRACE", "--format", "json", "--against"],
    ],
    ids=lambda a: "-".join(a[:2]),
)
def test_json_documents_hold_no_lone_surrogates(spec: str, args: list[str]) -> None:
    # json.dumps writes a name's undecodable byte as "\udcfe", a lone surrogate that
    # strict parsers (serde_json, Go) refuse: it is U+FFFD, as in SARIF and JUnit.
    trace = os.fsdecode(b"\xfdtrace.jsonl")
    with open(b"\xfdtrace.jsonl", "w", encoding="utf-8") as file:
        file.write('{"x0": "0x84000003", "conduit": "hvc"}\n')
    argv = [trace if a == "TRACE" else spec if a == "SPEC" else a for a in args]
    if "SPEC" not in args:
        argv.append(spec)
    out = _invoke(*argv)
    assert b"\\udc" not in out
    document = json.loads(out)
    assert not _has_lone_surrogate(document)
    text = json.dumps(document, ensure_ascii=False)
    assert "warn.toml" not in text.replace("\ufffdwarn.toml", "")
