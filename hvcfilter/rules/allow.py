"""``allow``: the warnings and notes a reviewed spec accepts, by code or name.

``allow = [...]`` in ``[filter]`` accepts a finding everywhere, in a
``[[range]]`` only for that entry. An item that names no rule, or names an
error (which the kernel enforces whatever the spec says), is itself a
finding (HVF108).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hvcfilter import smccc
from hvcfilter.diagnostics import Diagnostic, Location, Severity
from hvcfilter.model import FilterSpec
from hvcfilter.rules.registry import RuleLike
from hvcfilter.spec import INPUT_RULES, locate

__all__ = ["apply_allow"]

_ENTRY_KEY = re.compile(r"^range\[(\d+)\]")


def apply_allow(
    spec: FilterSpec, found: list[Diagnostic], checks: Sequence[RuleLike]
) -> list[Diagnostic]:
    """Drop the warnings and notes a spec's ``allow`` lists accept; flag bad ``allow`` items.

    A finding belongs to the ``[[range]]`` its location key names. Errors are
    never dropped: the kernel rejects the table whatever the spec says.
    ``checks`` are the lint rules an ``allow`` item may name, beside the
    loader's input rules.
    """
    scopes: list[tuple[tuple[str | int, ...], Sequence[str]]] = [(("filter",), spec.allow)]
    scopes += [(("range", i), e.allow) for i, e in enumerate(spec.entries) if e.allow]
    if len(scopes) == 1 and not spec.allow:
        return found
    # Only findings about a spec can be accepted in it: not payload or replay rules.
    spec_rules: list[RuleLike] = [*INPUT_RULES, *checks]
    rules = {r.code: r for r in spec_rules}
    by_name = {r.name: r for r in rules.values()}
    accepted_everywhere: set[str] = set()
    accepted: dict[int, set[str]] = {}
    problems: list[Diagnostic] = []
    for scope, items in scopes:
        codes = (
            accepted_everywhere
            if scope == ("filter",)
            else accepted.setdefault(int(scope[1]), set())
        )
        for position, item in enumerate(items):
            # Any case, as `hvcfilter explain` takes them (find_rule): "hvf302" is HVF302.
            key = item.strip()
            rule = rules.get(key.upper()) or by_name.get(key.lower().replace("_", "-"))
            at = locate(spec, (*scope, "allow", position))
            if rule is None:
                close = smccc.suggest(item, [*rules, *by_name])
                problems.append(
                    _input_diag(
                        f"allow names no rule about specs: {item!r}"
                        + (f"; did you mean {close[0]!r}?" if close else ""),
                        at,
                        "use a code or name from `hvcfilter explain`",
                    )
                )
            elif rule.severity is Severity.ERROR:
                problems.append(
                    _input_diag(
                        f"allow cannot accept {rule.code} {rule.name}: it is an error, and the "
                        "kernel rejects the table whatever the spec says",
                        at,
                        "fix the range instead",
                    )
                )
            else:
                codes.add(rule.code)
    if not accepted_everywhere and not accepted:
        return found + problems
    kept = []
    # An allow item's own HVF108 can be accepted like any warning (a reviewed
    # spec may name a rule that a newer or older hvcfilter does not have).
    for finding in found + problems:
        if finding.severity is not Severity.ERROR:
            if finding.code in accepted_everywhere:
                continue
            match = _ENTRY_KEY.match(finding.location.key or "")
            if match and finding.code in accepted.get(int(match.group(1)), ()):
                continue
        kept.append(finding)
    return kept


def _input_diag(message: str, where: Location, hint: str) -> Diagnostic:
    rule = next(r for r in INPUT_RULES if r.code == "HVF108")
    return Diagnostic(rule.code, rule.name, rule.severity, message, where, hint)
