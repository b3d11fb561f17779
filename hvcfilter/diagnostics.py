"""Diagnostics: the one shape every finding takes, from TOML syntax to replay mismatches.

A diagnostic carries a stable code (``HVF`` plus three digits), a severity, a
message, an optional hint and a location precise enough for editors, SARIF and
GitHub annotations.
"""

# No `from __future__ import annotations`: NamedTuple compiles string annotations at start.

from enum import IntEnum
from typing import NamedTuple

__all__ = ["Diagnostic", "Location", "Severity"]


class Severity(IntEnum):
    """How bad a finding is; ordered so that ``max()`` gives the worst.

    error: the kernel will reject the table, or the input cannot be understood.
    warning: the kernel accepts it, but it probably does not do what was meant.
    note: a simplification or style point.
    """

    NOTE = 1
    WARNING = 2
    ERROR = 3

    @property
    def label(self) -> str:
        """The lower-case name used in every output format."""
        return self.name.lower()


class Location(NamedTuple):
    """Where a finding is: a file, a 1-based line and column, a TOML key path, a byte offset."""

    file: str
    line: int | None = None
    column: int | None = None
    key: str | None = None
    offset: int | None = None

    def __str__(self) -> str:
        text = self.file
        if self.line is not None:
            text += f":{self.line}"
            if self.column is not None:
                text += f":{self.column}"
        elif self.offset is not None:
            text += f"@{self.offset:#x}"
        return text


class Diagnostic(NamedTuple):
    """One finding with its stable code, e.g. ``HVF201 overlapping-ranges``."""

    code: str
    name: str
    severity: Severity
    message: str
    location: Location
    hint: str | None = None

    def sort_key(self) -> tuple[str, int, int, str]:
        """Order by file, line, column, then code: the order a reader expects."""
        loc = self.location
        return (loc.file, loc.line or 0, loc.column or 0, self.code)
