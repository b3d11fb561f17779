"""Deriving: a tally into the fewest records that keep every seen call's outcome.

What a table may touch is the whole 32-bit ID space less the ranges the
kernel reserves (the profile's ``reserved_ranges``: the Arm Architecture
``0x80000000-0x8000FFFF`` and ``0xC0000000-0xC000FFFF``, reference section
2.2; every range over them gets EEXIST). Within it, every ID is denied except
the *open* ones, which no record covers and so stay with KVM, and the
*forwarded* ones, which get ``fwd_to_user`` records. A seen call opens its own
ID (``function``), its catalogue service's block in its convention
(``service``; an ID in no service falls back to its own ID) or its owner's
whole 24-bit span in its call type and convention (``owner``). Forwarding is
always by exact ID: a forwarded call inside an open block splits it. Deny
spans are the complement, so no two records of the same action are adjacent:
the record count is minimal for that set of open and forwarded IDs.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, assert_never

from hvcfilter import smccc
from hvcfilter.kernel.profiles import get_profile
from hvcfilter.learn.tally import CallCount, LearnError, Tally

__all__ = [
    "Granularity",
    "Learned",
    "LearnedRange",
    "Override",
    "SeenCall",
    "derive",
    "parse_override",
]

Span = tuple[int, int]


class Granularity(StrEnum):
    """``--granularity``: how much a seen call opens."""

    FUNCTION = "function"
    SERVICE = "service"
    OWNER = "owner"


@dataclass(frozen=True, slots=True)
class Override:
    """``--forward``/``--handle``: IDs that get this outcome whatever the traces say."""

    action: Literal["handle", "fwd_to_user"]
    spans: tuple[Span, ...]
    label: str


@dataclass(frozen=True, slots=True)
class SeenCall:
    """One function ID as the traces saw it, over every conduit and outcome."""

    function_id: int
    name: str | None
    count: int
    # Traces that saw it; with several rows (conduits, outcomes) the largest row's:
    # a tally does not say whether the rows' traces overlap (traces_lower_bound).
    traces: int
    forwarded: bool
    # Some calls were forwarded and others answered by the kernel (another conduit,
    # another VMM's table): one table gives the ID one action, and learn forwards it
    # unless --handle says otherwise.
    mixed: bool = False
    traces_lower_bound: bool = False


@dataclass(frozen=True, slots=True)
class LearnedRange:
    """A span of IDs and what the learned table does with it; ``handle`` spans get no record."""

    first: int
    last: int
    action: Literal["handle", "deny", "fwd_to_user"]
    calls: tuple[SeenCall, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class Learned:
    """The derived table: every span in ID order, records (deny/forward) and open spans."""

    tally: Tally
    kernel: str
    granularity: Granularity
    spans: tuple[LearnedRange, ...]
    reserved_calls: tuple[SeenCall, ...]
    overrides: tuple[Override, ...]

    @property
    def records(self) -> tuple[LearnedRange, ...]:
        """The spans the table writes as records: every deny and fwd_to_user span."""
        return tuple(s for s in self.spans if s.action != "handle")

    @property
    def mixed_calls(self) -> tuple[SeenCall, ...]:
        """IDs forwarded in some calls and answered by the kernel in others, in ID order."""
        return tuple(c for s in self.spans for c in s.calls if c.mixed)

    def mixed_calls_kept(self, *, forwarded: bool) -> tuple[SeenCall, ...]:
        """The mixed calls the learned table forwards (``forwarded``) or keeps in the kernel.

        A table gives an ID one action: the default forwards a mixed ID, so the
        calls the kernel answered will reach the VMM; ``--handle`` keeps it in the
        kernel, so the calls that were forwarded will not.
        """
        return tuple(
            c
            for s in self.spans
            if (s.action == "fwd_to_user") == forwarded
            for c in s.calls
            if c.mixed
        )


def parse_override(text: str, action: Literal["handle", "fwd_to_user"]) -> Override:
    """An override by ID (``0x84000050``), catalogue name (``TRNG_RND_64``) or service (``trng``).

    Raises:
        LearnError: the text names no ID, call or service.
    """
    value = text.strip()
    try:
        fid = int(value, 0) if value.isascii() else None  # int() takes any script's digits
    except ValueError:
        fid = None
    if fid is not None:
        if not 0 <= fid <= smccc.FUNCTION_ID_MAX:
            raise LearnError(f"{text!r} is not a 32-bit function ID")
        return Override(action, ((fid, fid),), smccc.format_id(fid))
    try:
        entry = smccc.catalogue().by_name(value)
    except KeyError:
        entry = None
    if entry is not None:
        return Override(action, ((entry.function_id, entry.function_id),), entry.name)
    try:
        service = smccc.parse_service(value)
    except ValueError as exc:
        raise LearnError(
            f"{text!r} is neither a function ID, a catalogue call nor a service ({exc})"
        ) from None
    spans = smccc.service_ranges(service, service.conventions)
    return Override(action, tuple((r.first, r.last) for r in spans), f"service {service.name}")


def _open_span(fid: int, granularity: Granularity) -> Span:
    if granularity is Granularity.FUNCTION:
        return fid, fid
    if granularity is Granularity.OWNER:
        base = fid & ~smccc.OWNER_SPAN & smccc.FUNCTION_ID_MAX
        return base, base | smccc.OWNER_SPAN
    if granularity is Granularity.SERVICE:
        decoded = smccc.decode(fid)
        if decoded.call_type is smccc.CallType.FAST and not fid & ~(
            smccc.CALL_TYPE_BIT | smccc.CONVENTION_BIT | smccc.OWNER_MASK | 0xFFFF
        ):
            number = fid & smccc.FUNCTION_NUMBER_MASK
            for service in smccc.SERVICES.values():
                if service.owner == decoded.owner and (
                    service.first_number <= number <= service.last_number
                ):
                    base = fid & ~smccc.FUNCTION_NUMBER_MASK
                    return base + service.first_number, base + service.last_number
        return fid, fid
    assert_never(granularity)


def _resolve_overrides(overrides: Sequence[Override]) -> tuple[list[Span], list[Span]]:
    """The IDs the overrides forward and those they keep in the kernel, disjoint.

    Where a ``--forward`` and a ``--handle`` overlap, the one naming fewer IDs
    wins on the overlap (``--forward psci --handle PSCI_VERSION`` forwards
    every PSCI call but that one), whatever their order on the command line.
    Two that name as many IDs cannot be ranked, so they are refused.

    Raises:
        LearnError: a forward and a handle override overlap and name as many IDs.
    """
    merged = [(o, _merge(o.spans)) for o in overrides]
    sizes = [sum(last - first + 1 for first, last in spans) for _, spans in merged]
    for i, (one, one_spans) in enumerate(merged):
        for j, (other, other_spans) in enumerate(merged[:i]):
            if one.action == other.action or sizes[i] != sizes[j]:
                continue
            shared = _subtract(one_spans, _subtract(one_spans, other_spans))
            if shared:
                fwd, kept = (one, other) if one.action == "fwd_to_user" else (other, one)
                raise LearnError(
                    f"--forward {fwd.label} and --handle {kept.label} both claim "
                    f"{smccc.format_id(shared[0][0])} and neither is narrower: drop one of them"
                )
    forward: list[Span] = []
    handle: list[Span] = []
    # Widest first, so that each narrower override overwrites what it overlaps.
    for k in sorted(range(len(merged)), key=lambda k: -sizes[k]):
        override, spans = merged[k]
        won, lost = (forward, handle) if override.action == "fwd_to_user" else (handle, forward)
        won[:] = _merge(won + spans)
        lost[:] = _subtract(lost, spans)
    return forward, handle


def _merge(spans: Iterable[Span]) -> list[Span]:
    out: list[Span] = []
    for first, last in sorted(spans):
        if out and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


def _subtract(spans: Sequence[Span], holes: Sequence[Span]) -> list[Span]:
    """``spans`` less ``holes``; both sorted and disjoint."""
    out: list[Span] = []
    j = 0
    for first, last in spans:
        lo = first
        while j < len(holes) and holes[j][1] < lo:
            j += 1
        k = j
        while k < len(holes) and holes[k][0] <= last:
            if holes[k][0] > lo:
                out.append((lo, holes[k][0] - 1))
            lo = max(lo, holes[k][1] + 1)
            k += 1
        if lo <= last:
            out.append((lo, last))
    return out


def _seen(tally: Tally) -> list[SeenCall]:
    per_id: dict[int, list[CallCount]] = {}
    forwarded: set[int] = set()
    answered: set[int] = set()
    for (fid, _conduit, outcome), call in tally.calls.items():
        per_id.setdefault(fid, []).append(call)
        (forwarded if outcome == "forwarded" else answered).add(fid)
    catalogue = smccc.catalogue()
    return [
        SeenCall(
            fid,
            catalogue.name_of(fid),
            sum(c.count for c in calls),
            # A trace that saw the ID over two conduits counts once at most per row; the
            # largest row is a lower bound that never exceeds the number of traces.
            max(c.traces for c in calls),
            fid in forwarded,
            mixed=fid in forwarded and fid in answered,
            traces_lower_bound=len(calls) > 1 and max(c.traces for c in calls) < len(tally.traces),
        )
        for fid, calls in sorted(per_id.items())
    ]


def derive(
    tally: Tally,
    granularity: Granularity = Granularity.FUNCTION,
    overrides: Sequence[Override] = (),
) -> Learned:
    """The least-privilege table for a tally, as spans in ID order.

    Raises:
        LearnError: the tally holds no call, its kernel has no SMCCC filter, or an
            override forwards a reserved ID.
        UnknownProfileError: the tally's kernel names no profile.
    """
    profile = get_profile(tally.kernel)
    if not profile.has_filter:
        raise LearnError(
            f"kernel {profile.name} has no SMCCC filter (it arrived in 6.4): there is no "
            "table to learn for it; learn for the kernel the VMs will run (--kernel 6.12)"
        )
    if not tally.calls:
        raise LearnError(
            f"no calls with a function ID in {len(tally.traces)} trace(s) "
            f"({', '.join(tally.traces[:3]) or 'none'}): nothing to learn a table from; "
            "record a trace with the kvm_hvc_arm64 event enabled (or JSON Lines/CSV calls)"
        )
    reserved = _merge(profile.reserved_ranges)
    seen = _seen(tally)
    in_reserved = [c for c in seen if any(a <= c.function_id <= b for a, b in reserved)]
    # A reserved ID is always the kernel's: it opens no block around it.
    reserved_ids = {c.function_id for c in in_reserved}
    free = [c for c in seen if c.function_id not in reserved_ids]
    opened = [_open_span(c.function_id, granularity) for c in free if not c.forwarded]
    forwards = [(c.function_id, c.function_id) for c in free if c.forwarded]
    for override in overrides:
        hits = _subtract(_merge(override.spans), _subtract(_merge(override.spans), reserved))
        if override.action == "fwd_to_user" and hits:
            raise LearnError(
                f"cannot forward {override.label}: {smccc.format_id(hits[0][0])} is in a range "
                f"kernel {profile.name} reserves (it always answers it itself)"
            )
    # An override wins over the traces: a --handle ID is not forwarded, and vice versa.
    forced_forward, forced_handle = _resolve_overrides(overrides)
    forwarded = _subtract(_subtract(_merge(forwards + forced_forward), forced_handle), reserved)
    open_spans = _subtract(_subtract(_merge(opened + forced_handle), forwarded), reserved)
    allowed = _merge(open_spans + forwarded)
    denied = _subtract(_subtract([(0, smccc.FUNCTION_ID_MAX)], reserved), allowed)
    spans: list[LearnedRange] = []
    seen_ids = [c.function_id for c in seen]  # sorted: each span's calls by bisection
    for action, group, reason in (
        ("handle", open_spans, "kept in the kernel"),
        ("fwd_to_user", forwarded, "forwarded to the VMM"),
        ("deny", denied, "never called"),
    ):
        for first, last in group:
            calls = tuple(
                seen[bisect.bisect_left(seen_ids, first) : bisect.bisect_right(seen_ids, last)]
            )
            spans.append(LearnedRange(first, last, action, calls, reason))  # type: ignore[arg-type]
    spans.sort(key=lambda s: s.first)
    return Learned(
        tally, profile.name, granularity, tuple(spans), tuple(in_reserved), tuple(overrides)
    )
