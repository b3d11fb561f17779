"""CLI tests of ``hvcfilter check`` and ``hvcfilter explain``: every exit code and format."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from suite_paths import EXAMPLES

from hvcfilter import lint
from hvcfilter.cli import cli
from hvcfilter.cli._common import ExitCode
from hvcfilter.cli.check import exit_code
from hvcfilter.render.check import Format

CLEAN = '[[range]]\nowner = "sip"\naction = "fwd_to_user"\n'
WARNING_ONLY = '[[range]]\nfunction = "PSCI_CPU_ON_64"\naction = "fwd_to_user"\n'
NOTE_ONLY = (
    '[[range]]\nbase = 0xC2000000\nnr_functions = 0x10\naction = "deny"\n\n'
    '[[range]]\nbase = 0xC2000010\nnr_functions = 0x10\naction = "deny"\n'
)
ERROR = '[[range]]\nbase = 0x80000000\nnr_functions = 1\naction = "deny"\n'


def _run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# --------------------------------------------------------------------------- exit codes


def test_clean_spec_exits_0(tmp_path: Path) -> None:
    result = _run("check", _write(tmp_path, "ok.toml", CLEAN))
    assert result.exit_code == 0, result.output
    assert result.output == "checked 1 file: no problems found\n"


def test_errors_exit_1(tmp_path: Path) -> None:
    result = _run("check", _write(tmp_path, "bad.toml", ERROR))
    assert result.exit_code == 1
    assert "error HVF202 reserved-range" in result.output


def test_warnings_exit_0_unless_strict(tmp_path: Path) -> None:
    path = _write(tmp_path, "warn.toml", WARNING_ONLY)
    assert _run("check", path).exit_code == 0
    strict = _run("check", "--strict", path)
    assert strict.exit_code == 1
    assert "warning HVF301" in strict.output


def test_notes_never_fail(tmp_path: Path) -> None:
    path = _write(tmp_path, "note.toml", NOTE_ONLY)
    assert _run("check", "--strict", path).exit_code == 0


def test_unreadable_file_exits_2_and_other_files_are_still_checked(tmp_path: Path) -> None:
    bad = _write(tmp_path, "bad.toml", ERROR)
    result = _run("check", str(tmp_path / "missing.toml"), bad)
    assert result.exit_code == 2
    assert "HVF001" in result.output and "HVF202" in result.output


def test_syntax_error_exits_1_with_position(tmp_path: Path) -> None:
    path = _write(tmp_path, "syntax.toml", "[[range]]\nbase = 0x8400000G\n")
    result = _run("check", path)
    assert result.exit_code == 1
    assert f"{path}:2:" in result.output and "HVF002" in result.output


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe\x00\x01", b"[[range]]\nbase = [1, {]\n", b"\x00" * 10, b"[vm]\nstd = 3\n"],
)
def test_bad_input_never_gives_a_traceback(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "junk.toml"
    path.write_bytes(content)
    result = CliRunner().invoke(cli, ["check", str(path)])
    assert result.exit_code in (1, 2)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output


def test_directory_is_unreadable(tmp_path: Path) -> None:
    result = _run("check", str(tmp_path))
    assert result.exit_code == 2
    assert "is a directory" in result.output


@pytest.mark.parametrize("command", ["check", "compile", "decompile", "diff"])
def test_an_endless_input_is_refused_at_the_cap_not_read_to_exhaustion(command: str) -> None:
    # /dev/zero ran the process out of memory: "internal error: MemoryError", exit 3.
    args = [command, "/dev/zero"] + (["/dev/zero"] if command == "diff" else [])
    result = _run(*args)
    assert result.exit_code == 2
    assert "cannot read /dev/zero: larger than 256 MiB" in result.output
    assert "internal error" not in result.output


def test_unknown_option_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["check", "--colour", _write(tmp_path, "ok.toml", CLEAN)])
    assert result.exit_code == 2
    assert "No such option" in result.output


def test_bad_format_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["check", "--format", "xml", _write(tmp_path, "ok.toml", CLEAN)]
    )
    assert result.exit_code == 2


def test_internal_error_exits_3_without_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(spec: object, loaded: object = ()) -> list[object]:
        raise RuntimeError("boom")

    monkeypatch.setattr(lint, "check_spec", broken)
    result = CliRunner().invoke(cli, ["check", _write(tmp_path, "ok.toml", CLEAN)])
    assert result.exit_code == 3
    assert "internal error: RuntimeError: boom" in result.output
    assert "Traceback" not in result.output


def test_default_spec_is_hvcfilter_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    missing = runner.invoke(cli, ["check"])
    assert missing.exit_code == 2 and "hvcfilter.toml" in missing.output
    Path("hvcfilter.toml").write_text(ERROR)
    found = runner.invoke(cli, ["check"])
    assert found.exit_code == 1 and "hvcfilter.toml:2:1: error HVF202" in found.output


def test_exit_code_function() -> None:
    unreadable = lint.lint(["/nonexistent/x.toml"])
    assert exit_code(unreadable, strict=False) is ExitCode.USAGE
    warn = lint.LintReport((lint.lint_text(WARNING_ONLY),))
    assert exit_code(warn, strict=False) is ExitCode.OK
    assert exit_code(warn, strict=True) is ExitCode.FINDINGS


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize("fmt", [f.value for f in Format])
def test_every_format_runs_with_the_same_exit_code(tmp_path: Path, fmt: str) -> None:
    path = _write(tmp_path, "bad.toml", ERROR)
    result = _run("check", "--format", fmt, path)
    assert result.exit_code == 1
    assert "HVF202" in result.output


def test_json_format(tmp_path: Path) -> None:
    result = _run("check", "--format", "json", _write(tmp_path, "bad.toml", ERROR))
    data = json.loads(result.output)
    assert data["version"] == 1
    assert data["summary"]["errors"] == 1
    assert data["files"][0]["diagnostics"][0]["location"]["line"] == 2


def test_sarif_format(tmp_path: Path) -> None:
    result = _run("check", "--format", "sarif", _write(tmp_path, "bad.toml", ERROR))
    log = json.loads(result.output)
    assert log["version"] == "2.1.0"
    assert log["runs"][0]["results"][0]["ruleId"] == "HVF202"


def test_github_format(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.toml", ERROR)
    result = _run("check", "--format", "github", path)
    assert result.output.startswith(
        f"::error file={path},line=2,col=1,title=HVF202 reserved-range::"
    )


def test_text_has_no_colour_off_a_terminal(tmp_path: Path) -> None:
    result = _run("check", _write(tmp_path, "bad.toml", ERROR))
    assert "\x1b[" not in result.output


def test_no_color_wins_even_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hvcfilter.cli import _common

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    assert _common.use_color(None) is False
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "xterm-256color")
    assert _common.use_color(None) is True
    assert _common.use_color("out.txt") is False
    monkeypatch.setenv("TERM", "dumb")  # a terminal that cannot show escapes
    assert _common.use_color(None) is False


def test_output_file(tmp_path: Path) -> None:
    spec = _write(tmp_path, "bad.toml", ERROR)
    out = tmp_path / "report.sarif"
    result = _run("check", "--format", "sarif", "-o", str(out), spec)
    assert result.exit_code == 1
    assert result.output == ""
    assert json.loads(out.read_text())["version"] == "2.1.0"


def test_output_never_overwrites_an_input(tmp_path: Path) -> None:
    spec = _write(tmp_path, "bad.toml", ERROR)
    result = CliRunner().invoke(cli, ["check", "-o", spec, spec])
    assert result.exit_code == 2
    assert Path(spec).read_text() == ERROR


def test_output_never_overwrites_the_default_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "hvcfilter.toml", ERROR)
    result = CliRunner().invoke(cli, ["check", "-o", "hvcfilter.toml"])
    assert result.exit_code == 2
    assert "refusing to overwrite input" in result.stderr
    assert (tmp_path / "hvcfilter.toml").read_text() == ERROR


# --------------------------------------------------------------------------- explain


def test_explain_code() -> None:
    result = _run("explain", "HVF201")
    assert result.exit_code == 0
    assert result.output.startswith("HVF201 overlapping-ranges (error)")
    assert "Fail:" in result.output
    assert result.output.endswith("\nDocs: docs/rules.md#hvf201\n")


def test_explain_name_and_json() -> None:
    result = _run("explain", "twin-gap", "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["code"] == "HVF301"
    assert data["docs"] == "docs/rules.md#hvf301"


def test_explain_function_id() -> None:
    result = _run("explain", "0x84000003")
    assert result.exit_code == 0
    assert result.output.splitlines()[0] == "0x84000003  PSCI_CPU_ON_32"
    assert "twin           0xC4000003 PSCI_CPU_ON_64" in result.output


def test_explain_of_a_negative_number_says_why_it_is_no_id() -> None:
    # Not click's "No such option: -1": the query is answered, options still work.
    result = CliRunner().invoke(cli, ["explain", "-1", "--format", "json"])
    assert result.exit_code == 2
    assert "-1 is not a 32-bit function ID" in result.stderr
    after = CliRunner().invoke(cli, ["explain", "--format", "json", "-0x10"])
    assert after.exit_code == 2 and "-0x10 is not a 32-bit function ID" in after.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["-1", "--"], "-1 is not a 32-bit function ID"),
        (["-1", "--spec"], "Option '--spec' requires an argument"),
        (["-1", "--format"], "Option '--format' requires an argument"),
        (["-1.5"], "'-1.5' is not a diagnostic code, rule name, function ID"),
        (["-1", "-2"], "unexpected extra argument (-2)"),
        (["--", "-1"], "-1 is not a 32-bit function ID"),
        ([f"-{n}" for n in range(1, 13)], "arguments (" + " ".join(f"-{n}" for n in range(2, 13))),
    ],
)
def test_explain_of_negative_numbers_beside_other_arguments(args: list[str], said: str) -> None:
    result = CliRunner().invoke(cli, ["explain", *args])
    assert result.exit_code == 2
    assert said in result.stderr


def test_explain_of_a_misspelt_option_names_the_option() -> None:
    # Accepting "-1" as a query once made "--formt json X" two "extra arguments".
    result = CliRunner().invoke(cli, ["explain", "--formt", "json", "0x84000000"])
    assert result.exit_code == 2
    assert "No such option '--formt'. Did you mean '--format'?" in result.stderr


def test_explain_function_name() -> None:
    result = _run("explain", "PSCI_SYSTEM_OFF_32")
    assert result.exit_code == 0 and "0x84000008" in result.output


def test_explain_a_service_lists_its_well_known_calls() -> None:
    result = _run("explain", "trng")
    assert result.exit_code == 0
    names = re.findall(r"^0x[0-9A-F]{8}  (\w+)", result.output, flags=re.MULTILINE)
    assert names == ["TRNG_VERSION", "TRNG_FEATURES", "TRNG_GET_UUID", "TRNG_RND32", "TRNG_RND64"]


def test_explain_with_spec(tmp_path: Path) -> None:
    path = _write(tmp_path, "s.toml", WARNING_ONLY)
    result = _run("explain", "0xC4000003", "--spec", path)
    assert result.exit_code == 0
    assert "range[0] (fwd_to_user 0xC4000003 PSCI_CPU_ON_64)" in result.output
    assert "KVM_EXIT_HYPERCALL" in result.output
    other = _run("explain", "0x84000003", "--spec", path, "--format", "json")
    data = json.loads(other.output)["functions"][0]
    assert data["spec"]["covering"] == []
    assert "no deny or fwd_to_user range applies" in data["spec"]["outcome"]


def test_explain_with_unreadable_spec_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["explain", "0x84000003", "--spec", str(tmp_path / "missing.toml")]
    )
    assert result.exit_code == 2
    missing = tmp_path / "missing.toml"
    # Said once, not "cannot use F for explain: F: cannot read F: no such file".
    assert result.stderr == (
        f"hvcfilter: error: cannot read {missing}: no such file; "
        "check the path, or create the file\n"
    )


def test_explain_with_a_payload_for_a_spec_says_how_to_turn_it_into_one(tmp_path: Path) -> None:
    # explain dropped the hint that check and simulate gave: the way out is decompile.
    payload = tmp_path / "vm.bin"
    compiled = _run("compile", str(EXAMPLES / "minimal.toml"), "-o", str(payload))
    assert compiled.exit_code == 0
    result = CliRunner().invoke(cli, ["explain", "0x84000003", "--spec", str(payload)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert f"{payload} is a binary payload of" in result.stderr
    assert f"`hvcfilter decompile {payload}` turns it into a spec" in result.stderr
    assert "--payload" not in result.stderr  # explain has no such option


def test_explain_with_a_broken_spec_names_the_line(tmp_path: Path) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text('[filter]\nkernel = "6.12"\nx = 1\n')
    result = CliRunner().invoke(cli, ["explain", "0x84000003", "--spec", str(spec)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"hvcfilter: error: cannot use {spec} for explain: {spec}:3:1: unknown key 'filter.x'\n"
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("HVF299", "unknown diagnostic code"),
        ("psci_cpu_onn_32", "did you mean"),
        ("0x1FFFFFFFF", "32-bit"),
    ],
)
def test_explain_unknown_exits_2(query: str, expected: str) -> None:
    result = CliRunner().invoke(cli, ["explain", query])
    assert result.exit_code == 2
    assert expected in result.output
    assert "Traceback" not in result.output


def test_explain_needs_a_query() -> None:
    assert CliRunner().invoke(cli, ["explain"]).exit_code == 2


def test_help_lists_exit_codes() -> None:
    result = _run("check", "--help")
    assert result.exit_code == 0
    assert "2 usage error or unreadable file" in " ".join(result.output.split())


def test_kernel_option_overrides_the_spec_profile(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "t.toml",
        '[filter]\nkernel = "6.12"\n[[range]]\naction = "deny"\nbase = 0xC2000000\n'
        "nr_functions = 0x10\n",
    )
    assert _run("check", path).exit_code == ExitCode.OK
    result = _run("check", "--kernel", "6.1", path)
    assert result.exit_code == ExitCode.FINDINGS
    assert "HVF207" in result.output and "fail with EINVAL" in result.output
    assert _run("check", "--kernel", "5.99", path).exit_code == ExitCode.USAGE


def test_dry_run_json_on_6_1_names_the_probe(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "t.toml", '[[range]]\naction = "deny"\nbase = 0xC2000000\nnr_functions = 1\n'
    )
    result = _run("compile", path, "--dry-run", "--kernel", "6.1", "--format", "json")
    assert result.exit_code == ExitCode.FINDINGS
    doc = json.loads(result.stdout)
    assert doc["filter_available"] is False and doc["probe_result"] == "EINVAL"
    assert [s["result"] for s in doc["steps"]] == ["EINVAL"]


def test_an_escape_sequence_in_a_file_name_is_shown_escaped(tmp_path: Path) -> None:
    spec = tmp_path / "vm\x1b[2J.toml"
    spec.write_text('[filter]\nkernel = "6.12"\nx = 1\n')
    result = _run("check", str(spec))
    assert "\x1b" not in result.output
    assert f"{tmp_path}/vm\\x1b[2J.toml:3:1: error HVF102" in result.output
