"""Plumbing shared by the subcommands: exit codes, error mapping, formats and output files.

This is the only place that turns library exceptions into exit codes and
one-line messages; command modules stay a few lines of option parsing, one
library call and one render.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
import sys
from collections.abc import Callable, Iterable
from enum import IntEnum
from typing import IO, TYPE_CHECKING, NoReturn, ParamSpec, TypeVar

from hvcfilter.errors import HvcFilterError

if TYPE_CHECKING:
    import click
    from click.shell_completion import CompletionItem

# click is imported where it is used, not here: the click-free path of
# `check` (hvcfilter.cli.fastpath) shares this module and must not load it.

__all__ = [
    "COMPLETE_VAR",
    "ExitCode",
    "complete_path",
    "exit_for",
    "guarded",
    "kernel_profile",
    "use_color",
    "write_output",
]

# Set when the shell asks click for completions (hvcfilter completion SHELL).
COMPLETE_VAR = "_HVCFILTER_COMPLETE"

P = ParamSpec("P")
R = TypeVar("R")


class ExitCode(IntEnum):
    """The documented exit codes of every command."""

    OK = 0
    FINDINGS = 1
    USAGE = 2
    INTERNAL = 3


def _fail(message: str, code: ExitCode) -> NoReturn:
    import click

    from hvcfilter.utf8 import visible

    click.echo(f"hvcfilter: error: {visible(message)}", err=True)
    sys.exit(int(code))


# Errors of a write that fills a disk or a quota, or hits a device that fails, and
# of a non-blocking stdout that stays full (text output has no loop to wait on it).
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EAGAIN})


class StdoutClosedError(OSError):
    """A write to the standard output the process was started without (``>&-``)."""


class ClosedStdout(io.RawIOBase):
    """What ``sys.stdout`` becomes when the process starts with it closed (``>&-``).

    Python then sets ``sys.stdout`` to None, which every print would trip over
    as an internal error. A write fails as one to a closed descriptor would
    (EBADF, as :class:`StdoutClosedError`), so that a command with output to
    give exits 2 with "cannot write standard output: it is closed", and one
    that writes nothing there still runs.
    """

    def writable(self) -> bool:
        return True

    def write(self, _data: object) -> int:
        raise StdoutClosedError(errno.EBADF, "it is closed")


class ClosedStdin(io.RawIOBase):
    """What ``sys.stdin`` becomes when the process starts with it closed (``<&-``).

    A read fails with EBADF, an OSError, which every reader of a ``-`` input
    already reports as "cannot read <stdin>: it is closed" (exit 2); a command
    that never reads stdin still runs.
    """

    def readable(self) -> bool:
        return True

    def readinto(self, _buffer: object) -> int:
        raise OSError(errno.EBADF, "it is closed")


def ensure_std_streams() -> None:
    """Make the standard streams safe for the commands, before any of them runs.

    A closed stdin or stdout (None in ``sys.stdin``/``sys.stdout``) gets a
    stream that fails on use, as above. Under ``PYTHONUNBUFFERED`` (common in
    CI and containers) stdout's text layer writes straight to a raw FileIO,
    whose write may take only part of the data, and TextIOWrapper drops the
    rest without a word: a report cut off by a reader that leaves would exit 0
    or 1 instead of 141. A BufferedWriter between them finishes every write or
    raises, and flushing at each newline keeps the output as prompt as it was.
    """
    if sys.stdin is None:
        sys.stdin = io.TextIOWrapper(io.BufferedReader(ClosedStdin()), encoding="utf-8")
    stdout = sys.stdout
    if stdout is None:
        sys.stdout = io.TextIOWrapper(ClosedStdout(), encoding="utf-8", write_through=True)
    elif isinstance(getattr(stdout, "buffer", None), io.RawIOBase):
        stdout.flush()
        sys.stdout = io.TextIOWrapper(
            io.BufferedWriter(stdout.buffer),
            encoding=stdout.encoding,
            errors=stdout.errors,
            line_buffering=True,
            write_through=True,
        )


def exit_on_sigterm() -> None:
    """Exit 143 on SIGTERM through the interpreter, so that cleanup runs first.

    Killed by the default action, a learn of a stream left its multi-gigabyte
    temporary copy behind (`timeout` sends SIGTERM), and an interrupted write
    its temporary file: as SystemExit, every ``with`` and ``finally`` runs.
    """
    import signal

    def terminated(signum: int, _frame: object) -> NoReturn:
        sys.exit(128 + signum)

    def default_in_child() -> None:
        # A forked scan worker is stopped with SIGTERM by its parent: as SystemExit it
        # would unwind the parent's copied stack (its finally blocks, its atexit).
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    with contextlib.suppress(ValueError, OSError):  # not the main thread: leave it be
        signal.signal(signal.SIGTERM, terminated)
        os.register_at_fork(after_in_child=default_in_child)


def exit_for(exc: BaseException, *, debug: bool = False) -> NoReturn:
    """End the process as the documented exit codes say for an exception a command raised.

    Deliberate errors exit 2 with their message, an interrupt 130, a closed
    pipe 141, anything unexpected 3 without a traceback (``debug`` prints it);
    click's own exits, usage errors and aborts, and ``SystemExit``, go on up.
    """
    import click

    if isinstance(exc, (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit)):
        raise exc
    if isinstance(exc, HvcFilterError):
        _fail(str(exc), ExitCode.USAGE)
    if isinstance(exc, KeyboardInterrupt):
        click.echo("hvcfilter: interrupted", err=True)
        sys.exit(130)
    if isinstance(exc, BrokenPipeError):
        # The reader went away (`| head`): end quietly, as a shell tool killed by
        # SIGPIPE would (128 + 13), rather than claim findings.
        _discard_stdout()
        sys.exit(141)
    if isinstance(exc, StdoutClosedError) or (
        isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS
    ):
        # Files named with -o already fail as OutputError (exit 2): this is standard
        # output (`> /dev/full`, a full disk), the same user-side failure.
        _discard_stdout()
        from hvcfilter.fileio import write_failure

        shown = exc.filename or "standard output"
        _fail(f"cannot write {shown}: {write_failure(exc, exc.filename)}", ExitCode.USAGE)
    if not isinstance(exc, Exception):
        raise exc  # GeneratorExit and the like are the interpreter's, not failures
    # The last line of defence: no traceback for users.
    if debug:
        import traceback

        traceback.print_exception(exc)
    _fail(
        f"internal error: {type(exc).__name__}: {exc} "
        "(please report it; --debug shows the traceback)",
        ExitCode.INTERNAL,
    )


def _discard_stdout() -> None:
    """Point descriptor 1 at /dev/null, so that the flush at exit does not fail a second time.

    Output still buffered when a write failed would fail again at exit, and
    Python would then print "Exception ignored" and exit 120 instead of the
    code chosen here.
    """
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def guarded(func: Callable[P, R]) -> Callable[P, R]:
    """Map deliberate errors to exit 2 and anything unexpected to exit 3, without a traceback.

    ``--debug`` (on the group) prints the traceback of an internal error.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except BaseException as exc:
            import click

            ctx = click.get_current_context(silent=True)
            debug = bool(ctx and ctx.find_root().obj and ctx.find_root().obj.get("debug"))
            exit_for(exc, debug=debug)

    return wrapper


