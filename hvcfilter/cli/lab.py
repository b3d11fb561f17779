"""``hvcfilter lab setup|status`` and ``hvcfilter verify``: options, one library call, rendering.

The lab itself is :mod:`hvcfilter.lab`; verification is :mod:`hvcfilter.verify`.
Exit codes: ``lab setup`` 0 when the lab is ready; ``lab status`` 0 ready, 1
not ready; ``verify`` 0 when every real result agrees with the emulator, 1 on
any divergence (or a spec with errors), 2 when the lab is not ready or the
input cannot be read (via :func:`~hvcfilter.cli._common.guarded`).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import assert_never

import click

from hvcfilter.cli._common import ExitCode, complete_path, guarded
from hvcfilter.lab import KERNELS

__all__ = ["ReportFormat", "lab", "verify"]


class ReportFormat(StrEnum):
    """``--format`` of ``lab status`` and ``verify``."""

    TEXT = "text"
    JSON = "json"


_format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in ReportFormat]),
    default=ReportFormat.TEXT.value,
    show_default=True,
    help="Text for people, JSON for tools.",
)
_cache_option = click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Lab cache folder [default: $XDG_CACHE_HOME/hvcfilter/lab or ~/.cache/hvcfilter/lab].",
)
_kernel_option = click.option(
    "--kernel",
    "kernels",
    multiple=True,
    type=click.Choice(list(KERNELS)),
    help="Lab kernel (repeatable).",
)


@click.group("lab")
def lab() -> None:
    """Prepare and inspect the real-kernel lab (qemu + Debian arm64 kernels)."""


@lab.command("boot-calls")
@_cache_option
@_kernel_option
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    help="Write the data here (atomically) [default: stdout]. The shipped copy is "
    "hvcfilter/data/boot-calls.json.",
)
@click.pass_context
@guarded
def boot_calls(
    ctx: click.Context, *, cache: Path | None, kernels: tuple[str, ...], output: str | None
) -> None:
    """Record the SMCCC calls a real Linux guest makes at boot, per lab kernel.

    Boots each kernel (default: the lab's default kernels) as a two-vCPU guest
    under no table and writes the distinct function IDs it called, with their
    counts, as the JSON that `check` reads for HVF306.
    """
    from hvcfilter.cli._common import write_output
    from hvcfilter.lab import DEFAULT_KERNELS
    from hvcfilter.verify.boot_calls import record_boot_calls

    text = record_boot_calls(kernels or DEFAULT_KERNELS, cache_dir=cache)
    write_output(text.encode("utf-8"), output, binary=False, inputs=())
    ctx.exit(ExitCode.OK)


@lab.command("setup")
@_cache_option
@_kernel_option
@click.pass_context
@guarded
def setup(ctx: click.Context, *, cache: Path | None, kernels: tuple[str, ...]) -> None:
    """Install host tools, fetch kernels and busybox, build the driver (idempotent).

    Needs qemu-system-arm, gcc-aarch64-linux-gnu and libc6-dev-arm64-cross; as
    root they are installed with apt-get, otherwise the exact command is shown.
    Progress goes to stderr. Default kernels: 6.1, 6.12 and 7.2.
    """
    from hvcfilter.lab import DEFAULT_KERNELS, prepare_lab
    from hvcfilter.render.verify import lab_status_text

    status = prepare_lab(
        cache, kernels or DEFAULT_KERNELS, progress=lambda m: click.echo(m, err=True)
    )
    click.echo(lab_status_text(status), nl=False)
    ctx.exit(ExitCode.OK if status.ready else ExitCode.FINDINGS)


@lab.command("status")
@_cache_option
@_format_option
@click.pass_context
@guarded
def status(ctx: click.Context, *, cache: Path | None, fmt: str) -> None:
    """Report what the lab cache holds (no network). Exit 0 when ready, 1 when not."""
    from hvcfilter.lab import lab_status
    from hvcfilter.render.verify import lab_status_json, lab_status_text

    current = lab_status(cache)
    chosen = ReportFormat(fmt)
    if chosen is ReportFormat.TEXT:
        click.echo(lab_status_text(current), nl=False)
    elif chosen is ReportFormat.JSON:
        click.echo(lab_status_json(current), nl=False)
    else:
        assert_never(chosen)
    ctx.exit(ExitCode.OK if current.ready else ExitCode.FINDINGS)


@click.command("verify")
@click.argument(
    "spec",
    required=False,
    metavar="[SPEC]",
    shell_complete=complete_path,
)
@click.argument(
    "trace",
    required=False,
    metavar="[TRACE]",
    shell_complete=complete_path,
)
@_kernel_option
@_cache_option
@click.option(
    "--conformance",
    is_flag=True,
    help="Run the seeded random conformance batch and the probes instead of a spec.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="With --conformance.")
@click.option(
    "--count",
    type=click.IntRange(min=0),
    default=600,
    show_default=True,
    help="Random scenarios, with --conformance.",
)
@click.option("--guest", is_flag=True, help="Boot a Linux guest under SPEC in the lab's VMM.")
@click.option(
    "--cpus", type=click.IntRange(1, 8), default=1, show_default=True, help="With --guest."
)
@click.option(
    "--forward-policy",
    type=click.Choice(["not-supported", "psci"]),
    default="not-supported",
    show_default=True,
    help="With --guest: how the VMM answers forwarded calls.",
)
@click.option(
    "--conduit",
    type=click.Choice(["hvc", "smc"]),
    default="hvc",
    show_default=True,
    help="With --guest: the SMCCC conduit the guest's device tree names (its psci method).",
)
@click.option("--console", "show_console", is_flag=True, help="With --guest: the whole console.")
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="With --guest: kernels booted at once (default: one per core).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=5),
    default=60.0,
    show_default=True,
    help="With --guest: seconds before the VMM stops a guest that has not powered off.",
)
@click.option(
    "--save-trace",
    metavar="FILE",
    help="With --guest: write the guest's calls as a trace that `hvcfilter simulate` reads: "
    "JSON Lines with every register when FILE ends in .jsonl, else the lab kernel's ftrace "
    "(HVCs only). One file per kernel when several run: trace.6.12.jsonl for trace.jsonl.",
)
@_format_option
@click.pass_context
@guarded
def verify(
    ctx: click.Context,
    *,
    spec: str | None,
    trace: str | None,
    kernels: tuple[str, ...],
    cache: Path | None,
    conformance: bool,
    seed: int,
    count: int,
    fmt: str,
    guest: bool,
    cpus: int,
    forward_policy: str,
    conduit: str,
    show_console: bool,
    jobs: int | None,
    timeout: float,
    save_trace: str | None,
) -> None:
    """Install SPEC on real Linux KVMs, replay TRACE's calls (or probes), compare with the emulator.

    Without TRACE the calls probe every record edge, every reserved-range edge
    and every well-known function ID on both conduits. Kernels default to the
    spec's profile. Exit 0 when every result agrees, 1 on any divergence.
    With --guest, boot a Linux guest under SPEC and report its SMCCC calls.
    """
    from hvcfilter import verify as api
    from hvcfilter.lab import DEFAULT_KERNELS
    from hvcfilter.render.compile import diagnostics_text
    from hvcfilter.render.verify import verify_json, verify_text
    from hvcfilter.spec import DEFAULT_SPEC

    if conformance and spec is not None:
        raise click.UsageError("--conformance takes no SPEC or TRACE")
    if save_trace is not None and not guest:
        raise click.UsageError("--save-trace needs --guest")
    if guest:
        if conformance or trace is not None:
            raise click.UsageError("--guest takes a SPEC only (no TRACE, no --conformance)")
        _verify_guest(
            ctx,
            spec=spec,
            kernels=kernels,
            cpus=cpus,
            forward_policy=forward_policy,
            conduit=conduit,
            jobs=jobs,
            show_console=show_console,
            timeout=timeout,
            fmt=fmt,
            save_trace=save_trace,
        )
        return
    if conformance:
        result = api.conformance(kernels or DEFAULT_KERNELS, seed, count, cache_dir=cache)
    else:
        result = api.verify(spec or DEFAULT_SPEC, trace, kernels, cache_dir=cache)
    if result.diagnostics:
        click.echo(diagnostics_text(result.diagnostics), err=True, nl=False)
    if not result.compiled:
        ctx.exit(ExitCode.USAGE if result.unreadable else ExitCode.FINDINGS)
    chosen = ReportFormat(fmt)
    if chosen is ReportFormat.TEXT:
        click.echo(verify_text(result), nl=False)
    elif chosen is ReportFormat.JSON:
        click.echo(verify_json(result), nl=False)
    else:
        assert_never(chosen)
    ctx.exit(ExitCode.OK if result.ok else ExitCode.FINDINGS)


def _verify_guest(
    ctx: click.Context,
    *,
    spec: str | None,
    kernels: tuple[str, ...],
    cpus: int,
    forward_policy: str,
    conduit: str,
    jobs: int | None,
    show_console: bool,
    timeout: float,
    fmt: str,
    save_trace: str | None,
) -> None:
    from hvcfilter.fileio import write_atomic
    from hvcfilter.render.compile import diagnostics_text
    from hvcfilter.render.guest import guest_calls_jsonl, guest_json, guest_text
    from hvcfilter.spec import DEFAULT_SPEC
    from hvcfilter.verify.guest import ForwardPolicy, verify_guest

    result = verify_guest(spec or DEFAULT_SPEC, kernels, cpus=cpus, conduit=conduit, jobs=jobs,
                          policy=ForwardPolicy(forward_policy), timeout_s=timeout)  # fmt: skip
    if result.diagnostics:
        click.echo(diagnostics_text(result.diagnostics), err=True, nl=False)
    if not result.compiled:
        ctx.exit(ExitCode.USAGE if result.unreadable else ExitCode.FINDINGS)
    if save_trace is not None:
        jsonl = save_trace.endswith(".jsonl")
        for report in result.guests:
            smc = sum(c.conduit == "smc" for c in report.calls)
            if smc and not jsonl:
                click.echo(
                    f"warning: Linux {report.kernel}: ftrace records no SMC's function ID, so "
                    f"the {smc} SMC calls are not in the saved trace; name a .jsonl FILE to "
                    "keep them",
                    err=True,
                )
            text = guest_calls_jsonl(report) if jsonl else report.trace
            write_atomic(
                _trace_path(save_trace, report.kernel, len(result.guests)),
                text.encode(),
                inputs=[spec or DEFAULT_SPEC],
            )
    chosen = ReportFormat(fmt)
    if chosen is ReportFormat.TEXT:
        click.echo(guest_text(result, console=show_console), nl=False)
    elif chosen is ReportFormat.JSON:
        click.echo(guest_json(result), nl=False)
    else:
        assert_never(chosen)
    ctx.exit(ExitCode.OK if result.ok else ExitCode.FINDINGS)


def _trace_path(path: str, kernel: str, kernels: int) -> Path:
    """Where ``--save-trace`` writes one kernel's trace: FILE, or STEM.KERNEL.EXT for several.

    EXT is FILE's extension, ``.txt`` when it has none.
    """
    target = Path(path)
    if kernels == 1:
        return target
    return target.with_name(f"{target.stem}.{kernel}{target.suffix or '.txt'}")
