"""``hvcfilter completion SHELL``: the shell's completion script, from click's own mechanism.

The script calls ``hvcfilter`` back with ``_HVCFILTER_COMPLETE`` set, so
completions always match the installed version: commands and options from
the click definitions, file paths for spec, payload and trace arguments, and
for ``explain`` the diagnostic codes, rule names, catalogue names, services
and owners.
"""

from __future__ import annotations

import click

from hvcfilter.cli._common import COMPLETE_VAR, guarded

__all__ = ["completion"]

SHELLS = ("bash", "zsh", "fish")


@click.command(
    epilog='Install: bash: `eval "$(hvcfilter completion bash)"` in ~/.bashrc; '
    'zsh: `eval "$(hvcfilter completion zsh)"` in ~/.zshrc; '
    "fish: `hvcfilter completion fish > ~/.config/fish/completions/hvcfilter.fish`."
)
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
@guarded
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish)."""
    from click.shell_completion import get_completion_class

    from hvcfilter.cli import cli

    cls = get_completion_class(shell)
    assert cls is not None  # every name in SHELLS is one of click's
    click.echo(cls(cli, {}, "hvcfilter", COMPLETE_VAR).source())
