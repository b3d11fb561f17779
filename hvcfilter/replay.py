"""Replay: what every traced guest call would get under a filter table, from the emulated kernel.

A :class:`~hvcfilter.table.files.Table` is a filter as the kernel receives
it: the *encoded* 24-byte records (compiled from a spec, or read from a
payload), each with the spec entries it came from. :class:`Replayer` installs those bytes into a
:class:`hvcfilter.kernel.KvmVm` with ``set_filter_record`` (so every replay
exercises the compiler and the kernel's install checks), plus a second VM with
no filter (the kernel's default behaviour) and optionally a baseline table,
all with the spec's ``[vm]`` configuration. Calls are classified once per
distinct ``(W0, conduit, imm, mode)`` key: :meth:`Replayer.replay` aggregates
a :func:`hvcfilter.trace.tally` into a :class:`ReplayReport` (totals per
outcome, one row per function and result, ranges never hit, outcomes that
differ from the default or the baseline); :meth:`Replayer.stream` yields one
:class:`CallRecord` per call in trace order. Nothing here prints.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import NamedTuple

from hvcfilter import smccc
from hvcfilter.errors import errno_name
from hvcfilter.kernel import CallResult, KvmVm, Outcome
from hvcfilter.kernel.profiles import get_profile
from hvcfilter.model import Action
from hvcfilter.table import payload
from hvcfilter.table.files import Table
from hvcfilter.trace import (
    CallKey,
    Progress,
    TallyCache,
    TraceEvent,
    TraceFormat,
    TraceTally,
    iter_events,
)
from hvcfilter.trace import tally as tally_traces

__all__ = [
    "OUTCOMES",
    "CallRecord",
    "FunctionRow",
    "InstallResult",
    "ReplayReport",
    "Replayer",
    "Summary",
]

OUTCOMES: tuple[Outcome, ...] = ("handled", "not_supported", "forwarded", "rejected")


# Named tuples, not dataclasses: importing dataclasses (and inspect) costs every
# simulate start more than the rest of a small replay.
class InstallResult(NamedTuple):
    """One record's ``KVM_SET_DEVICE_ATTR``: what it holds, where it came from, the errno."""

    index: int  # type: ignore[assignment]  # hides tuple.index, which nothing here calls
    base: int
    nr_functions: int
    action: int
    origin: str
    errno: int

    @property
    def last(self) -> int:
        """The last ID as the kernel computes it (32-bit)."""
        return (self.base + self.nr_functions - 1) & smccc.FUNCTION_ID_MAX

    @property
    def span(self) -> str:
        """The IDs the record names, for people; an empty or wrapping one said as such."""
        return smccc.format_record_span(self.base, self.nr_functions)

    @property
    def error(self) -> str | None:
        """``EEXIST`` and the like, or None when the record was installed."""
        return errno_name(self.errno) if self.errno else None

    @property
    def action_label(self) -> str:
        """``deny``, ``fwd_to_user``...; the raw number for an invalid byte."""
        return Action(self.action).label if self.action < len(Action) else str(self.action)


class FunctionRow(NamedTuple):
    """Calls of one function ID that got the same result (and the same default/baseline one)."""

    function_id: int
    name: str | None
    conduit: str
    mode: str
    count: int  # type: ignore[assignment]  # hides tuple.count, which nothing here calls
    action: str | None
    outcome: str
    reason: str
    default_outcome: str
    baseline_outcome: str | None
    record: int | None

    @property
    def differs_from_default(self) -> bool:
        """The kernel without this filter would give another outcome."""
        return self.outcome != self.default_outcome

    @property
    def baseline_changed(self) -> bool:
        """The baseline table gives another outcome."""
        return self.baseline_outcome is not None and self.baseline_outcome != self.outcome


class Summary(NamedTuple):
    """Totals of a replay; ``outcomes`` always has all four keys."""

    calls: int
    outcomes: dict[str, int]
    skipped_lines: int
    smc_without_id: int
    lines: int
    events: int
    ignored_events: int
    differs_from_default: int
    baseline_changes: int | None


class ReplayReport(NamedTuple):
    """Everything ``simulate`` reports about a set of traces under a table."""

    table: Table
    baseline: Table | None
    kernel: str
    summary: Summary
    functions: tuple[FunctionRow, ...]
    unused_ranges: tuple[InstallResult, ...]
    install: tuple[InstallResult, ...]
    baseline_install: tuple[InstallResult, ...]
    tally: TraceTally

    @property
    def changed(self) -> bool:
        """The baseline gives another outcome for at least one call."""
        return bool(self.summary.baseline_changes)


class CallRecord(NamedTuple):
    """One traced call and what it got (and would get without the filter, or under the baseline)."""

    event: TraceEvent
    result: CallResult
    default: CallResult
    baseline: CallResult | None


