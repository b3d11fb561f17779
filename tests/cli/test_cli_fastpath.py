"""The click-free path of ``check`` and ``simulate``: taken only where click would agree.

:mod:`hvcfilter.cli.fastpath` parses plain ``check`` and ``simulate``
arguments itself so that an editor's check on save, or a pipeline's replay,
does not import click. These tests hold it to three promises: a plain
invocation never imports click; whatever arguments it accepts, click parses
to the same options; and the output, stderr and exit code are the click
command's, byte for byte.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from hvcfilter.cli import fastpath
from hvcfilter.cli._common import COMPLETE_VAR
from hvcfilter.cli.check import check as click_check
from hvcfilter.cli.group import cli
from hvcfilter.cli.simulate import simulate as click_simulate

ROOT = Path(__file__).resolve().parents[2]
CLEAN = str(ROOT / "examples" / "vcpu-hotplug.toml")
WARNS = '[[range]]\nfunction = "PSCI_CPU_ON_64"\naction = "fwd_to_user"\n'
ERROR = '[[range]]\nbase = 0x80000000\nnr_functions = 1\naction = "deny"\n'


@pytest.fixture
def specs(tmp_path: Path) -> dict[str, str]:
    paths = {"clean": CLEAN, "missing": str(tmp_path / "absent.toml")}
    for name, text in (("warns", WARNS), ("error", ERROR)):
        path = tmp_path / f"{name}.toml"
        path.write_text(text)
        paths[name] = str(path)
    return paths


# The group's context settings: click caches a command's help option from the
# first context made for it, so a bare context would change `--help` for later tests.
_AS_IN_THE_GROUP: dict[str, Any] = {
    "resilient_parsing": False,
    "help_option_names": ["-h", "--help"],
}


def _click_params(argv: list[str]) -> fastpath.CheckArgs | None:
    """What click's own ``check`` parses ``argv`` into, or ``None`` when it refuses it."""
    try:
        ctx = click_check.make_context("check", list(argv[1:]), **_AS_IN_THE_GROUP)
    except (click.exceptions.Exit, click.ClickException):
        return None
    p = ctx.params
    return fastpath.CheckArgs(p["specs"], p["fmt"], p["strict"], p["kernel"], p["output"])


def _fast_and_click(argv: list[str]) -> tuple[tuple[bytes, bytes, object], ...]:
    """(stdout, stderr, exit code) of ``argv`` on the fast path, then through click."""
    runner = CliRunner()
    by_click = runner.invoke(cli, argv, catch_exceptions=False)
    with runner.isolation() as (out, err, _):
        with pytest.raises(SystemExit) as exit_info:
            code = fastpath.run(argv)
            sys.exit(code)
        fast = (out.getvalue(), err.getvalue(), exit_info.value.code)
    return fast, (by_click.stdout_bytes, by_click.stderr_bytes, by_click.exit_code)


# What a plain `check` must not import: click, and the standard modules whose
# import alone costs more than linting a small spec (dataclasses pulls in inspect).
HEAVY = ("click", "dataclasses", "inspect", "pathlib", "traceback", "tomllib", "pydantic")


