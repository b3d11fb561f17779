"""The diagnostics of loading a spec (HVF0xx input, HVF1xx schema), documented as rules.

Each :class:`InputRule` is a code, a name, a severity and the text that
``hvcfilter explain`` prints; :func:`diag` builds a finding of one of them.
"""

from __future__ import annotations

from typing import NamedTuple

from hvcfilter.diagnostics import Diagnostic, Location, Severity

__all__ = ["INPUT_RULES", "InputRule", "diag"]


class InputRule(NamedTuple):
    """A diagnostic the loader emits; ``doc`` is what ``hvcfilter explain`` prints."""

    code: str
    name: str
    severity: Severity
    doc: str


INPUT_RULES: tuple[InputRule, ...] = (
    InputRule(
        "HVF001",
        "unreadable-file",
        Severity.ERROR,
        """The spec file cannot be read.

It is missing, unreadable, a directory, not UTF-8 text, or a binary payload
(whole 24-byte records, NUL bytes and all: decompile it first). The command exits
with code 2.

Fail: ``hvcfilter check missing.toml``.
Pass: a readable UTF-8 file.""",
    ),
    InputRule(
        "HVF002",
        "toml-syntax",
        Severity.ERROR,
        """The file is not valid TOML.

The message gives tomllib's reason and the position.

Fail: ``base = 0x8400000G``.
Pass: ``base = 0x84000000``.""",
    ),
    InputRule(
        "HVF101",
        "invalid-value",
        Severity.ERROR,
        """A value has the wrong type or is not one of the allowed values.

Fail: ``action = "allow"`` or ``base = "0x84000000"`` (a string, not a number).
Pass: ``action = "deny"`` and ``base = 0x84000000``.""",
    ),
    InputRule(
        "HVF102",
        "unknown-key",
        Severity.ERROR,
        """A key or table the spec format does not define.

Typos would otherwise be ignored silently, so every unknown key is an error
with the closest known key as a suggestion. A key of another range form
(``convention`` beside ``base``) names the forms that take it instead.

Fail: ``nr_function = 32``.
Pass: ``nr_functions = 32``.""",
    ),
    InputRule(
        "HVF103",
        "selector",
        Severity.ERROR,
        """A ``[[range]]`` needs exactly one selector.

The selectors are ``base`` (with ``nr_functions`` or ``end``), ``function``,
``functions``, ``service`` and ``owner``.

Fail: a range with both ``base`` and ``function``, or with neither.
Pass: ``function = "PSCI_CPU_ON_64"``.""",
    ),
    InputRule(
        "HVF104",
        "unknown-name",
        Severity.ERROR,
        """A name that hvcfilter does not know.

Function names come from the SMCCC catalogue (case-insensitive), services,
owners, kernel profiles and firmware-bitmap features from their tables. The
message suggests the closest names.

Fail: ``function = "PSCI_CPU_ONN_64"``.
Pass: ``function = "PSCI_CPU_ON_64"``.""",
    ),
    InputRule(
        "HVF105",
        "value-out-of-range",
        Severity.ERROR,
        """A number outside what the kernel ABI can hold.

Function IDs, ``base``, ``nr_functions`` and ``end`` are u32 in
``struct kvm_smccc_filter``: 0..0xFFFFFFFF. KVM compares only W0, the low 32
bits of x0, so a 64-bit ID cannot be filtered as such.

Fail: ``base = 0x1_84000000``.
Pass: ``base = 0x84000000``.""",
    ),
    InputRule(
        "HVF106",
        "range-extent",
        Severity.ERROR,
        """A raw range needs exactly one of ``nr_functions`` and ``end``.

Fail: ``base = 0x84000000`` alone, or with both ``nr_functions`` and ``end``.
Pass: ``base = 0x84000000`` with ``nr_functions = 0x20`` or ``end = 0x8400001F``.""",
    ),
    InputRule(
        "HVF107",
        "vm-config",
        Severity.WARNING,
        """The ``[vm]`` table asks for something the kernel profile refuses.

A firmware-bitmap register the kernel does not have (``vendor_hyp_2`` before
Linux 6.15: ENOENT) or a PSCI version it does not accept (1.2 and 1.3 on 6.12:
EINVAL) makes a VMM's ``KVM_SET_ONE_REG`` fail. The filter table itself is
unaffected, so this is a warning; the emulated VM of ``simulate`` and
``explain --spec`` keeps the kernel's default for that setting.

Fail: ``[filter] kernel = "6.12"`` with ``[vm] psci_version = "1.3"``.
Pass: ``[filter] kernel = "7.2"`` with ``[vm] psci_version = "1.3"``.""",
    ),
    InputRule(
        "HVF108",
        "unknown-allow",
        Severity.WARNING,
        """An ``allow`` list names a finding that cannot be accepted.

``allow = ["HVF303"]`` in a ``[[range]]`` (or in ``[filter]`` for the whole
spec) accepts the warnings and notes a reviewer has judged, by code or by
name. A code or name no rule has is probably a typo, and an error cannot be
accepted at all: the kernel rejects the table whatever the spec says.

Fail: ``allow = ["HVF999"]`` or ``allow = ["HVF201"]``.
Pass: ``allow = ["forwards-kernel-call"]`` on a range that forwards PSCI CPU_ON.""",
    ),
)
_RULES = {rule.code: rule for rule in INPUT_RULES}


def diag(code: str, message: str, location: Location, hint: str | None) -> Diagnostic:
    """A finding of the input rule ``code``."""
    rule = _RULES[code]
    return Diagnostic(code, rule.name, rule.severity, message, location, hint)
