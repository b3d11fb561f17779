"""``learn --against SPEC``: what the traces say about an existing table.

The spec's encoded records are replayed through the emulated kernel
(:class:`hvcfilter.replay.Replayer`) on the tally's distinct calls. A call
*would break* when the table gives it another outcome than the guest got in
the trace (the kernel's answer without a filter, or a forward); a range is
*unused* when it grants something (a forward, or an explicit handle) and no
traced call falls in it (privilege to take away; an unused deny range is
least privilege already). A trace tells only whether a call reached the VMM
(reference 6.1: a DENY and a HANDLE cannot be told apart), so a call the
kernel answered is taken to have got the kernel's answer without a filter. The
tightened spec is the learned table with every traced call the spec
forwards kept forwarded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from hvcfilter import smccc
from hvcfilter.learn.derive import Granularity, Override
from hvcfilter.learn.run import LearnResult, learn
from hvcfilter.learn.tally import Tally
from hvcfilter.model import Action
from hvcfilter.replay import InstallResult, Replayer
from hvcfilter.smccc import CallKey
from hvcfilter.table.files import Table, load_table
from hvcfilter.trace import TraceTally

__all__ = ["AgainstReport", "BrokenCall", "against"]


@dataclass(frozen=True, slots=True)
class BrokenCall:
    """A traced call the spec would answer differently from what the guest got."""

    function_id: int
    name: str | None
    conduit: str
    count: int
    traced: str
    under_spec: str
    record: int | None
    origin: str | None = None  # the spec entry the record came from, as simulate names it


@dataclass(frozen=True, slots=True)
class AgainstReport:
    """The traces against a spec: calls it would break, ranges never used, the tightened spec."""

    spec: str
    kernel: str
    calls: int
    would_break: tuple[BrokenCall, ...]
    unused: tuple[InstallResult, ...]
    refused: tuple[InstallResult, ...]
    tightened: LearnResult

    @property
    def findings(self) -> bool:
        """Something to act on: a call would break, a range is unused or refused."""
        return bool(self.would_break or self.unused or self.refused)


def against(
    tally: Tally,
    spec: str,
    *,
    granularity: Granularity = Granularity.FUNCTION,
    overrides: Sequence[Override] = (),
    command: str = "hvcfilter learn --against",
    table: Table | None = None,
) -> AgainstReport:
    """Replay the tally's calls under ``spec`` and learn its tightened form.

    ``table`` is ``spec`` already loaded (from stdin, say, which cannot be read
    twice); it is used when it was compiled for the tally's kernel.

    Raises:
        SpecError: the spec cannot be read.
        LearnError: the tally has no calls.
    """
    if table is None or table.kernel != tally.kernel:
        table = load_table(spec, None, kernel=tally.kernel)
    replayer = Replayer(table, kernel=tally.kernel)
    traced: dict[tuple[int, str], str] = {}
    counts: Counter[CallKey] = Counter()
    for (fid, conduit, outcome), call in tally.calls.items():
        key: CallKey = (fid, "smc" if conduit == "smc" else "hvc", 0, "a64")
        counts[key] += call.count
        if outcome == "forwarded" or (fid, conduit) not in traced:
            traced[(fid, conduit)] = outcome
    report = replayer.report(TraceTally(calls=counts))
    origins = {r.index: r.origin for r in report.install}
    broken: list[BrokenCall] = []
    forwards: list[Override] = []
    for row in report.functions:
        expected = (
            "forwarded"
            if traced.get((row.function_id, row.conduit)) == "forwarded"
            else (row.default_outcome)
        )
        fid = row.function_id
        # The user's --forward and --handle beat what the old spec does.
        if row.outcome == "forwarded" and not any(
            first <= fid <= last for o in overrides for first, last in o.spans
        ):
            forwards.append(Override("fwd_to_user", ((fid, fid),), smccc.format_id(fid)))
        if row.outcome != expected:
            broken.append(
                BrokenCall(
                    row.function_id,
                    row.name,
                    row.conduit,
                    row.count,
                    expected,
                    row.outcome,
                    row.record,
                    origins.get(row.record) if row.record is not None else None,
                )
            )
    tightened = learn(
        tally, granularity=granularity, overrides=[*forwards, *overrides], command=command
    )
    return AgainstReport(
        spec=spec,
        kernel=report.kernel,
        calls=tally.call_count,
        would_break=tuple(broken),
        # An unused deny range is least privilege already; only a range that grants
        # something (forwards to the VMM, or keeps calls in the kernel) is to take away.
        unused=tuple(r for r in report.unused_ranges if r.action != Action.DENY),
        refused=tuple(r for r in report.install if r.errno),
        tightened=tightened,
    )
