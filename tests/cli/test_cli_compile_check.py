"""CLI tests of ``hvcfilter compile-check``: exit codes, the diff, json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from suite_paths import EXAMPLES

from hvcfilter.cli import cli

MINIMAL = (EXAMPLES / "minimal.toml").read_text()


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _pair(tmp_path: Path) -> tuple[Path, Path]:
    spec = tmp_path / "vm.toml"
    spec.write_text(MINIMAL)
    out = tmp_path / "vm.bin"
    assert _run("compile", str(spec), "-o", str(out)).exit_code == 0
    return spec, out


def test_fresh_is_0_stale_is_1_with_diff_and_refresh_command(tmp_path: Path) -> None:
    spec, out = _pair(tmp_path)
    result = _run("compile-check", str(spec))
    assert result.exit_code == 0
    assert f"ok {spec} -> {out}" in result.output
    spec.write_text(MINIMAL.replace("0x100", "0x80"))
    result = _run("compile-check", str(out))
    assert result.exit_code == 1
    assert f"STALE {spec} -> {out}" in result.output
    assert "@@" in result.output
    assert f"refresh it: hvcfilter compile {spec} -o {out}" in result.output
    doc = json.loads(_run("compile-check", "--format", "json", str(spec)).output)
    assert doc["format"] == "hvcfilter-compile-check-v1"
    assert doc["pairs"][0]["status"] == "stale"


def test_the_refresh_command_keeps_the_compile_options_and_refreshes(tmp_path: Path) -> None:
    # It dropped --byte-order, --no-merge and --kernel: running it left the pair stale.
    spec, out = _pair(tmp_path)
    options = ["--no-merge", "--byte-order", "big", "--kernel", "6.12"]
    result = _run("compile-check", *options, str(spec))
    assert result.exit_code == 1
    command = f"hvcfilter compile {spec} -o {out} --no-merge --byte-order big --kernel 6.12"
    assert f"refresh it: {command}" in result.output
    doc = json.loads(_run("compile-check", "--format", "json", *options, str(spec)).output)
    assert doc["pairs"][0]["refresh"] == command
    assert _run(*command.split()[1:]).exit_code == 0
    assert _run("compile-check", *options, str(spec)).exit_code == 0
    fresh = json.loads(_run("compile-check", "--format", "json", *options, str(spec)).output)
    assert fresh["pairs"][0]["refresh"] is None


def test_nothing_to_compare_is_clean(tmp_path: Path) -> None:
    spec = tmp_path / "vm.toml"
    spec.write_text(MINIMAL)
    result = _run("compile-check", str(spec))
    assert result.exit_code == 0
    assert "0 pair(s)" in result.output


def test_usage_and_unreadable_are_2(tmp_path: Path) -> None:
    assert _run("compile-check", "vm.toml=vm.exe").exit_code == 2
    result = _run("compile-check", f"{tmp_path / 'gone.toml'}={tmp_path / 'gone.bin'}")
    assert result.exit_code == 2
    assert "HVF001" in result.output


def test_a_spec_that_no_longer_compiles_is_1(tmp_path: Path) -> None:
    spec, out = _pair(tmp_path)
    spec.write_text('[[range]]\nbase = 0x80000000\nnr_functions = 1\naction = "deny"\n')
    result = _run("compile-check", str(spec))
    assert result.exit_code == 1
    assert f"BROKEN {spec} -> {out}" in result.output
    assert "HVF2" in result.output


def test_a_named_file_that_does_not_exist_is_2_not_nothing_to_compare(tmp_path: Path) -> None:
    # A typo in a CI job must not pass as "0 pair(s)".
    result = CliRunner().invoke(cli, ["compile-check", str(tmp_path / "typo.toml")])
    assert result.exit_code == 2
    assert f"{tmp_path / 'typo.toml'}: no such file" in result.stderr


def test_a_named_directory_is_2_not_nothing_to_compare(tmp_path: Path) -> None:
    folder = tmp_path / "vm.toml"
    folder.mkdir()
    result = CliRunner().invoke(cli, ["compile-check", str(folder)])
    assert result.exit_code == 2
    assert f"{folder}: is a directory" in result.stderr


def test_an_output_that_cannot_be_read_is_2_not_missing(tmp_path: Path) -> None:
    spec = tmp_path / "vm.toml"
    spec.write_text(MINIMAL)
    (tmp_path / "vm.bin").mkdir()  # root reads any file; a directory fails for everyone
    result = CliRunner().invoke(cli, ["compile-check", f"{spec}={tmp_path / 'vm.bin'}"])
    assert result.exit_code == 2
    assert f"cannot read {tmp_path / 'vm.bin'}: is a directory; name a file in it" in result.stderr
    assert "MISSING" not in result.stdout


def test_no_argument_checks_hvcfilter_toml_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As every command with no SPEC does; it used to check nothing and exit 0.
    monkeypatch.chdir(tmp_path)
    Path("hvcfilter.toml").write_text(MINIMAL)
    assert (
        _run("compile", "hvcfilter.toml", "--format", "hex", "-o", "hvcfilter.hex").exit_code == 0
    )
    assert _run("compile-check").exit_code == 0
    Path("hvcfilter.toml").write_text(MINIMAL.replace("0x100", "0x80"))
    result = _run("compile-check")
    assert result.exit_code == 1
    assert "STALE hvcfilter.toml -> hvcfilter.hex" in result.output


def test_a_text_output_that_differs_only_in_line_endings_says_so(tmp_path: Path) -> None:
    # The diff of its lines is empty: without a word, STALE had no visible cause.
    spec = tmp_path / "vm.toml"
    spec.write_text(MINIMAL)
    out = tmp_path / "vm.hex"
    assert _run("compile", str(spec), "--format", "hex", "-o", str(out)).exit_code == 0
    out.write_bytes(out.read_bytes().replace(b"\n", b"\r\n"))
    result = _run("compile-check", str(out))
    assert result.exit_code == 1
    assert "in CRLF where compile writes LF" in result.output


def test_a_pair_needs_both_names(tmp_path: Path) -> None:
    for arg in ("=vm.bin", "vm.toml="):
        result = CliRunner().invoke(cli, ["compile-check", arg])
        assert result.exit_code == 2
        assert "SPEC=OUTPUT needs both names" in result.stderr
