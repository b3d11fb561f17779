"""``check`` and ``simulate`` without click: the invocations editors, hooks and pipelines repeat.

Importing click costs more than linting a small spec does, and about as much
as the rest of a small replay. So :func:`run` takes the arguments of
``check`` and ``simulate`` when they are plain (paths, ``--``, the commands'
own options with valid values) and runs the command's body, :func:`run_check`
or :func:`run_simulate`, itself. Anything else (help, completion, an unknown
option, a missing or invalid value, another command) returns ``None`` and
goes to click, which gives the usual message. The fast path only ever takes
arguments on which click and it agree, and the tests hold it to that. The
click commands run the same bodies.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from hvcfilter.cli._common import COMPLETE_VAR, ExitCode, exit_for, use_color, write_output
from hvcfilter.errors import HvcFilterError, TraceError

if TYPE_CHECKING:
    from hvcfilter.lint import LintReport
    from hvcfilter.replay import Replayer
    from hvcfilter.trace import TallyCache, TraceFormat, TraceTally

__all__ = [
    "CheckArgs",
    "ReportFormat",
    "SimulateArgs",
    "exit_code",
    "parse_check",
    "parse_simulate",
    "run",
    "run_check",
    "run_simulate",
]


class _Grammar(NamedTuple):
    """A command's options: those taking a value by every spelling, and the flags; each a field."""

    values: dict[str, str]
    flags: dict[str, str]


_CHECK = _Grammar(
    {"--format": "fmt", "--kernel": "kernel", "-o": "output", "--output": "output"},
    {"--strict": "strict"},
)
_SIMULATE = _Grammar(
    {
        "--spec": "spec",
        "--payload": "payload",
        "--kernel": "kernel",
        "--trace-format": "trace_format",
        "--format": "fmt",
        "--baseline": "baseline",
    },
    {"--strict": "strict", "--no-cache": "no_cache"},
)


class CheckArgs(NamedTuple):
    """The parsed options of ``hvcfilter check``, as click's command passes them too."""

    specs: tuple[str, ...] = ()
    fmt: str = "text"
    strict: bool = False
    kernel: str | None = None
    output: str | None = None


class ReportFormat(StrEnum):
    """``--format`` of ``hvcfilter simulate``."""

    TEXT = "text"
    JSON = "json"
    JSONL = "jsonl"


class SimulateArgs(NamedTuple):
    """The parsed options of ``hvcfilter simulate``, as click's command passes them too."""

    traces: tuple[str, ...]
    spec: str | None = None
    payload: str | None = None
    kernel: str | None = None
    trace_format: str = "auto"
    fmt: str = "text"
    baseline: str | None = None
    strict: bool = False
    no_cache: bool = False


_Args = TypeVar("_Args", CheckArgs, SimulateArgs)


def _parse(
    argv: Sequence[str], command: str, grammar: _Grammar
) -> tuple[tuple[str, ...], dict[str, str | bool]] | None:
    """The arguments and options of a plain invocation of ``command``; ``None`` for click's."""
    if not argv or argv[0] != command or os.environ.get(COMPLETE_VAR):
        return None
    arguments: list[str] = []
    options: dict[str, str | bool] = {}
    tokens = iter(argv[1:])
    for token in tokens:
        if token == "-" or not token.startswith("-"):
            arguments.append(token)  # click takes a lone "-" as an argument too (stdin)
        elif token == "--":
            arguments.extend(tokens)
        elif token in grammar.flags:
            options[grammar.flags[token]] = True
        else:
            # `--format=json`, or `--format json` / `-o FILE` (value in the next token);
            # short options with attached values (`-oFILE`) are click's to parse.
            name, equals, value = (
                token.partition("=") if token.startswith("--") else (token, "", "")
            )
            if name not in grammar.values:
                return None
            if not equals:
                value = next(tokens, "")
            # An empty value or one that looks like an option: click's error, not ours.
            if not value or (value.startswith("-") and value != "-"):
                return None
            options[grammar.values[name]] = value
    return tuple(arguments), options


def parse_check(argv: Sequence[str]) -> CheckArgs | None:
    """The options of a plain ``check`` invocation, or ``None`` to leave ``argv`` to click."""
    parsed = _parse(argv, "check", _CHECK)
    if parsed is None:
        return None
    specs, options = parsed
    return _validated(CheckArgs(specs, **options))  # type: ignore[arg-type]


def parse_simulate(argv: Sequence[str]) -> SimulateArgs | None:
    """The options of a plain ``simulate`` invocation, or ``None`` to leave ``argv`` to click."""
    from hvcfilter.trace import TraceFormat

    parsed = _parse(argv, "simulate", _SIMULATE)
    if parsed is None:
        return None
    traces, options = parsed
    args = SimulateArgs(traces, **options)  # type: ignore[arg-type]
    if (
        not traces  # TRACE... is required: click says so
        or (args.spec is not None and args.payload is not None)  # the command's usage error
        or args.fmt not in {f.value for f in ReportFormat}
        or args.trace_format not in {f.value for f in TraceFormat}
    ):
        return None
    return _canonical_kernel(args)


def _canonical_kernel(args: _Args) -> _Args | None:
    """``args`` with the kernel profile's canonical name; ``None`` when click must report it."""
    from hvcfilter.kernel.profiles import UnknownProfileError, get_profile

    if args.kernel is None:
        return args
    try:
        return args._replace(kernel=get_profile(args.kernel).name)
    except UnknownProfileError:
        return None


