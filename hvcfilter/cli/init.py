"""``hvcfilter init``: write a starter spec from a template."""

from __future__ import annotations

import json
import os

import click

from hvcfilter.cli._common import ExitCode, complete_path, complete_template, guarded
from hvcfilter.spec import DEFAULT_SPEC

__all__ = ["init"]


@click.command(
    epilog="Exit codes: 0 written (or listed), 2 unknown template, existing file without "
    "--force, or a file that cannot be written."
)
@click.argument("path", default=DEFAULT_SPEC, metavar="[PATH]", shell_complete=complete_path)
@click.option(
    "-t",
    "--template",
    "name",
    default="lockdown",
    show_default=True,
    metavar="NAME",
    shell_complete=complete_template,
    help="The starter table (see --list).",
)
@click.option("--list", "list_only", is_flag=True, help="List the templates and exit.")
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="With --list: text for people, json for tools.",
)
@click.pass_context
@guarded
def init(
    ctx: click.Context, *, path: str, name: str, list_only: bool, force: bool, fmt: str
) -> None:
    """Write a commented, check-clean starter spec to PATH (default: hvcfilter.toml; - for stdout).

    Templates: lockdown (deny SiP, OEM and Trusted OS calls), vcpu-hotplug
    (PSCI CPU_ON/CPU_OFF to the VMM), trng-in-vmm, sip-in-vmm and minimal.
    """
    from hvcfilter.fileio import write_atomic
    from hvcfilter.spec.templates import get_template, templates

    if list_only:
        rows = [{"name": t.name, "summary": t.summary} for t in templates()]
        if fmt == "json":
            click.echo(json.dumps({"templates": rows}, indent=2))
        else:
            width = max(len(r["name"]) for r in rows)
            for r in rows:
                click.echo(f"{r['name']:<{width}}  {r['summary']}")
        ctx.exit(ExitCode.OK)
    if fmt != "text":
        raise click.UsageError("--format applies to --list only: a spec is always TOML")
    template = get_template(name)
    if path == "-":  # as everywhere else, "-" is standard output, not a file named "-"
        click.echo(template.render(), nl=False)
        ctx.exit(ExitCode.OK)
    if not path:
        raise click.UsageError("the path is empty; name the spec file to write")
    # os.path, not Path: its probes take a name too long to exist for a missing file,
    # and write_atomic then says why it cannot be written.
    if os.path.isdir(path):
        raise click.UsageError(f"{path} is a directory; name a file, such as {path}/hvcfilter.toml")
    # lexists: a link counts even when dangling, as writing through it creates a file elsewhere.
    if os.path.lexists(path) and not force:
        raise click.UsageError(f"{path} exists; use --force to overwrite it")
    write_atomic(path, template.render().encode("utf-8"))
    click.echo(
        f"wrote {path} from template {template.name}; next: hvcfilter check {path}", err=True
    )
