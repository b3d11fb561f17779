"""``--help`` of every command: each option is explained, and ``python -m hvcfilter`` runs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from hvcfilter.cli import _COMMANDS, cli


def _commands() -> Iterator[tuple[str, click.Command]]:
    ctx = click.Context(cli)
    for name in _COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None
        yield name, command
        if isinstance(command, click.Group):
            for sub in command.list_commands(ctx):
                subcommand = command.get_command(ctx, sub)
                assert subcommand is not None
                yield f"{name} {sub}", subcommand


@pytest.mark.parametrize(("name", "command"), list(_commands()), ids=str)
def test_every_option_has_a_help_text(name: str, command: click.Command) -> None:
    undocumented = [p.opts[0] for p in command.params if isinstance(p, click.Option) and not p.help]
    assert undocumented == [], f"hvcfilter {name}: options without help"
    result = CliRunner().invoke(cli, [*name.split(), "--help"], prog_name="hvcfilter")
    assert result.exit_code == 0 and "Usage: hvcfilter" in result.output


def test_decompile_kernel_help_does_not_mention_a_spec() -> None:
    result = CliRunner().invoke(cli, ["decompile", "--help"])
    assert "spec's [filter] kernel" not in result.output


def test_python_dash_m() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hvcfilter", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.startswith("hvcfilter, version ")


@pytest.mark.parametrize("installed", [True, False])
def test_version_names_the_ftrace_line_proof(
    monkeypatch: pytest.MonkeyPatch, installed: bool
) -> None:
    from hvcfilter.trace import re2_proof

    if installed and re2_proof.chunk_proof() is None:
        pytest.skip("google-re2 (the fast extra) is absent")
    if not installed:
        monkeypatch.setattr(re2_proof, "chunk_proof", lambda: None)
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    first, proof = result.output.splitlines()
    assert first.startswith("hvcfilter, version ")
    if installed:
        assert proof.startswith("ftrace line proof: RE2 (google-re2 1.")
    else:
        assert (
            proof
            == "ftrace line proof: pure Python (pip install 'hvcfilter[fast]' for the RE2 proof)"
        )


def test_a_command_module_that_fails_to_import_is_an_internal_error_without_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A broken install (a module missing from the wheel): exit 3 and one line, never a traceback.
    monkeypatch.setitem(_COMMANDS, "broken", ("hvcfilter.cli.no_such_module", "x", "Broken."))
    result = CliRunner().invoke(cli, ["broken"])
    assert result.exit_code == 3
    assert "internal error: ModuleNotFoundError" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
