"""The lint API (``hvcfilter check``): load spec files, run the rules, report per file.

:func:`lint` never raises for bad input: unreadable files and syntax errors
are diagnostics like any other. :class:`LintReport` and :class:`FileReport`
are what the renderers of :mod:`hvcfilter.render.check` turn into text,
JSON, SARIF and the CI formats; nothing here prints.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from hvcfilter.diagnostics import Diagnostic, Severity
from hvcfilter.kernel.profiles import get_profile
from hvcfilter.model import FilterSpec
from hvcfilter.rules import check_spec
from hvcfilter.spec import LoadResult, load, loads

__all__ = ["FileReport", "LintReport", "lint", "lint_file", "lint_result", "lint_text"]


# The two reports are written-out slotted classes rather than dataclasses:
# `check` runs on every save in an editor, and importing `dataclasses` (it
# pulls in `inspect`) costs more than linting a small spec.


class FileReport:
    """The findings for one spec file, sorted by position; ``spec`` when it loaded."""

    __slots__ = ("diagnostics", "path", "spec")

    def __init__(
        self, path: str, diagnostics: tuple[Diagnostic, ...], spec: FilterSpec | None = None
    ) -> None:
        self.path = path
        self.diagnostics = diagnostics
        self.spec = spec

    def __eq__(self, other: object) -> bool:
        # The spec is what the findings came from, not part of the report's value.
        if not isinstance(other, FileReport):
            return NotImplemented
        return (self.path, self.diagnostics) == (other.path, other.diagnostics)

    def __hash__(self) -> int:
        return hash((self.path, self.diagnostics))

    def __repr__(self) -> str:
        return f"FileReport(path={self.path!r}, diagnostics={self.diagnostics!r})"

    @property
    def unreadable(self) -> bool:
        """The file could not be read at all (HVF001)."""
        return any(d.code == "HVF001" for d in self.diagnostics)

    def count(self, severity: Severity) -> int:
        """How many findings have this severity."""
        return sum(1 for d in self.diagnostics if d.severity is severity)


class LintReport:
    """The findings for every file linted, in the order the files were given."""

    __slots__ = ("files",)

    def __init__(self, files: tuple[FileReport, ...]) -> None:
        self.files = files

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LintReport):
            return NotImplemented
        return self.files == other.files

    def __hash__(self) -> int:
        return hash(self.files)

    def __repr__(self) -> str:
        return f"LintReport(files={self.files!r})"

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
            spec = spec._replace(profile=get_profile(kernel))
        found = check_spec(spec, found)
    return FileReport(result.path, tuple(found), spec)


def lint_text(text: str, filename: str = "<string>") -> FileReport:
    """Lint spec text (tests and editors); never raises for bad input."""
    return lint_result(loads(text, filename))


def lint_file(path: str | os.PathLike[str], kernel: str | None = None) -> FileReport:
    """Lint one spec file; never raises for bad input (unreadable files give HVF001).

    Raises:
        UnknownProfileError: ``kernel`` names no profile.
    """
    return lint_result(load(path, kernel=kernel), kernel)


def lint(paths: Iterable[str | os.PathLike[str]], kernel: str | None = None) -> LintReport:
    """Lint every file, even after one fails; reports keep the order of ``paths``.

    Raises:
        UnknownProfileError: ``kernel`` (overriding each spec's profile) names no profile.
    """
    return LintReport(tuple(lint_file(p, kernel) for p in paths))
