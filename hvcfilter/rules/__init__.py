"""The rules room: every lint rule of ``hvcfilter check``, by family, and how they run.

One module per family of rules, each rule one unit (a function declared
with :func:`~hvcfilter.rules.registry.check`, its docstring the
documentation that ``explain`` and the docs render): :mod:`.ranges`
(overlap, empty or wrapping, mergeable), :mod:`.reserved` (reserved and
handle ranges), :mod:`.owners` (boundaries, twins, hinted IDs) and
:mod:`.calls` (boot-critical, forwarded kernel calls, legacy PSCI). The
registry is :mod:`.registry`, the shared view of a spec :mod:`.analysis`,
the wording of messages :mod:`.wording`, and ``allow`` :mod:`.allow`. A new
rule is one unit in its family's module, added to that module's ``CHECKS``.

Imports: the spec model and loader's rules (:mod:`hvcfilter.model`,
:mod:`hvcfilter.spec`), :mod:`hvcfilter.smccc`, :mod:`hvcfilter.diagnostics`
and the kernel's facts (:mod:`hvcfilter.kernel.calls`, ``.filter``,
``.profiles``); never the emulator, the table pipeline, the CLI or the
renderers.
"""

from __future__ import annotations

from collections.abc import Sequence

from hvcfilter.diagnostics import Diagnostic
from hvcfilter.model import FilterSpec
from hvcfilter.rules import calls, owners, ranges, reserved
from hvcfilter.rules.allow import apply_allow
from hvcfilter.rules.analysis import forget, kernel_calls
from hvcfilter.rules.registry import (
    RULE_PROVIDERS,
    Check,
    Rule,
    RuleLike,
    all_rules,
    find_rule,
    register_rules,
)

__all__ = [
    "CHECKS",
    "RULE_PROVIDERS",
    "Check",
    "Rule",
    "RuleLike",
    "all_rules",
    "check_spec",
    "find_rule",
    "kernel_calls",
    "register_rules",
]

# Every lint rule, in code order: the families' own tuples.
CHECKS: tuple[Check, ...] = tuple(
    sorted(
        (*ranges.CHECKS, *reserved.CHECKS, *owners.CHECKS, *calls.CHECKS),
        key=lambda c: c.code,
    )
)


def check_spec(spec: FilterSpec, loaded: Sequence[Diagnostic] = ()) -> list[Diagnostic]:
    """Run every lint rule on a loaded spec, apply its ``allow`` lists; findings by position.

    ``loaded``: what loading the spec found (its input rules, such as HVF107),
    returned with the rest, so that the spec's ``allow`` lists accept those too.

    Raises:
        Exception: only on a bug in a rule (the CLI reports it as an internal error).
    """
    found: list[Diagnostic] = list(loaded)
    for rule in CHECKS:
        found.extend(rule(spec))
    forget(spec)
    found = apply_allow(spec, found, CHECKS)
    found.sort(key=Diagnostic.sort_key)
    return found
