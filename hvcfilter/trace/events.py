"""What a trace holds: calls (:class:`TraceEvent`), and the counts of everything else.

The model every trace format parses into. :class:`TraceTally` counts
distinct calls and every line that is not one, so that a replay can say how
much of a trace it read and why it skipped the rest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from enum import StrEnum
from typing import Final, NamedTuple

from hvcfilter.smccc import CallKey, Conduit, Mode
from hvcfilter.utf8 import visible

__all__ = [
    "MAX_BAD_LINES",
    "W0_MASK",
    "BadLine",
    "Progress",
    "TraceEvent",
    "TraceFormat",
    "TraceTally",
]

# How many unparseable lines a tally keeps verbatim; the rest are only counted.
MAX_BAD_LINES: Final = 5
W0_MASK: Final = 0xFFFF_FFFF

# Called with (bytes consumed so far, total bytes or None) as input is read.
Progress = Callable[[int, int | None], None]


class TraceFormat(StrEnum):
    """The trace formats ``simulate`` reads."""

    AUTO = "auto"
    FTRACE = "ftrace"
    JSONL = "jsonl"
    CSV = "csv"


class TraceEvent(NamedTuple):
    """One guest call as a trace recorded it.

    ``x0`` is the full register (ftrace records 64 bits; the filter uses W0).
    ``vcpu`` is the vCPU index from JSON Lines/CSV, or the pid of the vCPU
    thread from ftrace. ``line`` is the 1-based line number in ``source``.
    """

    x0: int
    conduit: Conduit
    imm: int
    mode: Mode
    vcpu: int | None
    ts: float | None
    line: int
    source: str = ""
    x1: int | None = None
    x2: int | None = None
    x3: int | None = None

    @property
    def function_id(self) -> int:
        """W0, the 32 bits KVM's filter and handlers look at."""
        return self.x0 & W0_MASK

    @property
    def key(self) -> CallKey:
        """The fields that decide the outcome (register arguments aside)."""
        return (self.x0 & W0_MASK, self.conduit, self.imm, self.mode)


class BadLine(NamedTuple):
    """A line that could not be parsed: where it is, what it says, and why."""

    source: str
    line: int
    text: str
    reason: str

    def __str__(self) -> str:
        return f"{visible(self.source)}:{self.line}: {self.reason}: {self.text}"


# TraceTally's fields in the order its constructor takes them, its slots, equality and repr.
_TALLY_FIELDS = (
    "lines",
    "comments",
    "events",
    "smc_without_id",
    "skipped",
    "calls",
    "bad_lines",
    "formats",
)


class TraceTally:
    """Counts over one or more traces; ``calls`` holds one entry per distinct :data:`CallKey`.

    A plain slotted class, with the constructor, equality and repr the
    dataclass it was had: importing dataclasses costs a small replay more than
    the replay itself.
    """

    __slots__ = _TALLY_FIELDS

    def __init__(  # noqa: PLR0917 - the fields in order, as the dataclass took them
        self,
        lines: int = 0,
        comments: int = 0,
        events: int = 0,
        smc_without_id: int = 0,
        skipped: int = 0,
        calls: Counter[CallKey] | None = None,
        bad_lines: list[BadLine] | None = None,
        formats: dict[str, str] | None = None,
    ) -> None:
        self.lines = lines
        self.comments = comments
        self.events = events
        self.smc_without_id = smc_without_id
        self.skipped = skipped
        self.calls: Counter[CallKey] = Counter() if calls is None else calls
        self.bad_lines: list[BadLine] = [] if bad_lines is None else bad_lines
        self.formats: dict[str, str] = {} if formats is None else formats

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in _TALLY_FIELDS)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TraceTally):
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # mutable: unhashable, as the dataclass was

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in _TALLY_FIELDS)
        return f"TraceTally({shown})"

    @property
    def call_count(self) -> int:
        """Calls with a function ID."""
        return sum(self.calls.values())

    @property
    def ignored_events(self) -> int:
        """Well-formed events that are neither a call nor an SMC trap."""
        return self.events - self.call_count - self.smc_without_id

    def merge(self, other: TraceTally, *, line_offset: int = 0) -> None:
        """Add another tally's counts; its bad-line numbers are shifted by ``line_offset``."""
        self.lines += other.lines
        self.comments += other.comments
        self.events += other.events
        self.smc_without_id += other.smc_without_id
        self.skipped += other.skipped
        self.calls.update(other.calls)
        room = MAX_BAD_LINES - len(self.bad_lines)
        self.bad_lines.extend(
            BadLine(b.source, b.line + line_offset, b.text, b.reason)
            for b in other.bad_lines[: max(room, 0)]
        )

    def bad(self, source: str, line: int, text: bytes | str, reason: str) -> None:
        """Count an unparseable line, keeping the first few verbatim."""
        self.skipped += 1
        if len(self.bad_lines) < MAX_BAD_LINES:
            shown = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
            shown = visible(shown.rstrip("\r\n")[:200])
            self.bad_lines.append(BadLine(source, line, shown, reason))
