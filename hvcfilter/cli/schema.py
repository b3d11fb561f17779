"""``hvcfilter schema``: print the JSON Schema of the spec format, for editors and validators.

The schema is the one shipped in the package (generated from the pydantic
models by :mod:`hvcfilter.spec.json_schema` and kept equal by a test), so
printing it never imports pydantic.
"""

from __future__ import annotations

import click

from hvcfilter.cli._common import ExitCode, complete_path, guarded, write_output
from hvcfilter.spec.json_schema import shipped

__all__ = ["schema"]


@click.command("schema")
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    shell_complete=complete_path,
    help="Write the schema to FILE (atomically).",
)
@click.pass_context
@guarded
def schema(ctx: click.Context, output: str | None) -> None:
    """Print the JSON Schema (draft 2020-12) of spec files. Point taplo or Even Better TOML
    at it (a `#:schema PATH` first line) for completion, hover docs and validation."""
    write_output(shipped().encode("utf-8"), output, binary=False)
    ctx.exit(int(ExitCode.OK))
