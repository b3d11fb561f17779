"""How lint messages name things: IDs with catalogue names, records, entries, locations.

One wording for every rule, so that findings read alike: ``range[5]
(fwd_to_user 0x84000003 PSCI_CPU_ON_32)``, spans with the well-known calls
they contain, lists cut at a few items.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import islice

from hvcfilter import smccc
from hvcfilter.diagnostics import Location
from hvcfilter.model import (
    FilterRange,
    FilterSpec,
    FunctionEntry,
    FunctionsEntry,
    OwnerEntry,
    RawEntry,
    ServiceEntry,
)
from hvcfilter.spec import locate

__all__ = [
    "Groups",
    "block_text",
    "entry_label",
    "join",
    "labels",
    "record_label",
    "reserved_text",
    "span",
    "span_names",
    "where",
]

# The key a finding about an entry points at: its selector.
SELECTOR_KEY: dict[type, str] = {
    RawEntry: "base",
    FunctionEntry: "function",
    FunctionsEntry: "functions",
    ServiceEntry: "service",
    OwnerEntry: "owner",
}


def span(first: int, last: int) -> str:
    """``0x84000003 PSCI_CPU_ON_32`` or ``0x84000000-0x8400001F``."""
    if first == last:
        return smccc.catalogue().label(first)
    return str(smccc.IdRange(first, last))


def span_names(first: int, last: int, limit: int = 3) -> str:
    """A span, with up to ``limit`` catalogue names it contains."""
    if first == last:
        return span(first, last)
    names = [e.name for e in islice(smccc.catalogue().in_range(first, last), limit + 1)]
    text = span(first, last)
    if not names:
        return text
    shown = ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")
    return f"{text} ({shown})"


def record_label(rec: FilterRange) -> str:
    """How messages name a record: ``range[5] (fwd_to_user 0x84000003 PSCI_CPU_ON_32)``."""
    return f"range[{rec.entry}] ({rec.action.label} {span(rec.base, rec.last)})"


def entry_label(records: Sequence[FilterRange]) -> str:
    """A record label naming every involved record of one entry: ``range[2] (deny A, B)``."""
    if len(records) == 1:
        return record_label(records[0])
    spans = [span(r.base, r.last) for r in records[:3]]
    more = ", ..." if len(records) > 3 else ""
    return f"range[{records[0].entry}] ({records[0].action.label} {', '.join(spans)}{more})"


class Groups:
    """Findings collected per spec entry, in the order entries were first met."""

    def __init__(self) -> None:
        self.items: dict[int, tuple[list[FilterRange], list[str]]] = {}

    def add(self, rec: FilterRange, item: str) -> None:
        """Note ``item`` against the entry of ``rec``."""
        records, items = self.items.setdefault(rec.entry, ([], []))
        if not any(r is rec for r in records):
            records.append(rec)
        items.append(item)

    def __iter__(self) -> Iterator[tuple[int, str, list[str]]]:
        for entry, (records, items) in sorted(self.items.items()):
            yield entry, entry_label(sorted(records, key=lambda r: r.base)), items


def join(items: Sequence[str], limit: int = 6) -> str:
    """``a, b, c and 3 more``."""
    shown = ", ".join(items[:limit])
    if len(items) > limit:
        shown += f" and {len(items) - limit} more"
    return shown


def labels(fids: Sequence[int], limit: int = 6) -> str:
    """The catalogue labels of ``fids``, joined."""
    cat = smccc.catalogue()
    return join([cat.label(f) for f in fids], limit)


def where(spec: FilterSpec, entry: int, key: str | None = None) -> Location:
    """The location of ``[[range]]`` ``entry``: its selector key, or ``key``."""
    selector = key or SELECTOR_KEY.get(type(spec.entries[entry]), "action")
    return locate(spec, ("range", entry, selector))


def block_text(fid: int) -> str:
    """``fast SMC32 owner 4 (Standard Secure)``: the function-number block of ``fid``."""
    d = smccc.decode(fid)
    return f"{d.call_type.value} {d.convention.value.upper()} owner {d.owner} ({d.owner_display})"


def reserved_text(first: int, last: int) -> str:
    """``Arm Architecture SMC32 range 0x80000000-0x8000FFFF``."""
    d = smccc.decode(first)
    return f"{d.owner_display} {d.convention.value.upper()} range {smccc.IdRange(first, last)}"
