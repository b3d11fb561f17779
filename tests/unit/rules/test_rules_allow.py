"""Unit tests of hvcfilter.rules.allow: what a spec's allow lists accept, and where."""

from __future__ import annotations

from hvcfilter.lint import lint_text


def test_allow_accepts_warnings_of_its_own_range_only() -> None:
    text = """
[[range]]
action = "fwd_to_user"
functions = ["PSCI_CPU_ON_32", "PSCI_CPU_ON_64"]
allow = ["HVF303"]

[[range]]
action = "fwd_to_user"
functions = ["PSCI_CPU_OFF_32"]
"""
    found = [(d.code, d.location.key) for d in lint_text(text, "a.toml").diagnostics]
    assert ("HVF303", "range[1].functions") in found
    assert all(not (code == "HVF303" and (key or "").startswith("range[0]")) for code, key in found)


def test_filter_allow_accepts_everywhere_but_never_an_error() -> None:
    text = """
[filter]
allow = ["forwards-kernel-call", "HVF201"]

[[range]]
action = "fwd_to_user"
base = 0x84000002
nr_functions = 2

[[range]]
action = "deny"
base = 0x84000003
nr_functions = 1
"""
    codes = [d.code for d in lint_text(text, "b.toml").diagnostics]
    assert "HVF303" not in codes
    assert "HVF201" in codes and "HVF108" in codes


_VM_WARNING = """
[filter]
kernel = "6.12"
{allow}

[vm]
psci_version = "1.3"

[[range]]
owner = "sip"
action = "deny"
"""


def test_allow_accepts_the_loaders_warnings_too() -> None:
    # HVF107 comes from loading the [vm] table, not from a lint rule.
    assert "HVF107" in [
        d.code for d in lint_text(_VM_WARNING.format(allow=""), "v.toml").diagnostics
    ]
    allowed = lint_text(_VM_WARNING.format(allow='allow = ["vm-config"]'), "v.toml")
    assert [d.code for d in allowed.diagnostics] == []


def test_an_allowed_hvf108_silences_unknown_allow_items() -> None:
    text = """
[filter]
allow = ["HVF108"]

[[range]]
action = "deny"
base = 0xC2000000
nr_functions = 1
allow = ["a-rule-from-a-newer-hvcfilter"]
"""
    assert [d.code for d in lint_text(text, "n.toml").diagnostics] == []
    without = text.replace('allow = ["HVF108"]', "")
    assert [d.code for d in lint_text(without, "n.toml").diagnostics] == ["HVF108"]


def test_allow_items_are_read_in_any_case_as_explain_reads_them() -> None:
    # The schema's pattern lets a lower-case code through as if it were a rule name.
    text = """
[[range]]
action = "fwd_to_user"
functions = ["PSCI_CPU_ON_32", "PSCI_CPU_ON_64"]
allow = ["hvf303"]
"""
    codes = [d.code for d in lint_text(text, "c.toml").diagnostics]
    assert "HVF101" not in codes  # the spec was understood, so the rules ran
    assert "HVF303" not in codes and "HVF108" not in codes
