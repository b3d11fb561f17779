"""Regenerate the generated parts of the documentation, or check that they are current.

``docs/rules.md`` comes from the rule registry
(:func:`hvcfilter.render.rules_reference.rules_reference`). In the command
pages (``docs/commands/*.md``) and the README, each block between ``<!-- run: hvcfilter ... -->``
and ``<!-- end run -->`` is the real output of that command, run in-process
from the repository root on the shipped examples and traces; ``run lines=N:``
keeps the first N lines. In ``docs/api.md`` each Python example followed by
"It prints:" is run in a fresh interpreter and its output written below it.
``tests/test_docs.py`` fails when any of it is stale.

Usage: ``python docs/gen_docs.py`` rewrites the files; ``--check`` only reports
(exit 1 if stale). Not part of the package: it drives the CLI, which nothing
in ``hvcfilter`` may import.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from click.testing import CliRunner

from hvcfilter.cli import cli
from hvcfilter.render.rules_reference import rules_reference

__all__ = [
    "API_PAGE",
    "COMMANDS_DIR",
    "DOCS",
    "ROOT",
    "RunBlock",
    "expected_files",
    "main",
    "refresh_outputs",
    "refresh_python",
    "run_command",
    "run_python",
]

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
COMMANDS_DIR = DOCS / "commands"
API_PAGE = DOCS / "api.md"
REGENERATE = "python docs/gen_docs.py"

# A Python example and, after it, what it prints.
_PYTHON = re.compile(
    r"(?P<head>```python\n(?P<code>.*?)```\n\nIt prints[^\n]*:\n\n)(?P<out>```text\n.*?```\n)",
    re.S,
)
_BLOCK = re.compile(
    r"(?P<open><!-- run(?: lines=(?P<lines>\d+))?: (?P<cmd>[^\n]*?) -->\n)"
    r"(?P<body>.*?)"
    r"(?P<close><!-- end run -->)",
    re.S,
)
# Wide enough for the simulate and learn tables, and fixed so the output is the
# same on every machine and terminal.
_ENV = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}


@dataclass(frozen=True, slots=True)
class RunBlock:
    """One command's output as a page shows it."""

    command: str
    output: str
    exit_code: int


def run_command(command: str, *, max_lines: int | None = None) -> RunBlock:
    """Run ``hvcfilter ...`` in-process from the repository root and capture what it prints.

    Raises:
        ValueError: the command does not start with ``hvcfilter``.
    """
    argv = shlex.split(command)
    if not argv or argv[0] != "hvcfilter":
        raise ValueError(f"a documented command must start with hvcfilter: {command!r}")
    # sys.argv as the console script would see it: learn writes its command line
    # into the spec it learns.
    with contextlib.chdir(ROOT), mock.patch.object(sys, "argv", argv):
        result = CliRunner().invoke(
            cli, argv[1:], env=_ENV, catch_exceptions=False, prog_name="hvcfilter"
        )
    output = result.output.replace(str(ROOT) + "/", "")
    lines = output.rstrip("\n").splitlines()
    if max_lines is not None and len(lines) > max_lines:
        lines = [*lines[:max_lines], f"... ({len(lines) - max_lines} more lines)"]
    return RunBlock(command, "\n".join(line.rstrip() for line in lines), result.exit_code)


def _render_block(block: RunBlock) -> str:
    text = f"```console\n$ {block.command}\n{block.output}\n```\n"
    if block.exit_code:
        text += f"\nExit status {block.exit_code}.\n"
    return text


def refresh_outputs(page: str) -> str:
    """The page with every ``<!-- run: ... -->`` block replaced by the command's real output."""

    def replace(match: re.Match[str]) -> str:
        lines = int(match["lines"]) if match["lines"] else None
        block = run_command(match["cmd"], max_lines=lines)
        return match["open"] + _render_block(block) + match["close"]

    return _BLOCK.sub(replace, page)


def run_python(code: str) -> str:
    """Run an example in a fresh interpreter from the repository root; what it prints.

    Raises:
        RuntimeError: the example failed (its stderr is in the message).
    """
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if result.returncode:
        raise RuntimeError(f"a documented Python example failed:\n{code}\n{result.stderr}")
    return result.stdout


def refresh_python(page: str) -> str:
    """The page with the text block after each ``It prints:`` replaced by the real output."""

    def replace(match: re.Match[str]) -> str:
        return match["head"] + f"```text\n{run_python(match['code'])}```\n"

    return _PYTHON.sub(replace, page)


def expected_files() -> dict[Path, str]:
    """Every generated file (or page with generated blocks) and what it should contain."""
    files = {DOCS / "rules.md": rules_reference()}
    files[API_PAGE] = refresh_python(API_PAGE.read_text("utf-8"))
    for page in sorted(COMMANDS_DIR.glob("*.md")):
        files[page] = refresh_outputs(page.read_text("utf-8"))
    # The README's examples drift like any page's (an example's line numbers move).
    readme = ROOT / "README.md"
    files[readme] = refresh_outputs(readme.read_text("utf-8"))
    return files


def main(argv: list[str]) -> int:
    """Rewrite the generated docs (or, with ``--check``, list the stale ones); the exit code."""
    check = "--check" in argv
    stale = []
    for path, text in expected_files().items():
        if path.exists() and path.read_text("utf-8") == text:
            continue
        stale.append(path.relative_to(ROOT))
        if not check:
            path.write_text(text, "utf-8")
    for path in stale:
        sys.stderr.write(f"{'stale' if check else 'updated'}: {path}\n")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
