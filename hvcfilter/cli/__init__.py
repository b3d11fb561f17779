"""The ``hvcfilter`` command line.

Each subcommand lives in its own module under ``hvcfilter.cli``; each parses
its options, calls one domain function and hands the result to one renderer.
:func:`main` first offers the arguments to :mod:`.fastpath`, which runs the
invocations editors, hooks and pipelines repeat (``hvcfilter check`` and
``hvcfilter simulate`` with plain options) without importing click;
anything else goes to the click group of :mod:`.group`.

Imports: everything else; nothing in the package imports this room.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["cli", "main"]


def main(argv: list[str] | None = None) -> Any:
    """Run the command line; the console-script entry point."""
    args = argv if argv is not None else sys.argv[1:]
    from hvcfilter.cli._common import ensure_std_streams, exit_on_sigterm

    ensure_std_streams()
    exit_on_sigterm()
    if args[:1] in (["check"], ["simulate"]):  # others do not pay for the fast path's import
        from hvcfilter.cli import fastpath

        code = fastpath.run(args)
        if code is not None:
            sys.exit(code)
    from hvcfilter.cli.group import cli

    return cli.main(args=args, prog_name="hvcfilter")


def __getattr__(name: str) -> Any:
    # The click group and its command table, loaded only when asked for (PEP 562):
    # importing this package must not import click.
    if name in {"cli", "_COMMANDS"}:
        from hvcfilter.cli import group

        return getattr(group, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
