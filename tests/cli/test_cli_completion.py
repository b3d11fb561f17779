"""Shell completion through click's protocol, as bash, zsh and fish call ``hvcfilter`` back."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner
from suite_paths import ROOT

from hvcfilter.cli import cli


def complete(shell: str, words: str) -> list[str]:
    """The completion lines ``hvcfilter`` prints for the command line ``words`` (cursor at end)."""
    parts = words.split(" ")
    env = {
        **os.environ,
        "_HVCFILTER_COMPLETE": f"{shell}_complete",
        "COMP_WORDS": words,
        # bash and zsh pass the index of the word under the cursor, fish the word itself.
        "COMP_CWORD": parts[-1] if shell == "fish" else str(len(parts) - 1),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "hvcfilter"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return proc.stdout.splitlines()


def test_bash_completes_command_names_without_loading_them() -> None:
    assert complete("bash", "hvcfilter co") == [
        "plain,compile",
        "plain,compile-check",
        "plain,completion",
    ]


def test_bash_completes_options_of_a_subcommand() -> None:
    assert complete("bash", "hvcfilter check --st") == ["plain,--strict"]


def test_spec_and_trace_arguments_complete_as_files() -> None:
    assert complete("bash", "hvcfilter check exa") == ["file,exa"]
    assert complete("bash", "hvcfilter simulate tests/tr") == ["file,tests/tr"]


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("HVF30", "HVF302"),  # diagnostic codes
        ("denies-b", "denies-boot-call"),  # rule names
        ("PSCI_CPU_ON", "PSCI_CPU_ON_64"),  # catalogue names
        ("trn", "trng"),  # services
        ("trusted-o", "trusted-os"),  # owners
    ],
)
def test_explain_completes_what_it_accepts(prefix: str, expected: str) -> None:
    words = [line.split(",", 1)[1] for line in complete("bash", f"hvcfilter explain {prefix}")]
    assert expected in words
    assert all(w.casefold().startswith(prefix.casefold()) for w in words)
    # What is offered is accepted: explain knows the word.
    result = CliRunner().invoke(cli, ["explain", expected])
    assert result.exit_code == 0, result.output


def test_zsh_and_fish_formats() -> None:
    zsh = complete("zsh", "hvcfilter explain denies-b")
    assert zsh[:3] == ["plain", "denies-boot-call", "_"]
    fish = complete("fish", "hvcfilter explain denies-b")
    assert fish == ["plain,denies-boot-call"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_a_script_that_calls_hvcfilter_back(shell: str) -> None:
    result = CliRunner().invoke(cli, ["completion", shell])
    assert result.exit_code == 0
    assert "_HVCFILTER_COMPLETE" in result.output and f"{shell}_complete" in result.output


def test_bash_script_parses() -> None:
    bash = shutil.which("bash")
    assert bash is not None
    script = CliRunner().invoke(cli, ["completion", "bash"]).output
    subprocess.run([bash, "-n"], input=script, text=True, check=True)


def test_unknown_shell_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["completion", "tcsh"])
    assert result.exit_code == 2 and "tcsh" in result.output


@pytest.mark.parametrize("command", ["check", "compile", "decompile", "simulate", "learn"])
def test_kernel_completes_the_known_profiles(command: str) -> None:
    from hvcfilter.kernel.profiles import PROFILES

    words = [line.split(",", 1)[1] for line in complete("bash", f"hvcfilter {command} --kernel ")]
    assert words == list(PROFILES)
    assert complete("bash", f"hvcfilter {command} --kernel 7") == ["plain,7.2"]


def test_init_template_completes_the_templates() -> None:
    from hvcfilter.spec.templates import templates

    words = [line.split(",", 1)[1] for line in complete("bash", "hvcfilter init -t ")]
    assert words == [t.name for t in templates()]
