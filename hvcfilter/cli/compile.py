"""``hvcfilter compile``, ``decompile`` and ``diff``: option parsing, one library call, rendering.

The work happens in :mod:`hvcfilter.table` and :mod:`hvcfilter.emit`;
this module maps outcomes to exit codes (0 clean or equivalent, 1 findings,
a refused record or a difference, 2 usage or unreadable input).
"""

from __future__ import annotations

from enum import StrEnum
from typing import assert_never

import click

from hvcfilter.cli._common import (
    ExitCode,
    complete_kernel,
    complete_path,
    guarded,
    kernel_profile,
    write_output,
)
from hvcfilter.diagnostics import Diagnostic
from hvcfilter.emit import OutputFormat, emit
from hvcfilter.errors import PayloadError
from hvcfilter.inputs import read_input, unreadable
from hvcfilter.render import compile as render
from hvcfilter.spec import DEFAULT_SPEC
from hvcfilter.table import compiler, decompiler, dryrun, files
from hvcfilter.table.payload import ByteOrder
from hvcfilter.utf8 import utf8_document

__all__ = ["compile_", "decompile", "diff"]


class DiffFormat(StrEnum):
    """``--format`` of ``hvcfilter diff``."""

    TEXT = "text"
    JSON = "json"


_kernel_option = click.option(
    "--kernel",
    callback=kernel_profile,
    shell_complete=complete_kernel,
    metavar="VERSION",
    help="Kernel profile (e.g. 6.12, 7.2); overrides the spec's [filter] kernel.",
)
_byte_order_option = click.option(
    "--byte-order",
    type=click.Choice(["little", "big"]),
    default="little",
    show_default=True,
    help="Record byte order: little for arm64 hosts, big for big-endian ones.",
)


def _read(path: str) -> bytes:
    """The bytes of a file, or of stdin for ``-``."""
    try:
        return read_input(path)
    except OSError as exc:
        raise PayloadError(f"cannot read {_name(path)}: {unreadable(exc)}") from exc


def _name(path: str) -> str:
    """How a report names an input: ``-`` is ``<stdin>``, as everywhere."""
    return "<stdin>" if path == "-" else path


def _report(diagnostics: tuple[Diagnostic, ...]) -> None:
    if diagnostics:
        click.echo(render.diagnostics_text(diagnostics), err=True, nl=False)


@click.command("compile")
@click.argument(
    "spec",
    default=DEFAULT_SPEC,
    metavar="[SPEC]",
    shell_complete=complete_path,
)
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    shell_complete=complete_path,
    help="Write here (atomically); - is stdout.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in OutputFormat]),
    default=OutputFormat.BIN.value,
    show_default=True,
    help="bin payload, C header, Rust source, JSON, hex lines, or the sha256 table digest.",
)
@_byte_order_option
@click.option("--no-merge", is_flag=True, help="Keep one record per spec range (no merging).")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Install the records into the emulated kernel and print each result (text, or "
    "--format json); write nothing.",
)
@_kernel_option
@click.pass_context
@guarded
def compile_(
    ctx: click.Context,
    *,
    spec: str,
    output: str | None,
    fmt: str,
    byte_order: ByteOrder,
    no_merge: bool,
    dry_run: bool,
    kernel: str | None,
) -> None:
    """Compile SPEC (default: hvcfilter.toml) into the KVM_SET_DEVICE_ATTR payload, or
    another output format. Exit 1 when the kernel would refuse the table."""
    if dry_run and (output is not None or fmt not in (OutputFormat.BIN, OutputFormat.JSON)):
        raise click.UsageError(
            "--dry-run prints a report and writes no file: drop -o, and use no --format "
            "or --format json"
        )
    result = compiler.compile_file(spec, merge=not no_merge, kernel=kernel, strict=not dry_run)
    _report(result.diagnostics)
    if result.table is None:
        ctx.exit(ExitCode.USAGE if result.unreadable else ExitCode.FINDINGS)
    assert result.table is not None
    if dry_run:
        outcome = dryrun.dry_run(result.table, kernel=kernel)
        shown = render.dry_run_json if fmt == OutputFormat.JSON else render.dry_run_text
        click.echo(shown(outcome), nl=False)
        ctx.exit(ExitCode.OK if outcome.ok and not result.has_errors else ExitCode.FINDINGS)
    chosen = OutputFormat(fmt)
    data = emit(result.table, chosen, byte_order=byte_order)
    write_output(data, output, binary=chosen.is_binary, inputs=[spec])
    ctx.exit(ExitCode.OK)


@click.command("decompile")
@click.argument(
    "payload_path",
    metavar="PAYLOAD",
    shell_complete=complete_path,
)
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    shell_complete=complete_path,
    help="Write the spec here (atomically); default stdout.",
)
@_byte_order_option
@click.option(
    "--kernel",
    callback=kernel_profile,
    shell_complete=complete_kernel,
    metavar="VERSION",
    help="Kernel profile (e.g. 6.12, 7.2) whose reserved ranges are checked; written as "
    "[filter] kernel.",
)
@click.pass_context
@guarded
def decompile(
    ctx: click.Context,
    *,
    payload_path: str,
    output: str | None,
    byte_order: ByteOrder,
    kernel: str | None,
) -> None:
    """Validate PAYLOAD (a file, or - for stdin) and write it back as a canonical spec."""
    result = decompiler.decompile(
        _read(payload_path), _name(payload_path), kernel=kernel, byte_order=byte_order
    )
    _report(result.diagnostics)
    if result.text is None:
        ctx.exit(ExitCode.FINDINGS)
    assert result.text is not None
    write_output(utf8_document(result.text), output, binary=False, inputs=[payload_path])
    ctx.exit(ExitCode.OK)


@click.command("diff")
@click.argument(
    "a",
    shell_complete=complete_path,
)
@click.argument(
    "b",
    shell_complete=complete_path,
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in DiffFormat]),
    default=DiffFormat.TEXT.value,
    show_default=True,
    help="text for people, json (stable, versioned) for tools.",
)
@_byte_order_option
@_kernel_option
@click.pass_context
@guarded
def diff(
    ctx: click.Context, *, a: str, b: str, fmt: str, byte_order: ByteOrder, kernel: str | None
) -> None:
    """Compare the effective action of every function ID in A and B (specs or payloads).

    Exit 0 when they are equivalent, 1 when they differ, 2 when one cannot be read or
    holds errors (a table the kernel would reject has no effective action to compare).
    """
    if a == "-" and b == "-":
        raise click.UsageError("only one of A and B can be - (stdin)")
    result = files.diff_files(
        (_name(a), _read(a)), (_name(b), _read(b)), kernel=kernel, byte_order=byte_order
    )
    if result.changes is None:
        # Lint warnings do not matter to a comparison; only what stopped it is shown.
        _report(result.a.diagnostics + result.b.diagnostics)
        ctx.exit(ExitCode.USAGE)
    chosen = DiffFormat(fmt)
    match chosen:
        case DiffFormat.TEXT:
            click.echo(render.diff_text(result), nl=False)
        case DiffFormat.JSON:
            click.echo(render.diff_json(result), nl=False)
        case _:
            assert_never(chosen)
    ctx.exit(ExitCode.OK if result.equivalent else ExitCode.FINDINGS)
