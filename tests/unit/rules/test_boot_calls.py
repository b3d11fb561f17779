"""The shipped record of what Linux guests call at boot (``hvcfilter lab boot-calls``)."""

from __future__ import annotations

import json

from suite_paths import ROOT

from hvcfilter.rules.boot_calls import PURPOSE, linux_boot_calls
from hvcfilter.verify.boot_calls import FORMAT

DATA = ROOT / "hvcfilter" / "data" / "boot-calls.json"


def test_the_data_covers_every_default_lab_kernel_in_its_format() -> None:
    document = json.loads(DATA.read_text())
    assert document["format"] == FORMAT
    assert set(document["guests"]) >= {"6.1", "6.12", "7.2"}


def test_linux_boots_with_psci_version_cpu_on_and_system_off() -> None:
    for kernel in ("6.1", "6.12", "7.2"):
        calls = linux_boot_calls(kernel)
        assert {0x84000000, 0xC4000003, 0x84000008} <= set(calls)


def test_an_unrecorded_kernel_gets_the_union() -> None:
    union = linux_boot_calls("7.3")
    for kernel in ("6.1", "6.12", "7.2"):
        assert set(linux_boot_calls(kernel)) <= set(union)


def test_every_purpose_is_of_a_recorded_call() -> None:
    assert set(PURPOSE) <= set(linux_boot_calls("7.3"))
