"""Renderers of lint reports (``hvcfilter check``), one module per output format.

:func:`renderer` gives each :class:`Format` its pure function
``(report, *, color=False) -> str``: :mod:`.text`, :mod:`.json`,
:mod:`.sarif` and :mod:`.github`, each imported only when asked for, so
that ``check`` pays only for the format it prints. A new format is one
module, one :class:`Format` member and one case in :func:`renderer`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol, assert_never

from hvcfilter.lint import LintReport

__all__ = ["Format", "Renderer", "renderer"]


class Format(StrEnum):
    """Output formats of ``hvcfilter check``."""

    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"
    GITHUB = "github"


class Renderer(Protocol):
    """A lint-report renderer: pure, returns the whole output."""

    def __call__(self, report: LintReport, *, color: bool = False) -> str: ...


def renderer(fmt: Format) -> Renderer:
    """The renderer of an output format."""
    match fmt:
        case Format.TEXT:
            from hvcfilter.render.check.text import render_text

            return render_text
        case Format.JSON:
            from hvcfilter.render.check.json import render_json

            return render_json
        case Format.SARIF:
            from hvcfilter.render.check.sarif import render_sarif

            return render_sarif
        case Format.GITHUB:
            from hvcfilter.render.check.github import render_github

            return render_github
        case _:
            assert_never(fmt)
