"""Styled text for people: lines of (text, style) segments, plain or coloured through rich.

Every text renderer builds :data:`Segments` lines and hands them to
:func:`styled`: without colour it joins the characters itself, which keeps
pipes and CI fast; with colour it imports rich, only then.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from hvcfilter.diagnostics import Severity
from hvcfilter.utf8 import visible

__all__ = ["SEVERITY_STYLE", "Segments", "plural", "styled"]

# A line of styled text: (text, rich style or None) segments.
Segments = list[tuple[str, str | None]]
SEVERITY_STYLE = {
    Severity.ERROR: "bold red",
    Severity.WARNING: "bold yellow",
    Severity.NOTE: "bold cyan",
}


def plural(n: int, word: str) -> str:
    """``1 error``, ``2 errors``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def styled(lines: Sequence[Segments], *, color: bool) -> str:
    """Join styled lines: plain text, or ANSI colour through rich."""
    # Every segment through visible(): names and trace text must not drive the terminal.
    if not color:
        return "".join("".join(visible(text) for text, _ in line) + "\n" for line in lines)
    from rich.console import Console  # only coloured text output pays for rich
    from rich.text import Text

    buffer = io.StringIO()
    console = Console(
        file=buffer,
        force_terminal=True,
        color_system="standard",
        highlight=False,
        emoji=False,
        width=100_000,
    )
    for line in lines:
        text = Text()
        for part, style in line:
            text.append(visible(part), style=style or "")
        console.print(text, soft_wrap=True)
    return buffer.getvalue()
