"""``hvcfilter simulate``: option parsing; the body is :func:`hvcfilter.cli.fastpath.run_simulate`.

The work happens in :mod:`hvcfilter.replay` (and :mod:`hvcfilter.trace`);
the body maps outcomes to exit codes: 0 clean, 1 when the kernel refuses
a record of the table, ``--baseline`` finds a changed outcome or ``--strict``
meets an unparseable line, 2 for usage errors and unreadable input. Plain
invocations reach the same body without click.
"""

from __future__ import annotations

import click

from hvcfilter.cli._common import complete_kernel, complete_path, guarded, kernel_profile
from hvcfilter.cli.fastpath import ReportFormat, SimulateArgs, run_simulate
from hvcfilter.trace import TraceFormat

__all__ = ["ReportFormat", "simulate"]


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
    help="Filter spec, - for stdin (default: ./hvcfilter.toml if any).",
)
@click.option(
    "--payload",
    metavar="BIN",
    shell_complete=complete_path,
    help="Binary payload of struct kvm_smccc_filter records, - for stdin.",
)
@click.option(
    "--kernel",
    callback=kernel_profile,
    shell_complete=complete_kernel,
    metavar="VERSION",
    help="Kernel profile (e.g. 6.12, 7.2).",
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
    help="Also replay under this table (a spec or a payload, - for stdin); exit 1 if any "
    "call's outcome changes.",
)
@click.option("--strict", is_flag=True, help="Exit 1 if any trace line cannot be parsed.")
@click.option(
    "--no-cache",
    is_flag=True,
    help="Read every trace again: do not use or keep the tallies of large trace files "
    '(kept in ~/.cache/hvcfilter/traces, or $HVCFILTER_CACHE_DIR; "" turns it off).',
)
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
    no_cache: bool,
) -> None:
    """Replay guest traces (ftrace, JSON Lines, CSV; - is stdin; gzip/xz ok; a directory
    or a quoted glob gives its files) through the emulated kernel: what every call gets
    under the filter, and what changes.

    Without --spec or --payload, hvcfilter.toml in the current directory is
    used if it exists, else no filter at all (the kernel's default behaviour).
    Exit 1 when the kernel refuses a record of the table (the VMM's
    KVM_SET_DEVICE_ATTR would fail).
    """
    if spec is not None and payload is not None:
        raise click.UsageError("give --spec or --payload, not both")
    args = SimulateArgs(
        traces, spec, payload, kernel, trace_format, fmt, baseline, strict, no_cache
    )
    ctx.exit(int(run_simulate(args)))