class _Emulated:
    """A VM with one table installed from its encoded records, then run."""

    def __init__(self, table: Table, kernel: str) -> None:
        self.vm = KvmVm.from_config(kernel, table.vm)
        installs = []
        for index, (record, origin) in enumerate(zip(table.records, table.origins, strict=True)):
            err = self.vm.set_filter_record(record)
            base, nr, action, _ = payload.RECORD.unpack(record)
            installs.append(InstallResult(index, base, nr, action, origin, err))
        self.installs = tuple(installs)
        self.vm.run()
        # (first, last) of an installed range -> its record index, for "ranges never hit".
        self.by_span = {(r.base, r.last): r.index for r in self.installs if not r.errno}

    def resolve(self, key: CallKey) -> CallResult:
        return self.vm.resolve(*key)

    def call(self, event: TraceEvent) -> CallResult:
        if event.x1 is None and event.x2 is None and event.x3 is None:
            return self.resolve(event.key)
        # A register the trace did not record stays unknown (None): the emulator
        # then leaves the answers it decides unknown instead of assuming 0.
        return self.vm.call(
            event.x0,
            event.x1,
            event.x2,
            event.x3,
            conduit=event.conduit,
            imm=event.imm,
            mode=event.mode,
        )


# function ID, conduit, mode, action, outcome, reason, default outcome, baseline outcome, record
_RowKey = tuple[int, str, str, str | None, str, str, str, str | None, int | None]


class Replayer:
    """The emulated VMs for one replay: the table, no filter, and optionally a baseline.

    ``kernel`` (default: the table's spec profile, else the newest) applies to
    all of them; the no-filter and baseline VMs share the table's ``[vm]``
    configuration, so only the filter differs.

    Raises:
        UnknownProfileError: ``kernel`` names no profile.
        SpecError: the kernel refuses the ``[vm]`` configuration.
        PayloadError: a record is not 24 bytes.
    """

    def __init__(
        self, table: Table, *, kernel: str | None = None, baseline: Table | None = None
    ) -> None:
        self.table = table
        self.baseline = baseline
        self.kernel = get_profile(kernel or table.kernel).name
        self._main = _Emulated(table, self.kernel)
        self._default = _Emulated(table._replace(records=(), origins=()), self.kernel)
        self._baseline = (
            _Emulated(baseline._replace(vm=table.vm), self.kernel) if baseline is not None else None
        )

    @property
    def install(self) -> tuple[InstallResult, ...]:
        """How each record of the table installed."""
        return self._main.installs

    def replay(
        self,
        paths: list[str],
        trace_format: TraceFormat = TraceFormat.AUTO,
        *,
        progress: Progress | None = None,
        cache: TallyCache | None = None,
    ) -> ReplayReport:
        """Tally the traces and classify every distinct call.

        ``cache`` keeps large traces' tallies for the next replay (see
        :mod:`hvcfilter.trace.cache`): the same report, without reading the trace again.

        Raises:
            TraceError: a trace cannot be read.
        """
        return self.report(tally_traces(paths, trace_format, progress=progress, cache=cache))

    def stream(
        self,
        paths: list[str],
        tally: TraceTally,
        trace_format: TraceFormat = TraceFormat.AUTO,
        *,
        progress: Progress | None = None,
    ) -> Iterator[CallRecord]:
        """One record per call, in trace order; ``tally`` collects the counts as it goes.

        Raises:
            TraceError: a trace cannot be read.
        """
        base = self._baseline
        for event in iter_events(paths, tally, trace_format, progress=progress):
            yield CallRecord(
                event,
                self._main.call(event),
                self._default.call(event),
                base.call(event) if base is not None else None,
            )

    def report(self, tally: TraceTally) -> ReplayReport:
        """Aggregate a tally: totals, rows per function and result, ranges never hit.

        Raises:
            ValueError: a call in the tally is out of range for the emulator.
        """
        outcomes: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        rows: Counter[_RowKey] = Counter()
        hit: set[int] = set()
        differs = changes = 0
        for key, count in tally.calls.items():
            result = self._main.resolve(key)
            default = self._default.resolve(key)
            base = self._baseline.resolve(key) if self._baseline is not None else None
            outcomes[result.outcome] += count
            record = self._main.by_span.get(result.matched) if result.matched is not None else None
            if record is not None:
                hit.add(record)
            if default.outcome != result.outcome:
                differs += count
            if base is not None and base.outcome != result.outcome:
                changes += count
            fid, conduit, _imm, mode = key
            rows[
                (
                    fid,
                    conduit,
                    mode,
                    result.action.label if result.action is not None else None,
                    result.outcome,
                    result.reason,
                    default.outcome,
                    base.outcome if base is not None else None,
                    record,
                )
            ] += count
        catalogue = smccc.catalogue()
        functions = tuple(
            sorted(
                (
                    FunctionRow(k[0], catalogue.name_of(k[0]), k[1], k[2], n, *k[3:])
                    for k, n in rows.items()
                ),
                key=lambda r: (r.function_id, r.conduit, r.mode, -r.count),
            )
        )
        unused = tuple(r for r in self._main.installs if not r.errno and r.index not in hit)
        summary = Summary(
            calls=tally.call_count,
            outcomes=outcomes,
            skipped_lines=tally.skipped,
            smc_without_id=tally.smc_without_id,
            lines=tally.lines,
            events=tally.events,
            ignored_events=tally.ignored_events,
            differs_from_default=differs,
            baseline_changes=changes if self._baseline is not None else None,
        )
        return ReplayReport(
            table=self.table,
            baseline=self.baseline,
            kernel=self.kernel,
            summary=summary,
            functions=functions,
            unused_ranges=unused,
            install=self._main.installs,
            baseline_install=self._baseline.installs if self._baseline is not None else (),
            tally=tally,
        )
