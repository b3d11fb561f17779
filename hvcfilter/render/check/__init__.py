"""Renderers of lint reports (``hvcfilter check``), one module per output format.

:func:`renderer` gives each :class:`Format` its pure function
``(report, *, color=False, strict=False) -> str``: :mod:`.text`,
:mod:`.json`, :mod:`.sarif`, :mod:`.github`, :mod:`.gitlab` (Code Quality,
with the stable IDs of :mod:`.fingerprint`) and :mod:`.junit`, each
imported only when asked for, so
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
    GITLAB = "gitlab"
    JUNIT = "junit"


class Renderer(Protocol):
    """A lint-report renderer: pure, returns the whole output."""

    def __call__(self, report: LintReport, *, color: bool = False, strict: bool = False) -> str: ...


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
        case Format.GITLAB:
            from hvcfilter.render.check.gitlab import render_gitlab

            return render_gitlab
        case Format.JUNIT:
            from hvcfilter.render.check.junit import render_junit

            return render_junit
        case _:
            assert_never(fmt)
