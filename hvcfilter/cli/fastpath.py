"""``hvcfilter check`` without click: the invocation editors and hooks make on every save.

Importing click costs more than linting a small spec does, so :func:`run`
takes the arguments of ``check`` when they are plain (spec paths, ``--``,
``--strict``, ``--format``, ``--kernel``, ``-o``/``--output`` with valid
values) and runs the command's body, :func:`run_check`, itself. Anything
else (help, completion, an unknown option, a missing or invalid value,
another command) returns ``None`` and goes to click, which gives the usual
message: the fast path only ever takes arguments on which click and it
agree, and the tests hold it to that. The click command ``check`` runs the
same :func:`run_check`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from hvcfilter.cli._common import COMPLETE_VAR, ExitCode, exit_for, use_color, write_output

if TYPE_CHECKING:
    from hvcfilter.lint import LintReport

__all__ = ["CheckArgs", "exit_code", "parse_check", "run", "run_check"]

# The options of `check` that take a value, by every spelling, and the field each sets.
_VALUE_OPTIONS = {"--format": "fmt", "--kernel": "kernel", "-o": "output", "--output": "output"}


class CheckArgs(NamedTuple):
    """The parsed options of ``hvcfilter check``, as click's command passes them too."""

    specs: tuple[str, ...] = ()
    fmt: str = "text"
    strict: bool = False
    kernel: str | None = None
    output: str | None = None


def parse_check(argv: Sequence[str]) -> CheckArgs | None:
    """The options of a plain ``check`` invocation, or ``None`` to leave ``argv`` to click."""
    if not argv or argv[0] != "check" or os.environ.get(COMPLETE_VAR):
        return None
    specs: list[str] = []
    values: dict[str, str] = {}
    strict = False
    tokens = iter(argv[1:])
    for token in tokens:
        if token == "-" or not token.startswith("-"):
            specs.append(token)  # click takes a lone "-" as an argument too (stdin)
        elif token == "--":
            specs.extend(tokens)
        elif token == "--strict":
            strict = True
        else:
            # `--format=json`, or `--format json` / `-o FILE` (value in the next token);
            # short options with attached values (`-oFILE`) are click's to parse.
            name, equals, value = (
                token.partition("=") if token.startswith("--") else (token, "", "")
            )
            if name not in _VALUE_OPTIONS:
                return None
            if not equals:
                value = next(tokens, "")
            # An empty value or one that looks like an option: click's error, not ours.
            if not value or (value.startswith("-") and value != "-"):
                return None
            values[_VALUE_OPTIONS[name]] = value
    return _validated(CheckArgs(tuple(specs), strict=strict, **values))


def _validated(args: CheckArgs) -> CheckArgs | None:
    """``args`` with the kernel's canonical name, or ``None`` when click must report a value."""
    from hvcfilter.kernel.profiles import UnknownProfileError, get_profile
    from hvcfilter.render.check import Format

    if args.fmt not in {f.value for f in Format}:
        return None
    if args.kernel is None:
        return args
    try:
        return args._replace(kernel=get_profile(args.kernel).name)
    except UnknownProfileError:
        return None


def exit_code(report: LintReport, *, strict: bool) -> ExitCode:
    """2 when a file is unreadable, 1 on errors (or warnings with ``strict``), else 0."""
    if report.unreadable:
        return ExitCode.USAGE
    return ExitCode.FINDINGS if report.failed(strict=strict) else ExitCode.OK


def run_check(args: CheckArgs) -> ExitCode:
    """What ``hvcfilter check`` does once its options are parsed: lint, render, write."""
    from hvcfilter.lint import lint
    from hvcfilter.render.check import Format, renderer
    from hvcfilter.spec import DEFAULT_SPEC

    paths = args.specs or (DEFAULT_SPEC,)
    report = lint(paths, args.kernel)
    text = renderer(Format(args.fmt))(report, color=use_color(args.output), strict=args.strict)
    # surrogateescape: a file name that is not UTF-8 is printed as the bytes it is.
    data = text.encode("utf-8", "surrogateescape")
    write_output(data, args.output, binary=False, inputs=paths)
    return exit_code(report, strict=args.strict)


def run(argv: Sequence[str]) -> int | None:
    """Run a plain ``check`` invocation and return its exit code; ``None`` for click's."""
    try:
        args = parse_check(argv)  # inside: an interrupt while it imports is still exit 130
        return None if args is None else int(run_check(args))
    except BaseException as exc:  # exit_for maps each to its exit code, SystemExit through
        exit_for(exc)