def test_a_plain_check_imports_neither_click_nor_heavy_standard_modules() -> None:
    code = (
        "import sys\n"
        "from hvcfilter.cli import main\n"
        "try:\n"
        f"    main(['check', '--format', 'json', {CLEAN!r}])\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


PLAIN = [
    ["check", "{clean}"],
    ["check", "{warns}", "{clean}"],
    ["check", "--strict", "{warns}"],
    ["check", "{warns}", "--strict"],
    ["check", "--format", "json", "{error}"],
    ["check", "--format=sarif", "{warns}"],
    ["check", "--format", "text", "--format", "github", "{error}"],
    ["check", "--kernel", "6.1", "{clean}"],
    ["check", "--kernel=7.2", "--format", "gitlab", "{warns}"],
    ["check", "--format", "junit", "--strict", "{warns}"],
    ["check", "-o", "-", "{clean}"],
    ["check", "{missing}"],
    ["check", "{missing}", "{clean}"],
    ["check", "--", "{clean}"],
]


@pytest.mark.parametrize("template", PLAIN, ids=" ".join)
def test_plain_invocations_take_the_fast_path_and_print_what_click_prints(
    template: list[str], specs: dict[str, str]
) -> None:
    argv = [arg.format(**specs) for arg in template]
    assert fastpath.parse_check(argv) is not None, "not taken"
    assert fastpath.parse_check(argv) == _click_params(argv)

    fast, by_click = _fast_and_click(argv)
    assert fast == by_click


def test_the_fast_path_writes_a_report_file_as_click_does(
    tmp_path: Path, specs: dict[str, str]
) -> None:
    fast_out, click_out = tmp_path / "fast.json", tmp_path / "click.json"
    argv = ["check", "--format", "json", "--output", str(fast_out), specs["warns"]]
    assert fastpath.run(argv) == 0
    CliRunner().invoke(cli, ["check", "--format", "json", "-o", str(click_out), specs["warns"]])
    assert fast_out.read_bytes() == click_out.read_bytes() != b""


def test_refusing_to_overwrite_an_input_is_the_same_error_either_way(
    specs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["check", "-o", specs["warns"], specs["warns"]]
    with pytest.raises(SystemExit) as exit_info:
        fastpath.run(argv)
    fast_err = capsys.readouterr().err
    by_click = CliRunner().invoke(cli, argv)
    assert exit_info.value.code == by_click.exit_code == 2
    assert fast_err == by_click.stderr and "refusing to overwrite input" in fast_err


LEFT_TO_CLICK = [
    [],
    ["--debug", "check", "x.toml"],
    ["compile", "x.toml"],
    ["check", "--help"],
    ["check", "-h"],
    ["check", "--bogus"],
    ["check", "--no-cache", "x.toml"],  # simulate's flag: once a crash (exit 3) here
    ["check", "-x"],
    ["check", "--format"],
    ["check", "--format", "xml"],
    ["check", "--format=", "x.toml"],
    ["check", "--format", "--strict"],
    ["check", "--kernel", "9.9"],
    ["check", "--kernel", "-o", "x"],
    ["check", "-o"],
    ["check", "-oreport.txt", "x.toml"],
    ["check", "-o=report.txt", "x.toml"],
    ["check", "--output=", "x.toml"],
    ["check", "--strict=yes"],
    ["check", "--str"],
]


@pytest.mark.parametrize("argv", LEFT_TO_CLICK, ids=" ".join)
def test_anything_click_must_judge_is_left_to_click(argv: list[str]) -> None:
    assert fastpath.parse_check(argv) is None
    assert fastpath.run(argv) is None


def test_shell_completion_is_left_to_click(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(COMPLETE_VAR, "bash_complete")
    assert fastpath.parse_check(["check", "x.toml"]) is None


TOKENS = st.sampled_from(
    [
        "a.toml",
        "-",
        "--",
        "--strict",
        "--format",
        "json",
        "text",
        "--format=sarif",
        "--kernel",
        "6.12",
        "--kernel=7.2",
        "-o",
        "--output",
        "--output=r.txt",
        "-h",
        "--bogus",
        "",
        "=",
        "-oX",
    ]
)


@given(st.lists(TOKENS, max_size=8))
def test_what_the_fast_path_accepts_click_parses_the_same(tokens: list[str]) -> None:
    argv = ["check", *tokens]
    fast = fastpath.parse_check(argv)
    if fast is not None:
        assert fast == _click_params(argv)


def test_an_interrupt_is_exit_130_on_the_fast_path_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(_argv: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(fastpath, "parse_check", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        fastpath.run(["check", CLEAN])
    assert exit_info.value.code == 130
    assert capsys.readouterr().err == "hvcfilter: interrupted\n"


TRACES = ROOT / "tests" / "traces"
SIMULATE_PATHS = {
    "trace": str(TRACES / "sample-6.12.txt"),
    "jsonl": str(TRACES / "calls.jsonl"),
    "garbage": str(TRACES / "malformed.txt"),
    "spec": str(TRACES / "sample-filter.toml"),
    "other": str(ROOT / "examples" / "vcpu-hotplug.toml"),
    "payload": str(ROOT / "tests" / "golden" / "vcpu-hotplug.bin"),
}


def _click_simulate(argv: list[str]) -> fastpath.SimulateArgs | None:
    """What click's own ``simulate`` parses ``argv`` into, or ``None`` when it refuses it."""
    try:
        ctx = click_simulate.make_context("simulate", list(argv[1:]), **_AS_IN_THE_GROUP)
    except (click.exceptions.Exit, click.ClickException):
        return None
    return fastpath.SimulateArgs(**ctx.params)


def test_a_plain_simulate_imports_neither_click_nor_dataclasses() -> None:
    code = (
        "import sys\n"
        "from hvcfilter.cli import main\n"
        "try:\n"
        f"    main(['simulate', '--spec', {SIMULATE_PATHS['spec']!r}, '--format', 'json',"
        f" {SIMULATE_PATHS['trace']!r}])\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "heavy = ('click', 'dataclasses', 'inspect', 'pydantic')\n"
        "loaded = [m for m in heavy if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


PLAIN_SIMULATE = [
    ["simulate", "{trace}"],
    ["simulate", "--spec", "{spec}", "{trace}"],
    ["simulate", "--spec={spec}", "--format", "json", "{trace}", "{jsonl}"],
    ["simulate", "--payload", "{payload}", "--format", "jsonl", "{jsonl}"],
    ["simulate", "--spec", "{spec}", "--baseline", "{other}", "{trace}"],
    ["simulate", "--spec", "{other}", "--baseline={payload}", "--format=json", "{jsonl}"],
    ["simulate", "--strict", "--spec", "{spec}", "{garbage}"],
    ["simulate", "--spec", "{spec}", "{garbage}", "--strict", "--format", "jsonl"],
    ["simulate", "--kernel", "7.2", "--spec", "{other}", "{jsonl}"],
    ["simulate", "--trace-format", "ftrace", "--spec", "{spec}", "{trace}"],
    ["simulate", "--trace-format=jsonl", "--format", "text", "--format", "json", "{jsonl}"],
    ["simulate", "--spec", "{spec}", "--", "{trace}"],
    ["simulate", "--no-cache", "--spec", "{spec}", "{trace}"],
    ["simulate", "--spec", "{spec}", "{trace}", "absent.trace"],
    ["simulate", "--spec", "absent.toml", "{trace}"],
    ["simulate", "--payload", "{spec}", "{trace}"],
]


@pytest.mark.parametrize("template", PLAIN_SIMULATE, ids=" ".join)
def test_plain_simulations_take_the_fast_path_and_print_what_click_prints(
    template: list[str],
) -> None:
    argv = [arg.format(**SIMULATE_PATHS) for arg in template]
    assert fastpath.parse_simulate(argv) is not None, "not taken"
    assert fastpath.parse_simulate(argv) == _click_simulate(argv)

    fast, by_click = _fast_and_click(argv)
    assert fast == by_click
    assert by_click[0] or by_click[2] == 2  # the comparison compared something


SIMULATE_LEFT_TO_CLICK = [
    ["simulate"],
    ["simulate", "--spec", "s.toml"],
    ["simulate", "--help"],
    ["simulate", "t", "-h"],
    ["simulate", "--spec"],
    ["simulate", "--spec", "--strict", "t"],
    ["simulate", "--spec", "a.toml", "--payload", "b.bin", "t"],
    ["simulate", "--format", "xml", "t"],
    ["simulate", "--format", "sarif", "t"],
    ["simulate", "--trace-format", "pcap", "t"],
    ["simulate", "--kernel", "9.9", "t"],
    ["simulate", "--strict=1", "t"],
    ["simulate", "--baseline=", "t"],
    ["simulate", "-o", "out", "t"],
    ["simulate", "--bogus", "t"],
    ["--debug", "simulate", "t"],
]


@pytest.mark.parametrize("argv", SIMULATE_LEFT_TO_CLICK, ids=" ".join)
def test_any_simulation_click_must_judge_is_left_to_click(argv: list[str]) -> None:
    assert fastpath.parse_simulate(argv) is None
    assert fastpath.run(argv) is None


SIMULATE_TOKENS = st.sampled_from(
    [
        "t.txt",
        "-",
        "--",
        "--strict",
        "--spec",
        "s.toml",
        "--spec=s.toml",
        "--payload",
        "p.bin",
        "--kernel",
        "6.12",
        "--kernel=7.2",
        "--trace-format",
        "jsonl",
        "--trace-format=csv",
        "--format",
        "json",
        "--format=jsonl",
        "--baseline",
        "--baseline=b.toml",
        "-h",
        "--bogus",
        "",
        "=",
    ]
)


@given(st.lists(SIMULATE_TOKENS, max_size=8))
def test_what_the_fast_path_accepts_of_simulate_click_parses_the_same(tokens: list[str]) -> None:
    argv = ["simulate", *tokens]
    fast = fastpath.parse_simulate(argv)
    if fast is not None:
        assert fast == _click_simulate(argv)