def _validated(args: CheckArgs) -> CheckArgs | None:
    """``args`` with the kernel's canonical name, or ``None`` when click must report a value."""
    from hvcfilter.render.check import Format

    if args.fmt not in {f.value for f in Format}:
        return None
    return _canonical_kernel(args)


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


def _say(message: str) -> None:
    """One line on stderr, written as ``click.echo(message, err=True)`` writes it."""
    from hvcfilter.utf8 import visible  # a trace's name may hold an ESC sequence

    sys.stderr.write(f"{visible(message)}\n")
    sys.stderr.flush()


def run_simulate(args: SimulateArgs) -> ExitCode:
    """What ``hvcfilter simulate`` does once its options are parsed: load, replay, render."""
    from hvcfilter.replay import Replayer
    from hvcfilter.table.files import load_baseline, load_table
    from hvcfilter.trace import TraceFormat, default_cache

    named = (("--spec", args.spec), ("--payload", args.payload), ("--baseline", args.baseline))
    from_stdin = [n for n, v in named if v == "-"]
    from_stdin += ["TRACE"] * args.traces.count("-")
    if len(from_stdin) > 1:
        raise HvcFilterError(
            f"only one input can be - (standard input), not {' and '.join(from_stdin)}"
        )
    table = load_table(
        args.spec,
        args.payload,
        kernel=args.kernel,
        payload_hint="or simulate takes it as it is with --payload",
    )
    base = load_baseline(args.baseline, kernel=args.kernel) if args.baseline is not None else None
    from hvcfilter.trace import expand_paths

    traces = expand_paths(args.traces)  # directories and quoted globs, as learn takes them
    _check_traces_exist(traces)
    replayer = Replayer(table, kernel=args.kernel, baseline=base)
    cache = None if args.no_cache else default_cache()
    changed, tally = _replay(
        replayer, traces, ReportFormat(args.fmt), TraceFormat(args.trace_format), cache
    )
    sys.stdout.flush()  # the report before any message below, as on a terminal
    if args.strict and tally.skipped:
        _say(f"hvcfilter: {tally.skipped} unparseable line(s) (--strict)")
    refused = sum(1 for r in replayer.install if r.errno)
    if refused:
        _say(f"hvcfilter: the kernel refuses {refused} record(s) of the table")
    failed = changed or refused or (args.strict and tally.skipped)
    return ExitCode.FINDINGS if failed else ExitCode.OK


def _replay(
    replayer: Replayer,
    traces: list[str],
    fmt: ReportFormat,
    trace_format: TraceFormat,
    cache: TallyCache | None,
) -> tuple[bool, TraceTally]:
    """Replay and print; returns (baseline changed, tally)."""
    from hvcfilter.render import replay as render
    from hvcfilter.trace import TraceTally

    with render.progress(sys.stderr.isatty()) as bar:
        if fmt is ReportFormat.JSONL:
            tally, changed = TraceTally(), False
            _say(f"hvcfilter: replaying under {replayer.table.label}")
            for record in replayer.stream(traces, tally, trace_format, progress=bar):
                changed |= (
                    record.baseline is not None and record.baseline.outcome != record.result.outcome
                )
                sys.stdout.write(render.call_jsonl(record))
            for note in render.notes(tally):
                _say(f"hvcfilter: note: {note}")
            for bad in tally.bad_lines:
                _say(f"hvcfilter: {bad}")
            return changed, tally
        report = replayer.replay(traces, trace_format, progress=bar, cache=cache)
    if fmt is ReportFormat.JSON:
        sys.stdout.write(render.report_json(report))
    else:
        sys.stdout.write(render.report_text(report, color=use_color()))
    return report.changed, report.tally


def _check_traces_exist(traces: Sequence[str]) -> None:
    """Raise for a trace that is missing or named twice, before any output.

    --format jsonl streams as it reads: a typo in the last of several traces
    came out as an error after the earlier traces' records, a half report.
    Only stat(): opening a FIFO here would wait for its writer, or eat its data.
    Directories are gone by now: :func:`hvcfilter.trace.expand_paths` gave their files.

    Raises:
        TraceError: a trace cannot be found, or is named twice.
    """
    from hvcfilter.inputs import unreadable
    from hvcfilter.trace import repeated_file

    twice = repeated_file(traces, "name each trace once")
    if twice is not None:
        raise TraceError(twice)
    for path in traces:
        if path == "-":
            continue
        try:
            os.stat(path)
        except OSError as exc:
            raise TraceError(f"cannot read {path}: {unreadable(exc)}") from exc


def run(argv: Sequence[str]) -> int | None:
    """Run a plain ``check`` or ``simulate`` and return its exit code; ``None`` for click's."""
    try:  # inside: an interrupt while a parser imports is still exit 130
        command = argv[0] if argv else ""
        if command == "check":
            check = parse_check(argv)
            return None if check is None else int(run_check(check))
        if command == "simulate":
            simulate = parse_simulate(argv)
            return None if simulate is None else int(run_simulate(simulate))
        return None
    except BaseException as exc:  # exit_for maps each to its exit code, SystemExit through
        exit_for(exc)