def write_output(
    data: bytes, output: str | None, *, binary: bool, inputs: Iterable[str | os.PathLike[str]] = ()
) -> None:
    """Send output to a file (atomically) or to stdout (``None`` or ``-``).

    Binary data is refused on a terminal: it would garble it.

    Raises:
        click.UsageError: binary output to a terminal, or an empty file name.
        OutputError: the file cannot be written or is an input.
    """
    if output == "":
        import click

        # Path("") is the current directory: the rename would fail with a puzzling errno.
        raise click.UsageError("the output file name is empty: give a file name, or - for stdout")

    if output is None or output == "-":
        stream = sys.stdout.buffer
        if binary and sys.stdout.isatty():
            import click

            raise click.UsageError(
                "refusing to write binary output to a terminal; use -o FILE, a pipe, "
                "or a text format (--format hex|c|rust|json)"
            )
        # A raw stream (PYTHONUNBUFFERED, when main() has not wrapped it) may take
        # only part of a write: write the rest, so that a reader that goes away
        # mid-way is a broken pipe (141), not a silent success.
        view = memoryview(data)
        while view:
            try:
                written = stream.write(view)
            except BlockingIOError as exc:  # a buffered, non-blocking stdout that is full
                written = exc.characters_written
                _wait_writable(stream)
            if written is None:  # a raw, non-blocking stdout that is full
                _wait_writable(stream)
                continue
            view = view[written:]
        while True:
            try:
                stream.flush()
                break
            except BlockingIOError:
                _wait_writable(stream)
        return
    from hvcfilter.fileio import write_atomic  # its pathlib only when writing a file

    write_atomic(output, data, inputs=inputs)


def _wait_writable(stream: IO[bytes]) -> None:
    import select

    select.select([], [stream.fileno()], [])


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


def complete_kernel(
    _ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Shell completion of ``--kernel``: the profiles hvcfilter knows."""
    from click.shell_completion import CompletionItem

    from hvcfilter.kernel.profiles import PROFILES

    return [CompletionItem(name) for name in PROFILES if name.startswith(incomplete)]


def complete_template(
    _ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Shell completion of ``init --template``: the starter tables."""
    from click.shell_completion import CompletionItem

    from hvcfilter.spec.templates import templates

    return [
        CompletionItem(t.name, help=t.summary) for t in templates() if t.name.startswith(incomplete)
    ]


def kernel_profile(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Click callback of ``--kernel``: the profile name, or a usage error listing the known ones."""
    import click

    from hvcfilter.kernel.profiles import UnknownProfileError, get_profile

    if value is None:
        return None
    try:
        return get_profile(value).name
    except UnknownProfileError as exc:
        raise click.BadParameter(str(exc)) from None


def use_color(output: str | None = None) -> bool:
    """Colour only for a terminal on stdout, never with NO_COLOR set (https://no-color.org).

    Nor on ``TERM=dumb``, a terminal that says it cannot show escape sequences
    (Emacs' shell buffers, some CI log viewers).
    """
    if output not in (None, "-") or os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return sys.stdout.isatty()
