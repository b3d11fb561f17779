"""The lint API (``hvcfilter check``): load spec files, run the rules, report per file.

:func:`lint` never raises for bad input: unreadable files and syntax errors
are diagnostics like any other. :class:`LintReport` and :class:`FileReport`
are what the renderers of :mod:`hvcfilter.render.check` turn into text,
JSON, SARIF and the CI formats; nothing here prints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from hvcfilter.diagnostics import Diagnostic, Severity
from hvcfilter.kernel.profiles import get_profile
from hvcfilter.model import FilterSpec
from hvcfilter.rules import check_spec
from hvcfilter.spec import LoadResult, load, loads

__all__ = ["FileReport", "LintReport", "lint", "lint_file", "lint_result", "lint_text"]


@dataclass(frozen=True, slots=True)
class FileReport:
    """The findings for one spec file, sorted by position."""

    path: str
    diagnostics: tuple[Diagnostic, ...]
    spec: FilterSpec | None = field(default=None, compare=False, repr=False)

    @property
    def unreadable(self) -> bool:
        """The file could not be read at all (HVF001)."""
        return any(d.code == "HVF001" for d in self.diagnostics)

    def count(self, severity: Severity) -> int:
        """How many findings have this severity."""
        return sum(1 for d in self.diagnostics if d.severity is severity)


@dataclass(frozen=True, slots=True)
class LintReport:
    """The findings for every file linted, in the order the files were given."""

    files: tuple[FileReport, ...]

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        """Every finding of every file."""
        return tuple(d for f in self.files for d in f.diagnostics)

    @property
    def unreadable(self) -> bool:
        """At least one file could not be read (the CLI exits 2)."""
        return any(f.unreadable for f in self.files)

    def count(self, severity: Severity) -> int:
        """How many findings across all files have this severity."""
        return sum(f.count(severity) for f in self.files)

    def failed(self, *, strict: bool = False) -> bool:
        """Errors were found, or (``strict``) warnings."""
        worst = Severity.WARNING if strict else Severity.ERROR
        return any(d.severity >= worst for d in self.diagnostics)


def lint_result(result: LoadResult, kernel: str | None = None) -> FileReport:
    """Check what :func:`hvcfilter.spec.load` returned: its own findings plus the checks'.

    ``kernel`` overrides the spec's ``[filter] kernel`` profile, as ``compile --kernel`` does.

    Raises:
        UnknownProfileError: ``kernel`` names no profile.
    """
    found = list(result.diagnostics)
    spec = result.spec
    if spec is not None:
        if kernel is not None:
            spec = dataclasses.replace(spec, profile=get_profile(kernel))
        found = check_spec(spec, found)
    return FileReport(result.path, tuple(found), spec)


def lint_text(text: str, filename: str = "<string>") -> FileReport:
    """Lint spec text (tests and editors); never raises for bad input."""
    return lint_result(loads(text, filename))


def lint_file(path: str | Path, kernel: str | None = None) -> FileReport:
    """Lint one spec file; never raises for bad input (unreadable files give HVF001).

    Raises:
        UnknownProfileError: ``kernel`` names no profile.
    """
    return lint_result(load(path), kernel)


def lint(paths: Iterable[str | Path], kernel: str | None = None) -> LintReport:
    """Lint every file, even after one fails; reports keep the order of ``paths``.

    Raises:
        UnknownProfileError: ``kernel`` (overriding each spec's profile) names no profile.
    """
    return LintReport(tuple(lint_file(p, kernel) for p in paths))
