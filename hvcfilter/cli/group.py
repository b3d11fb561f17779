"""The ``hvcfilter`` click group, whose subcommands load on first use.

Each subcommand lives in its own module under ``hvcfilter.cli`` and is
imported only when it runs, so ``hvcfilter check`` does not pay for the
emulator, the trace parsers or the lab.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import click

from hvcfilter import __version__
from hvcfilter.cli._common import exit_for

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

__all__ = ["cli"]

# name -> (module, function, one-line help shown by `hvcfilter --help`)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": (
        "hvcfilter.cli.init",
        "init",
        "Write a starter hvcfilter.toml from a template (lock-down, hotplug, TRNG, SiP).",
    ),
    "check": (
        "hvcfilter.cli.check",
        "check",
        "Lint specs: will the kernel accept them, and do they do what was meant?",
    ),
    "explain": (
        "hvcfilter.cli.check",
        "explain",
        "Document a diagnostic code, or decode a function ID.",
    ),
    "compile": (
        "hvcfilter.cli.compile",
        "compile_",
        "Compile a spec into KVM_SET_DEVICE_ATTR payloads.",
    ),
    "decompile": (
        "hvcfilter.cli.compile",
        "decompile",
        "Turn a binary payload back into a canonical spec.",
    ),
    "diff": (
        "hvcfilter.cli.compile",
        "diff",
        "Compare the effective action of two specs or payloads.",
    ),
    "compile-check": (
        "hvcfilter.cli.compile_check",
        "compile_check",
        "Check that committed payloads are still what their specs compile to.",
    ),
    "simulate": (
        "hvcfilter.cli.simulate",
        "simulate",
        "Replay guest traces through the emulated kernel.",
    ),
    "schema": (
        "hvcfilter.cli.schema",
        "schema",
        "Print the JSON Schema of spec files (for taplo and editors).",
    ),
    "learn": (
        "hvcfilter.cli.learn",
        "learn",
        "Learn the least-privilege table from guest traces, for one VM or a fleet.",
    ),
    "completion": (
        "hvcfilter.cli.completion",
        "completion",
        "Print the shell completion script (bash, zsh, fish).",
    ),
    "lab": (
        "hvcfilter.cli.lab",
        "lab",
        "Prepare and inspect the real-kernel lab (qemu + Debian arm64 kernels).",
    ),
    "verify": (
        "hvcfilter.cli.lab",
        "verify",
        "Prove a table and the emulator on a real Linux KVM.",
    ),
}


class _LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_COMMANDS)

    # click answers --help and --version while it parses, outside the commands'
    # `guarded`, and ends a broken pipe there with exit 1, which reads as
    # findings. Parsing the group's options and the subcommand's (in invoke)
    # goes through these two, so their output errors exit as every other's;
    # so does a command module that fails to import (a broken install: exit 3,
    # no traceback). exit_for lets click's own exceptions and exits through.
    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except OSError as exc:
            exit_for(exc)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:  # exit_for maps each to its exit code
            exit_for(exc, debug=bool(ctx.obj and ctx.obj.get("debug")))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module = importlib.import_module(target[0])
        command: click.Command = getattr(module, target[1])
        return command

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        # Command names and their help from the table: a TAB imports no command module.
        from click.shell_completion import CompletionItem

        items = [
            CompletionItem(name, help=info[2])
            for name, info in _COMMANDS.items()
            if name.startswith(incomplete)
        ]
        # Options of the group itself, as click's own completion gives them.
        items += click.Command.shell_complete(self, ctx, incomplete)
        return items

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help comes from the table, so `--help` does not import every command.
        rows = [(name, info[2]) for name, info in _COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from hvcfilter.trace import re2_proof

    click.echo(f"hvcfilter, version {__version__}")
    click.echo(f"ftrace line proof: {re2_proof.describe()}")
    ctx.exit()


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=(
        "Exit codes: 0 clean, 1 findings (or a replay/verify mismatch), 2 usage error or "
        "unreadable input, 3 internal error; 130 when interrupted, 143 when terminated, 141 "
        "when the reader of the output goes away. With no SPEC argument, commands read "
        "hvcfilter.toml in the current directory."
    ),
)
@click.option(
    "-V",
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_show_version,
    help="Show the version and which ftrace line proof is in use, then exit.",
)
@click.option("--debug", is_flag=True, help="Show a traceback for internal errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Design, lint, compile and dry-run KVM/arm64 SMCCC filter tables."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
