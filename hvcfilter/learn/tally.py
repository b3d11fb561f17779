"""The tally: what a set of traces holds, in a versioned JSON form that merges in any order.

A :class:`Tally` counts calls per ``(function ID, conduit, outcome)`` and
records, for each, in how many traces it was seen; it also lists the traces
and the kernel profile they are learned for. :func:`merge` adds counts and
concatenates trace lists, then sorts: addition and multiset union are
associative and commutative, so merging in any order or tree gives the same
tally, and :func:`dumps` (sorted keys, sorted rows) the same bytes. The JSON
form is described by ``hvcfilter/data/tally.schema.json``; :func:`loads`
checks it field by field and rejects another ``version`` with a clear error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from hvcfilter import smccc
from hvcfilter.errors import HvcFilterError
from hvcfilter.kernel.profiles import UnknownProfileError, get_profile
from hvcfilter.trace import TraceTally
from hvcfilter.utf8 import json_text

__all__ = [
    "FORMAT",
    "TALLY_VERSION",
    "CallCount",
    "LearnError",
    "Outcome",
    "Tally",
    "TallyKey",
    "dumps",
    "from_trace",
    "loads",
    "merge",
]

FORMAT: Final = "hvcfilter-tally"
TALLY_VERSION: Final = 1

# What the guest got: answered in the kernel, or forwarded to the VMM (a userspace exit).
Outcome = Literal["kernel", "forwarded"]
_OUTCOMES: Final = ("kernel", "forwarded")
# Counts are 64-bit signed in the schema, so that every JSON reader can hold them;
# a hostile tally of a 4,000-digit count failed as an internal error once merged.
MAX_COUNT: Final = (1 << 63) - 1
_FUNCTION_ID = re.compile(r"0x[0-9A-F]{8}")
TallyKey = tuple[int, str, Outcome]


class LearnError(HvcFilterError):
    """A tally or a set of traces cannot be learned from (empty, corrupt, mixed)."""


@dataclass(frozen=True, slots=True)
class CallCount:
    """How many times one call was seen, and in how many traces."""

    count: int
    traces: int


@dataclass(frozen=True, slots=True)
class Tally:
    """Calls per (W0, conduit, outcome), the traces they came from, and the kernel profile."""

    kernel: str
    traces: tuple[str, ...]
    calls: Mapping[TallyKey, CallCount] = field(default_factory=dict)
    smc_without_id: int = 0

    @property
    def call_count(self) -> int:
        """Calls with a function ID, over every trace."""
        return sum(c.count for c in self.calls.values())


def from_trace(
    name: str, trace: TraceTally, kernel: str, forwarded: Mapping[int, int] | None = None
) -> Tally:
    """The tally of one trace (one file), from the trace room's counts.

    ``imm`` and ``mode`` are folded away: the filter looks only at W0.
    ``forwarded`` counts the HVCs per W0 that the trace shows forwarded to
    userspace; they move from ``kernel`` to ``forwarded``, the rest stay.
    """
    counts: dict[TallyKey, int] = {}
    left = dict(forwarded or {})
    for (fid, conduit, _imm, _mode), n in sorted(trace.calls.items()):
        moved = min(n, left.get(fid, 0)) if conduit == "hvc" else 0
        if moved:
            left[fid] -= moved
            counts[(fid, conduit, "forwarded")] = counts.get((fid, conduit, "forwarded"), 0) + moved
        if n > moved:
            key: TallyKey = (fid, conduit, "kernel")
            counts[key] = counts.get(key, 0) + n - moved
    calls = {k: CallCount(n, 1) for k, n in counts.items()}
    return Tally(kernel, (name,), calls, trace.smc_without_id)


def merge(tallies: Iterable[Tally]) -> Tally:
    """One tally from many: counts added, traces listed, in a canonical order.

    Raises:
        LearnError: no tallies, or tallies of different kernel profiles.
    """
    kernel: str | None = None
    traces: list[str] = []
    counts: dict[TallyKey, list[int]] = {}
    smc = 0
    for tally in tallies:
        if kernel is None:
            kernel = tally.kernel
        elif tally.kernel != kernel:
            raise LearnError(
                f"cannot merge tallies of kernel {kernel} and kernel {tally.kernel}: "
                "learn each kernel's fleet separately (--kernel)"
            )
        traces.extend(tally.traces)
        smc += tally.smc_without_id
        for key, call in tally.calls.items():
            slot = counts.get(key)
            if slot is None:
                counts[key] = [call.count, call.traces]
            else:
                slot[0] += call.count
                slot[1] += call.traces
    if kernel is None:
        raise LearnError("nothing to merge: no tallies given")
    if smc > MAX_COUNT or any(c[0] > MAX_COUNT for c in counts.values()):
        raise LearnError(f"the merged counts pass {MAX_COUNT:,}, the most a tally holds")
    calls = {k: CallCount(c[0], c[1]) for k, c in sorted(counts.items())}
    return Tally(kernel, tuple(sorted(traces)), calls, smc)


def dumps(tally: Tally) -> str:
    """The tally as canonical JSON (sorted rows and keys, one row per line)."""
    rows = [
        {
            "function_id": smccc.format_id(fid),
            "conduit": conduit,
            "outcome": outcome,
            "count": call.count,
            "traces": call.traces,
        }
        for (fid, conduit, outcome), call in sorted(tally.calls.items())
    ]
    head = {
        "format": FORMAT,
        "version": TALLY_VERSION,
        "kernel": tally.kernel,
        "traces": sorted(tally.traces),
        "smc_without_id": tally.smc_without_id,
    }
    body = ",\n".join("  " + json_text(r, sort_keys=True) for r in rows)
    text = json_text(head, sort_keys=True, indent=1)[:-2]
    return f'{text},\n "calls": [\n{body}\n ]\n}}\n' if rows else f'{text},\n "calls": []\n}}\n'


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's members; a key given twice is an error (json keeps the last, silently)."""
    doc = dict(pairs)
    if len(doc) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(key)
            seen.add(key)
    return doc


