"""``hvcfilter simulate``: option parsing, one replay through the emulated kernel, rendering.

The work happens in :mod:`hvcfilter.replay` (and :mod:`hvcfilter.trace`);
this module maps outcomes to exit codes: 0 clean, 1 when the kernel refuses
a record of the table, ``--baseline`` finds a changed outcome or ``--strict``
meets an unparseable line, 2 for usage errors and unreadable input.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import assert_never

import click

from hvcfilter.cli._common import ExitCode, complete_path, guarded, kernel_profile, use_color
from hvcfilter.replay import Replayer
from hvcfilter.table.files import load_baseline, load_table
from hvcfilter.trace import TraceFormat, TraceTally

__all__ = ["ReportFormat", "simulate"]


class ReportFormat(StrEnum):
    """``--format`` of ``hvcfilter simulate``."""

    TEXT = "text"
    JSON = "json"
    JSONL = "jsonl"


def _emit(text: str) -> None:
    sys.stdout.write(text)


def _run(
    replayer: Replayer, traces: list[str], fmt: ReportFormat, trace_format: TraceFormat
) -> tuple[bool, TraceTally]:
    """Replay and print; returns (baseline changed, tally)."""
    from hvcfilter.render import replay as render

    with render.progress(sys.stderr.isatty()) as bar:
        if fmt is ReportFormat.JSONL:
            tally, changed = TraceTally(), False
            click.echo(f"hvcfilter: replaying under {replayer.table.label}", err=True)
            for record in replayer.stream(traces, tally, trace_format, progress=bar):
                changed |= (
                    record.baseline is not None and record.baseline.outcome != record.result.outcome
                )
                _emit(render.call_jsonl(record))
            for note in render.notes(tally):
                click.echo(f"hvcfilter: note: {note}", err=True)
            for bad in tally.bad_lines:
                click.echo(f"hvcfilter: {bad}", err=True)
            return changed, tally
        report = replayer.replay(traces, trace_format, progress=bar)
    if fmt is ReportFormat.JSON:
        _emit(render.report_json(report))
    elif fmt is ReportFormat.TEXT:
        _emit(render.report_text(report, color=use_color()))
    else:
        assert_never(fmt)
    return report.changed, report.tally


@click.command("simulate")
@click.argument(
    "traces",
    nargs=-1,
    required=True,
    metavar="TRACE...",
    shell_complete=complete_path,
)
@click.option(
    "--spec",
    metavar="SPEC",
    shell_complete=complete_path,
    help="Filter spec (default: ./hvcfilter.toml if any).",
)
@click.option(
    "--payload",
    metavar="BIN",
    shell_complete=complete_path,
    help="Binary payload of struct kvm_smccc_filter records.",
)
@click.option(
    "--kernel", callback=kernel_profile, metavar="VERSION", help="Kernel profile (e.g. 6.12, 7.2)."
)
@click.option(
    "--trace-format",
    type=click.Choice([f.value for f in TraceFormat]),
    default="auto",
    show_default=True,
    help="Trace format; auto detects ftrace text, JSON Lines or CSV.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in ReportFormat]),
    default="text",
    show_default=True,
    help="text (tables), json (one document) or jsonl (one result per call).",
)
@click.option(
    "--baseline",
    metavar="SPEC_OR_PAYLOAD",
    shell_complete=complete_path,
    help="Also replay under this table; exit 1 if any call's outcome changes.",
)
@click.option("--strict", is_flag=True, help="Exit 1 if any trace line cannot be parsed.")
@click.pass_context
@guarded
def simulate(  # noqa: PLR0917 - click passes each option as a parameter
    ctx: click.Context,
    traces: tuple[str, ...],
    spec: str | None,
    payload: str | None,
    kernel: str | None,
    trace_format: str,
    fmt: str,
    baseline: str | None,
    strict: bool,
) -> None:
    """Replay guest traces (ftrace, JSON Lines, CSV; - is stdin; gzip/xz ok) through the
    emulated kernel: what every call gets under the filter, and what changes.

    Without --spec or --payload, hvcfilter.toml in the current directory is
    used if it exists, else no filter at all (the kernel's default behaviour).
    Exit 1 when the kernel refuses a record of the table (the VMM's
    KVM_SET_DEVICE_ATTR would fail).
    """
    if spec is not None and payload is not None:
        raise click.UsageError("give --spec or --payload, not both")
    table = load_table(spec, payload, kernel=kernel)
    base = load_baseline(baseline, kernel=kernel) if baseline is not None else None
    replayer = Replayer(table, kernel=kernel, baseline=base)
    changed, tally = _run(replayer, list(traces), ReportFormat(fmt), TraceFormat(trace_format))
    if strict and tally.skipped:
        click.echo(f"hvcfilter: {tally.skipped} unparseable line(s) (--strict)", err=True)
    refused = sum(1 for r in replayer.install if r.errno)
    if refused:
        click.echo(f"hvcfilter: the kernel refuses {refused} record(s) of the table", err=True)
    failed = changed or refused or (strict and tally.skipped)
    ctx.exit(int(ExitCode.FINDINGS if failed else ExitCode.OK))
