"""Renderers of lint reports (``hvcfilter check``), one module per output format.

:data:`RENDERERS` maps each :class:`Format` to a pure function
``(report, *, color=False) -> str``: :mod:`.text`, :mod:`.json`,
:mod:`.sarif` and :mod:`.github`. A new format is one module and one
:class:`Format` member.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol, assert_never

from hvcfilter.lint import LintReport
from hvcfilter.render.check.github import render_github
from hvcfilter.render.check.json import CHECK_FORMAT_TAG, JSON_SCHEMA, JSON_VERSION, render_json
from hvcfilter.render.check.sarif import SARIF_SCHEMA_URI, render_sarif
from hvcfilter.render.check.text import render_text

__all__ = [
    "CHECK_FORMAT_TAG",
    "JSON_SCHEMA",
    "JSON_VERSION",
    "RENDERERS",
    "SARIF_SCHEMA_URI",
    "Format",
    "Renderer",
    "render_github",
    "render_json",
    "render_sarif",
    "render_text",
    "renderer",
]


class Format(StrEnum):
    """Output formats of ``hvcfilter check``."""

    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"
    GITHUB = "github"


class Renderer(Protocol):
    """A lint-report renderer: pure, returns the whole output."""

    def __call__(self, report: LintReport, *, color: bool = False) -> str: ...


RENDERERS: dict[Format, Renderer] = {
    Format.TEXT: render_text,
    Format.JSON: render_json,
    Format.SARIF: render_sarif,
    Format.GITHUB: render_github,
}


def renderer(fmt: Format) -> Renderer:
    """The renderer of an output format."""
    match fmt:
        case Format.TEXT:
            return render_text
        case Format.JSON:
            return render_json
        case Format.SARIF:
            return render_sarif
        case Format.GITHUB:
            return render_github
        case _:
            assert_never(fmt)