def loads(text: str | bytes, filename: str = "<tally>") -> Tally:
    """Read a tally written by :func:`dumps` (or by hand, following the schema).

    Raises:
        LearnError: not JSON, not a tally, another version, or a bad field;
            the message names the file and the field.
    """
    try:
        doc = json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKeyError as exc:
        raise LearnError(
            f"{filename}: not a tally (the key {exc.key!r} appears twice in one object, "
            "and JSON readers disagree on which one counts)"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f":{exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise LearnError(
            f"{filename}{where}: not a tally (invalid JSON: {exc}); "
            "write one with `hvcfilter learn TRACE --tally-out FILE`"
        ) from exc
    except (ValueError, RecursionError) as exc:  # a number of over 4,300 digits, deep nesting
        reason = "nested too deeply" if isinstance(exc, RecursionError) else "a number too long"
        raise LearnError(
            f"{filename}: not a tally (invalid JSON: {reason}); "
            "write one with `hvcfilter learn TRACE --tally-out FILE`"
        ) from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise LearnError(
            f'{filename}: not a tally (no "format": "{FORMAT}"); '
            "write one with `hvcfilter learn TRACE --tally-out FILE`"
        )
    version = doc.get("version")
    # type() too: true and 1.0 equal 1 in Python, but the schema says the integer 1.
    if type(version) is not int or version != TALLY_VERSION:
        raise LearnError(
            f"{filename}: tally version {version!r}, but this hvcfilter reads version "
            f"{TALLY_VERSION}; re-tally its traces with this hvcfilter (`learn --tally-out`)"
        )
    extra = set(doc) - {"format", "version", "kernel", "traces", "smc_without_id", "calls"}
    if extra:
        raise LearnError(f"{filename}: unknown tally field(s) {', '.join(sorted(extra))}")
    named = _field(doc, "kernel", str, filename)
    if named != named.strip():
        raise LearnError(f"{filename}: field 'kernel': {named!r} has white space around it")
    try:
        # "6.12.95" and "6.12" are one profile: merged and written under its name.
        kernel = get_profile(named).name
    except UnknownProfileError as exc:
        raise LearnError(f"{filename}: field 'kernel': {exc}") from None
    traces = _field(doc, "traces", list, filename)
    if not all(isinstance(t, str) for t in traces):
        raise LearnError(f"{filename}: field 'traces' must be a list of strings")
    smc = _count(doc, "smc_without_id", filename)
    calls: dict[TallyKey, CallCount] = {}
    for i, row in enumerate(_field(doc, "calls", list, filename)):
        where = f"{filename}: calls[{i}]"
        if not isinstance(row, dict) or set(row) != {
            "function_id",
            "conduit",
            "outcome",
            "count",
            "traces",
        }:
            raise LearnError(
                f"{where}: a row has exactly function_id, conduit, outcome, count and traces"
            )
        fid = _function_id(row["function_id"], where)
        conduit, outcome = row["conduit"], row["outcome"]
        if conduit not in smccc.CONDUITS:
            raise LearnError(f"{where}: conduit {conduit!r} is not one of hvc, smc")
        if outcome not in _OUTCOMES:
            raise LearnError(f"{where}: outcome {outcome!r} is not one of {', '.join(_OUTCOMES)}")
        key: TallyKey = (fid, conduit, outcome)
        if key in calls:
            raise LearnError(
                f"{where}: a second row for {smccc.format_id(fid)} {conduit} {outcome}"
            )
        count, seen = _count(row, "count", where), _count(row, "traces", where)
        # A row is a call seen (the schema's minimum is 1): a zero row would keep an ID open.
        if seen > len(traces) or count == 0 or seen == 0:
            raise LearnError(f"{where}: seen in {seen} traces of {len(traces)}, {count} times")
        calls[key] = CallCount(count, seen)
    return Tally(kernel, tuple(traces), calls, smc)


def _field(doc: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    value = doc.get(name)
    if not isinstance(value, kind):
        raise LearnError(f"{where}: field {name!r} must be a {kind.__name__}, got {value!r}")
    return value


def _count(doc: Mapping[str, Any], name: str, where: str) -> int:
    value = doc.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        shown = repr(value) if not isinstance(value, int) or value < 1 << 64 else "a huge number"
        raise LearnError(
            f"{where}: field {name!r} must be a count (0 to {MAX_COUNT:,}), got {shown}"
        )
    return value


def _function_id(value: Any, where: str) -> int:
    # As the schema and dumps() write it: "0x" and 8 upper-case digits (int() would
    # also take "0x5", "0x_84" and full-width digits).
    if not isinstance(value, str) or _FUNCTION_ID.fullmatch(value) is None:
        raise LearnError(f"{where}: function_id {value!r} is not a 32-bit hex ID like 0x84000000")
    return int(value, 16)
