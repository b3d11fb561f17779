"""``hvcfilter compile-check``: are committed payloads still what their specs compile to?

Made for pre-commit (``.pre-commit-hooks.yaml``, hook ``hvcfilter-compile-check``)
and CI: the work is :mod:`hvcfilter.emit.committed`, the output
:mod:`hvcfilter.render.committed`. Exit 0 when every pair is up to date,
1 when one is stale, missing or its spec no longer compiles, 2 on a usage
error or an unreadable spec.
"""

from __future__ import annotations

import click

from hvcfilter.cli._common import ExitCode, complete_kernel, complete_path, guarded, kernel_profile
from hvcfilter.emit.committed import Status, check_pair, pair_files
from hvcfilter.render.committed import compile_check_json, compile_check_text
from hvcfilter.table.payload import ByteOrder

__all__ = ["compile_check"]


@click.command(
    "compile-check",
    epilog="Exit codes: 0 up to date, 1 a stale or missing output or a spec that does not "
    "compile, 2 usage error or unreadable spec.",
)
@click.argument(
    "files",
    nargs=-1,
    metavar="[FILE|SPEC=OUTPUT]...",
    shell_complete=complete_path,
)
@click.option("--no-merge", is_flag=True, help="The outputs were compiled with --no-merge.")
@click.option(
    "--byte-order",
    type=click.Choice(["little", "big"]),
    default="little",
    show_default=True,
    help="The byte order the binary outputs were compiled with.",
)
@click.option(
    "--kernel",
    callback=kernel_profile,
    shell_complete=complete_kernel,
    metavar="VERSION",
    help="The kernel profile the outputs were compiled with (--kernel of compile).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text (with a diff per stale output) or json.",
)
@click.pass_context
@guarded
def compile_check(
    ctx: click.Context,
    *,
    files: tuple[str, ...],
    no_merge: bool,
    byte_order: ByteOrder,
    kernel: str | None,
    fmt: str,
) -> None:
    """Check that each committed output (vm.bin, vm.h, vm.rs, ...) is byte for byte what
    its spec (vm.toml, same directory and name) compiles to; SPEC=OUTPUT pairs files that
    live apart. A spec with no output beside it is skipped. Prints a diff otherwise.
    With no FILE, checks hvcfilter.toml in the current directory."""
    from hvcfilter.spec import DEFAULT_SPEC

    try:
        pairs = pair_files(files or (DEFAULT_SPEC,))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    results = [
        check_pair(p, merge=not no_merge, kernel=kernel, byte_order=byte_order) for p in pairs
    ]
    # What the refresh command must pass again, or it writes a stale output.
    options = ["--no-merge"] * no_merge
    if byte_order != "little":
        options += ["--byte-order", byte_order]
    if kernel is not None:
        options += ["--kernel", kernel]
    render = compile_check_json if fmt == "json" else compile_check_text
    click.echo(render(results, options), nl=False)
    if any(r.unreadable for r in results):
        ctx.exit(int(ExitCode.USAGE))
    ctx.exit(
        int(ExitCode.OK if all(r.status is Status.FRESH for r in results) else ExitCode.FINDINGS)
    )
