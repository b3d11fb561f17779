"""The ``check`` and ``explain`` commands: lint specs, document codes, decode function IDs.

Each command parses its options, calls one library function
(:func:`hvcfilter.lint.lint` or :func:`hvcfilter.explain.explain`), renders
the result with :mod:`hvcfilter.render.check` or :mod:`hvcfilter.render.explain` and exits with the
documented code: 0 clean, 1 findings, 2 usage error or unreadable file,
3 internal error. The body of ``check`` is :func:`hvcfilter.cli.fastpath.run_check`,
which plain invocations reach without click.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import click

from hvcfilter.cli._common import (
    ExitCode,
    complete_kernel,
    complete_path,
    guarded,
    kernel_profile,
    use_color,
)
from hvcfilter.cli.fastpath import CheckArgs, exit_code, run_check
from hvcfilter.render.check import Format

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

__all__ = ["check", "exit_code", "explain"]


@click.command(
    epilog="Exit codes: 0 no errors, 1 errors (or warnings with --strict), "
    "2 usage error or unreadable file, 3 internal error."
)
@click.argument("specs", nargs=-1, metavar="[SPEC]...", shell_complete=complete_path)
@click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in Format]),
    default=Format.TEXT.value,
    show_default=True,
    help="text for people, json (stable, versioned), sarif (2.1.0), github annotations, "
    "gitlab (Code Quality) or junit (XML test report; --strict makes warnings failures).",
)
@click.option("--strict", is_flag=True, help="Warnings fail the check too (exit code 1).")
@click.option(
    "--kernel",
    callback=kernel_profile,
    shell_complete=complete_kernel,
    metavar="VERSION",
    help="Kernel profile (e.g. 6.1, 6.12, 7.2); overrides each spec's [filter] kernel.",
)
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    shell_complete=complete_path,
    help="Write the report to FILE instead of stdout.",
)
@click.pass_context
@guarded
def check(  # noqa: PLR0917 - one parameter per option
    ctx: click.Context,
    specs: tuple[str, ...],
    fmt: str,
    strict: bool,
    kernel: str | None,
    output: str | None,
) -> None:
    """Lint SPEC files (default: hvcfilter.toml): will the kernel accept them, and do they
    do what was meant? Every file is checked, even after one fails."""
    # The body is shared with the click-free path (hvcfilter.cli.fastpath).
    ctx.exit(int(run_check(CheckArgs(specs, fmt, strict, kernel, output))))


def _complete_query(
    _ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    from click.shell_completion import CompletionItem

    from hvcfilter.explain import completions

    return [CompletionItem(word) for word in completions(incomplete)]


class _QueryCommand(click.Command):
    """A command whose argument may be a negative number (``explain -1``), not an option.

    click reads ``-1`` as an unknown option. Ignoring unknown options instead
    would also take a misspelt ``--formt json`` as two extra arguments, with a
    puzzling message. So a token that reads as a negative number, and is
    neither an option's value nor after ``--``, is parsed as a stand-in that
    cannot look like an option, and given back once click is done.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        valued = {
            opt
            for param in self.params
            if isinstance(param, click.Option) and not param.is_flag
            for opt in param.opts
        }
        numbers: dict[str, str] = {}
        rewritten: list[str] = []
        for arg in args:
            plain = "--" not in rewritten and not (rewritten and rewritten[-1] in valued)
            if plain and _NEGATIVE_NUMBER.fullmatch(arg):
                stand_in = f"\x00{len(numbers)}\x00"  # closed: \x001\x00 is in no \x0010\x00
                numbers[stand_in] = arg
                rewritten.append(stand_in)
            else:
                rewritten.append(arg)
        try:
            rest = super().parse_args(ctx, rewritten)
        except click.UsageError as exc:  # "extra argument (STAND-IN)": name what was typed
            message = exc.format_message()
            if not any(stand_in in message for stand_in in numbers):
                raise
            for stand_in, number in numbers.items():
                message = message.replace(stand_in, number)
            raise click.UsageError(message, ctx=exc.ctx) from None
        query = ctx.params.get("query")
        if isinstance(query, str) and query in numbers:
            ctx.params["query"] = numbers[query]
        return [numbers.get(arg, arg) for arg in rest]


_NEGATIVE_NUMBER = re.compile(r"-[0-9][0-9a-zA-Z_.]*")


@click.command(cls=_QueryCommand)
@click.argument("query", metavar="CODE|NAME|ID", shell_complete=_complete_query)
@click.option(
    "--spec",
    "spec_path",
    metavar="SPEC",
    shell_complete=complete_path,
    help="With a function ID: say which range of SPEC applies and what the guest gets.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json (stable, versioned) for tools.",
)
@click.pass_context
@guarded
def explain(ctx: click.Context, query: str, spec_path: str | None, fmt: str) -> None:
    """Print the documentation of a diagnostic code (HVF201) or rule name, or decode a
    function ID (0x84000003) or catalogue name (PSCI_CPU_ON_32)."""
    # Imported here: `check`, which shares this module, never needs them.
    from hvcfilter.explain import explain as explain_query
    from hvcfilter.render.explain import ExplainFormat, render_explanation

    result = explain_query(query, spec_path)
    click.echo(render_explanation(result, ExplainFormat(fmt), color=use_color(None)), nl=False)
    ctx.exit(int(ExitCode.OK))
