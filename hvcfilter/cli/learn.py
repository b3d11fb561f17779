"""``hvcfilter learn``: option parsing, one learn (or tally, or --against), one output.

The work happens in :mod:`hvcfilter.learn`. Exit codes: 0 the spec or
tally was written (or ``--against`` found nothing to change), 1 ``--against``
found a call the spec would break, a range no guest used or a record the
kernel refuses, 2 usage errors and bad input (an unreadable trace, a trace
with no calls, a corrupt tally or one of another version, mixed kernels);
nothing is written then.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, assert_never

import click

from hvcfilter.cli._common import (
    ExitCode,
    complete_kernel,
    complete_path,
    guarded,
    kernel_profile,
    write_output,
)
from hvcfilter.trace import TraceFormat
from hvcfilter.utf8 import utf8_document, visible

if TYPE_CHECKING:
    from hvcfilter.learn import Granularity, Override, Tally
    from hvcfilter.learn.derive import Learned
    from hvcfilter.learn.run import Skipped
    from hvcfilter.table.files import Table

__all__ = ["ReportFormat", "learn"]


class ReportFormat(StrEnum):
    """``--format`` of the ``--against`` report."""

    TEXT = "text"
    JSON = "json"


def _command() -> str:
    return (
        shlex.join(["hvcfilter", *sys.argv[1:]])
        if sys.argv[1:2] == ["learn"]
        else "hvcfilter learn"
    )


@click.command("learn")
@click.argument(
    "inputs",
    nargs=-1,
    required=True,
    metavar="TRACE...",
    shell_complete=complete_path,
)
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    shell_complete=complete_path,
    help="Write the spec (or tally) here; - is stdout.",
)
@click.option(
    "--kernel",
    callback=kernel_profile,
    shell_complete=complete_kernel,
    metavar="VERSION",
    help="Kernel profile.",
)
@click.option(
    "--granularity",
    type=click.Choice(["function", "service", "owner"]),
    default="function",
    show_default=True,
    help="Keep open only the IDs seen, or their whole service or owner block.",
)
@click.option(
    "--forward", multiple=True, metavar="ID|NAME|SERVICE", help="Forward these to the VMM."
)
@click.option(
    "--handle",
    multiple=True,
    metavar="ID|NAME|SERVICE",
    help="Keep these in the kernel. Where it overlaps a --forward, the narrower one wins.",
)
@click.option(
    "--tally-out",
    metavar="FILE",
    shell_complete=complete_path,
    help="Write the tally (JSON) instead of a spec.",
)
@click.option("--tally", "from_tallies", is_flag=True, help="The inputs are tallies to merge.")
@click.option(
    "--against",
    metavar="SPEC",
    shell_complete=complete_path,
    help="Report on an existing spec; -o writes it tightened.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Tally this many trace files at once.",
)
@click.option(
    "--trace-format",
    type=click.Choice([f.value for f in TraceFormat]),
    default="auto",
    show_default=True,
    help="Trace format; auto detects ftrace, JSON Lines or CSV.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in ReportFormat]),
    default="text",
    show_default=True,
    help="Format of the --against report.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Exit 1, writing nothing, if any trace line cannot be parsed (its calls would be denied).",
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Read every trace again: do not use or keep the tallies of large trace files "
    '(shared with simulate: ~/.cache/hvcfilter/traces, or $HVCFILTER_CACHE_DIR; "" turns it off).',
)
@click.pass_context
@guarded
def learn(  # noqa: PLR0917 - click passes each option as a parameter
    ctx: click.Context,
    inputs: tuple[str, ...],
    output: str | None,
    kernel: str | None,
    granularity: str,
    forward: tuple[str, ...],
    handle: tuple[str, ...],
    tally_out: str | None,
    from_tallies: bool,
    against: str | None,
    jobs: int,
    trace_format: str,
    fmt: str,
    strict: bool,
    no_cache: bool,
) -> None:
    """Learn the least-privilege table from guest traces (or tallies of a fleet).

    Every function ID the guests called keeps what it got; everything else a
    table can touch is denied. Traces: ftrace, JSON Lines, CSV, gzip/xz, - for
    stdin, directories and globs. Exit 2 (nothing written) for a trace with no
    calls, a corrupt tally or one of another version, or tallies of mixed kernels.
    """
    from hvcfilter import learn as domain
    from hvcfilter.learn import run

    if tally_out is not None and (against is not None or output is not None):
        raise click.UsageError("--tally-out writes a tally: give neither -o nor --against")
    if from_tallies and kernel is not None:
        raise click.UsageError("--kernel comes from the tallies; leave it out with --tally")
    what = "TALLY" if from_tallies else "TRACE"
    from_stdin = ["--against"] * (against == "-") + [what] * inputs.count("-")
    if len(from_stdin) > 1:  # the second reader would find stdin empty
        raise click.UsageError(
            f"only one input can be - (standard input), not {' and '.join(from_stdin)}"
        )
    # The files themselves, not the directories or patterns that name them, so that
    # no output can replace an input reached through its directory or a glob.
    inputs_list = run.expand_paths(inputs)
    against_table = None
    if against is not None and kernel is None and not from_tallies:
        from hvcfilter.table.files import load_table

        # Judge the spec on the kernel it targets; read once, for stdin cannot be read again.
        against_table = load_table(against)
        kernel = against_table.kernel
    if from_tallies:
        tally = run.read_tallies(inputs_list)
    else:
        skipped = _SkippedLines()
        tally = run.tally_traces(
            inputs_list,
            kernel=kernel,
            trace_format=TraceFormat(trace_format),
            jobs=jobs,
            on_empty=_note_empty,
            on_skipped=skipped,
            cache=not no_cache,
        )
        skipped.judge(ctx, strict=strict)
    if tally_out is not None:
        if not tally.calls:
            domain.derive.derive(tally)  # raises the no-calls error: never an empty tally
        write_output(
            utf8_document(domain.dumps(tally)), tally_out, binary=False, inputs=inputs_list
        )
        ctx.exit(int(ExitCode.OK))
    overrides = [domain.parse_override(f, "fwd_to_user") for f in forward]
    overrides += [domain.parse_override(h, "handle") for h in handle]
    gran = domain.Granularity(granularity)
    if against is None:
        result = run.learn(tally, granularity=gran, overrides=overrides, command=_command())
        write_output(utf8_document(result.text), output, binary=False, inputs=inputs_list)
        _note_mixed(result.learned)
        ctx.exit(int(ExitCode.OK))
    _against(
        ctx, tally, against, gran, overrides, output, fmt, [*inputs_list, against], against_table
    )


class _SkippedLines:
    """Each trace's unparseable lines, told as they are found; --strict stops after all.

    A call on a skipped line is missing from the tally, so the learned table
    denies it: the guest that made it gets NOT_SUPPORTED. simulate reports
    the same lines; learn must not drop them without a word.
    """

    def __init__(self) -> None:
        self.lines = 0

    def __call__(self, s: Skipped) -> None:
        first = f"; the first: {s.first}" if s.first is not None else ""
        self.lines += s.lines
        click.echo(
            f"hvcfilter: warning: {visible(s.trace)}: {s.lines:,} line(s) could not be parsed "
            f"and were skipped, and a call on them is denied by the learned table{first}",
            err=True,
        )

    def judge(self, ctx: click.Context, *, strict: bool) -> None:
        if strict and self.lines:
            click.echo(
                f"hvcfilter: error: {self.lines:,} trace line(s) could not be parsed "
                "(--strict): nothing written",
                err=True,
            )
            ctx.exit(int(ExitCode.FINDINGS))


def _note_empty(trace: str) -> None:
    click.echo(
        f"hvcfilter: note: {visible(trace)} holds no call: it adds nothing to the table", err=True
    )


def _note_mixed(learned: Learned) -> None:
    """Say on stderr that some calls will get another outcome under the learned table."""
    from hvcfilter import smccc

    for forwarded, does in ((True, "forwards {}"), (False, "keeps {} in the kernel")):
        mixed = learned.mixed_calls_kept(forwarded=forwarded)
        if not mixed:
            continue
        ids = ", ".join(smccc.format_id(c.function_id) for c in mixed[:4])
        more = f" and {len(mixed) - 4} more" if len(mixed) > 4 else ""
        were, them = ("was", "it") if len(mixed) == 1 else ("were", "them")
        click.echo(
            f"hvcfilter: note: {ids}{more} {were} forwarded in some calls and answered by the "
            f"kernel in others; the learned table {does.format(them)} (see its header)",
            err=True,
        )


def _against(  # noqa: PLR0917 - the options of one mode, passed on
    ctx: click.Context,
    tally: Tally,
    spec: str,
    gran: Granularity,
    overrides: Sequence[Override],
    output: str | None,
    fmt: str,
    inputs: list[str],
    table: Table | None,
) -> None:
    from hvcfilter.learn.against import against
    from hvcfilter.render import learn as render

    report = against(
        tally, spec, granularity=gran, overrides=overrides, command=_command(), table=table
    )
    if output is not None:
        write_output(utf8_document(report.tightened.text), output, binary=False, inputs=inputs)
    report_format = ReportFormat(fmt)
    if report_format is ReportFormat.JSON:
        text = render.against_json(report)
    elif report_format is ReportFormat.TEXT:
        text = render.against_text(report, output)
    else:
        assert_never(report_format)
    if output == "-":  # the tightened spec has stdout: keep the report apart
        click.echo(text, err=True, nl=False)
    else:
        click.echo(text, nl=False)
    ctx.exit(int(ExitCode.FINDINGS if report.findings else ExitCode.OK))
