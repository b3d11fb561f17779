"""The learning room: the least-privilege table from what guests really called.

Traces become a :class:`~.tally.Tally` (counts per function ID, conduit and
outcome, and the traces they came from); tallies merge associatively and
commutatively, so a fleet tallies on every host and merges centrally.
:mod:`.derive` turns a tally into the fewest records that keep every seen
call's outcome and deny the rest of what the kernel lets a table touch;
:mod:`.writer` writes that as a commented, deterministic spec, checked by the
linter before it is returned; :mod:`.against` reports what traces say about an
existing spec. :mod:`.run` ties them together for the CLI and the API.

Imports: :mod:`hvcfilter.trace`, :mod:`hvcfilter.table`, :mod:`hvcfilter.lint`,
:mod:`hvcfilter.kernel` facts, :mod:`hvcfilter.smccc`, :mod:`hvcfilter.errors`;
:mod:`hvcfilter.replay` for ``--against``. Never :mod:`hvcfilter.render` or the CLI.
"""

from __future__ import annotations

from hvcfilter.learn.derive import Granularity, Learned, LearnedRange, Override, parse_override
from hvcfilter.learn.tally import TALLY_VERSION, LearnError, Tally, dumps, loads, merge

__all__ = [
    "TALLY_VERSION",
    "Granularity",
    "LearnError",
    "Learned",
    "LearnedRange",
    "Override",
    "Tally",
    "dumps",
    "loads",
    "merge",
    "parse_override",
]
