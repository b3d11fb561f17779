"""The rule registry: what a rule is, how one is declared, and every documented code.

A lint rule is a :class:`Check`, declared with :func:`check` on the function
that finds it; :func:`all_rules` lists every code hvcfilter documents
(the spec loader's input rules, the lint rules of :data:`hvcfilter.rules.CHECKS`
and the payload, trace and replay codes of :data:`RULE_PROVIDERS`), which
``explain``, SARIF and the docs render.
"""

# No `from __future__ import annotations`: NamedTuple compiles string annotations at start.

import importlib
import re
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple, Protocol

from hvcfilter.diagnostics import Diagnostic, Severity
from hvcfilter.model import FilterSpec
from hvcfilter.rules.wording import where
from hvcfilter.spec import INPUT_RULES

__all__ = [
    "RULE_PROVIDERS",
    "Check",
    "CheckFunction",
    "Rule",
    "RuleLike",
    "all_rules",
    "check",
    "find_rule",
    "register_rules",
]

_CODE = re.compile(r"^HVF\d{3}$")
_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class RuleLike(Protocol):
    """Anything that documents a diagnostic code (``InputRule``, ``PayloadRule``...)."""

    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def severity(self) -> Severity: ...
    @property
    def doc(self) -> str: ...


class Rule(NamedTuple):
    """One diagnostic code as documentation: what ``explain`` prints and SARIF lists."""

    code: str
    name: str
    severity: Severity
    doc: str

    @property
    def summary(self) -> str:
        """The first line of the documentation."""
        return self.doc.strip().splitlines()[0] if self.doc.strip() else self.name

    @classmethod
    def of(cls, rule: RuleLike) -> "Rule":
        """Copy any rule-shaped object into a :class:`Rule`."""
        import inspect  # only for documentation: `check` itself never needs it

        return cls(rule.code, rule.name, rule.severity, inspect.cleandoc(rule.doc))


CheckFunction = Callable[[FilterSpec], Iterator[Diagnostic]]


class Check(NamedTuple):
    """A lint rule: its stable code and name, its severity, and the function that finds it.

    Calling a check runs it on a spec. Its findings carry its own code, name
    and severity (:meth:`finding`), so a rule is one unit: the decorator
    :func:`check` on one function, whose docstring is the documentation.
    """

    code: str
    name: str
    severity: Severity
    func: CheckFunction

    def __call__(self, spec: FilterSpec) -> Iterator[Diagnostic]:
        return self.func(spec)

    @property
    def doc(self) -> str:
        """The function's docstring: the user documentation of the rule."""
        import inspect  # only for documentation: `check` itself never needs it

        return inspect.cleandoc(self.func.__doc__ or "")

    @property
    def rule(self) -> Rule:
        """This check as a documentation :class:`Rule`."""
        return Rule(self.code, self.name, self.severity, self.doc)

    def finding(
        self,
        spec: FilterSpec,
        entry: int,
        message: str,
        hint: str | None,
        *,
        key: str | None = None,
    ) -> Diagnostic:
        """A finding of this rule about ``[[range]]`` ``entry`` (at its selector, or ``key``)."""
        return Diagnostic(
            self.code, self.name, self.severity, message, where(spec, entry, key), hint
        )


def check(code: str, name: str, severity: Severity) -> Callable[[CheckFunction], Check]:
    """Make a function a :class:`Check` with this code, name and severity.

    Raises:
        ValueError: the code or name is malformed.
    """

    def make(func: CheckFunction) -> Check:
        made = Check(code, name, severity, func)
        _validate_rule(made)
        return made

    return make


# Modules that document more codes, as (module, attribute holding a sequence of rules).
# They are imported only when all_rules() is first called (explain, SARIF), so
# `check` does not pay for them; add a line here for a new group of codes.
RULE_PROVIDERS: list[tuple[str, str]] = [
    ("hvcfilter.table.payload", "PAYLOAD_RULES"),
    ("hvcfilter.replay", "REPLAY_RULES"),
    ("hvcfilter.trace", "TRACE_RULES"),
]
_REGISTERED: list[Rule] = []


def register_rules(rules: Iterable[RuleLike]) -> None:
    """Add documented codes to the registry (for modules outside :data:`RULE_PROVIDERS`).

    Raises:
        ValueError: a code or name is malformed, or a code is already registered
            with a different name (codes are never reused).
    """
    known = {rule.code: rule.name for rule in all_rules()}
    for rule in rules:
        _validate_rule(rule)
        if rule.code in known:
            if known[rule.code] != rule.name:
                raise ValueError(
                    f"{rule.code} is already registered as {known[rule.code]!r}, "
                    f"not {rule.name!r}: codes are never reused"
                )
            continue
        _REGISTERED.append(Rule.of(rule))
        known[rule.code] = rule.name


def _validate_rule(rule: RuleLike) -> None:
    if not _CODE.match(rule.code):
        raise ValueError(f"rule code {rule.code!r} does not match HVF + three digits")
    if not _NAME.match(rule.name):
        raise ValueError(f"rule name {rule.name!r} is not kebab-case")


def all_rules() -> tuple[Rule, ...]:
    """Every documented diagnostic code, sorted by code: input, check and provider rules.

    Raises:
        ImportError: a provider module exists but fails to import (a bug).
    """
    from hvcfilter.rules import CHECKS

    rules: dict[str, Rule] = {r.code: Rule.of(r) for r in INPUT_RULES}
    for registered_check in CHECKS:
        rules[registered_check.code] = registered_check.rule
    for module_name, attribute in RULE_PROVIDERS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # that group of codes is not written yet
        for rule in getattr(module, attribute, ()):
            rules.setdefault(rule.code, Rule.of(rule))
    for registered in _REGISTERED:
        rules.setdefault(registered.code, registered)
    return tuple(sorted(rules.values(), key=lambda r: r.code))


def find_rule(query: str) -> Rule | None:
    """The rule with this code (``HVF201``, any case) or kebab-case name, if any."""
    key = query.strip()
    for rule in all_rules():
        if rule.code == key.upper() or rule.name == key.lower().replace("_", "-"):
            return rule
    return None
