"""Plumbing shared by the subcommands: exit codes, error mapping, formats and output files.

This is the only place that turns library exceptions into exit codes and
one-line messages; command modules stay a few lines of option parsing, one
library call and one render.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import traceback
from collections.abc import Callable, Iterable
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import click

from hvcfilter.errors import HvcFilterError

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

__all__ = [
    "ExitCode",
    "complete_path",
    "guarded",
    "kernel_profile",
    "use_color",
    "write_output",
]

P = ParamSpec("P")
R = TypeVar("R")


class ExitCode(IntEnum):
    """The documented exit codes of every command."""

    OK = 0
    FINDINGS = 1
    USAGE = 2
    INTERNAL = 3


def _fail(message: str, code: ExitCode) -> None:
    click.echo(f"hvcfilter: error: {message}", err=True)
    sys.exit(int(code))


def guarded(func: Callable[P, R]) -> Callable[P, R]:
    """Map deliberate errors to exit 2 and anything unexpected to exit 3, without a traceback.

    ``--debug`` (on the group) prints the traceback of an internal error.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except HvcFilterError as exc:
            _fail(str(exc), ExitCode.USAGE)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("hvcfilter: interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:
            # The reader went away (`| head`): end quietly, as a shell tool killed by
            # SIGPIPE would (128 + 13), rather than claim findings.
            # Point stdout at /dev/null so the flush at exit does not fail a second time.
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)
        except Exception as exc:  # the last line of defence: no traceback for users
            ctx = click.get_current_context(silent=True)
            debug = bool(ctx and ctx.find_root().obj and ctx.find_root().obj.get("debug"))
            if debug:
                traceback.print_exc()
            _fail(
                f"internal error: {type(exc).__name__}: {exc} "
                "(please report it; --debug shows the traceback)",
                ExitCode.INTERNAL,
            )
        raise AssertionError("unreachable")

    return wrapper


def write_output(
    data: bytes, output: str | None, *, binary: bool, inputs: Iterable[str | Path] = ()
) -> None:
    """Send output to a file (atomically) or to stdout (``None`` or ``-``).

    Binary data is refused on a terminal: it would garble it.

    Raises:
        click.UsageError: binary output to a terminal, or an empty file name.
        OutputError: the file cannot be written or is an input.
    """
    from hvcfilter.fileio import write_atomic

    if output == "":
        # Path("") is the current directory: the rename would fail with a puzzling errno.
        raise click.UsageError("-o/--output needs a file name (or - for stdout)")

    if output is None or output == "-":
        stream = sys.stdout.buffer
        if binary and sys.stdout.isatty():
            raise click.UsageError(
                "refusing to write binary output to a terminal; use -o FILE, a pipe, "
                "or a text format (--format hex|c|rust|json)"
            )
        stream.write(data)
        stream.flush()
        return
    write_atomic(output, data, inputs=inputs)


def complete_path(
    _ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Shell completion of a file argument: let the shell complete paths.

    A ``shell_complete=`` callback rather than ``type=click.Path()``, whose
    conversion would stat and refuse unreadable files before the commands
    can report them their own way (HVF001, exit 2).
    """
    from click.shell_completion import CompletionItem

    return [CompletionItem(incomplete, type="file")]


def kernel_profile(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Click callback of ``--kernel``: the profile name, or a usage error listing the known ones."""
    from hvcfilter.kernel.profiles import UnknownProfileError, get_profile

    if value is None:
        return None
    try:
        return get_profile(value).name
    except UnknownProfileError as exc:
        raise click.BadParameter(str(exc)) from None


def use_color(output: str | None = None) -> bool:
    """Colour only for a terminal on stdout, never with NO_COLOR set (https://no-color.org)."""
    if output not in (None, "-") or os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()
