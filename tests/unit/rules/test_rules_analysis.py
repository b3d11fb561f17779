"""Unit tests of hvcfilter.rules.analysis: the shared view of a spec, the kernel facts rules use."""

from __future__ import annotations

import random
import re

import pytest

from hvcfilter import rules, smccc
from hvcfilter.kernel import FAST_PATH_IDS, KvmVm
from hvcfilter.kernel.profiles import PROFILES, get_profile
from hvcfilter.lint import lint_text
from hvcfilter.model import Action, VmConfig
from hvcfilter.rules import (
    analysis,
    kernel_calls,
)
from hvcfilter.smccc import Conduit
from hvcfilter.spec import loads


def _raw(*ranges: tuple[int, int, str], kernel: str | None = None) -> str:
    head = f'[filter]\nkernel = "{kernel}"\n\n' if kernel else ""
    body = "".join(
        f'[[range]]\nbase = {b:#x}\nnr_functions = {n:#x}\naction = "{a}"\n\n' for b, n, a in ranges
    )
    return head + body


def _brute_overlaps(ranges: list[tuple[int, int]]) -> set[int]:
    """Indices (in base order) of records that share an ID with an earlier one: O(n^2)."""
    order = sorted(range(len(ranges)), key=lambda i: ranges[i][0])  # ties: entry order
    hit = set()
    for pos, i in enumerate(order):
        b, n = ranges[i]
        for j in order[:pos]:
            bj, nj = ranges[j]
            if b <= bj + nj - 1 and bj <= b + n - 1:
                hit.add(i)
    return hit


def test_kernel_calls_follow_profile_and_vm() -> None:
    new, old = get_profile("7.2"), get_profile("6.12")
    assert 0x8400_0015 in kernel_calls(new)  # SYSTEM_OFF2 with the 1.3 default
    assert 0x8400_0015 not in kernel_calls(old)
    assert 0x8400_0015 not in kernel_calls(new, VmConfig(psci_version=(1, 1)))
    assert 0x8400_0050 in kernel_calls(new)
    assert 0x8400_0050 not in kernel_calls(new, VmConfig(bitmaps={0: 0}))
    assert 0x8600_0001 not in kernel_calls(new, VmConfig(bitmaps={2: 0x1}))
    assert 0x8600_0000 in kernel_calls(new, VmConfig(bitmaps={2: 0x1}))
    legacy = kernel_calls(new, VmConfig(psci_version=(0, 1)))
    assert 0x95C1_BA60 in legacy and 0x8400_0003 not in legacy
    assert 0x8400_000A not in kernel_calls(new, VmConfig(psci_version=(0, 2)))
    assert 0x8400_000E not in kernel_calls(new)  # SYSTEM_SUSPEND needs a capability


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_kernel_calls_agree_with_the_emulator(profile: str) -> None:
    """The linter's view of what KVM answers (kvm_calls data) must match the emulator's handlers.

    SMC avoids the HVC-only ARCH_WORKAROUND fast path; a stolen-time IPA makes PV time answer.
    """
    prof = PROFILES[profile]
    # Before 6.4 every SMC gets -1 without a handler: ask by HVC there, minus its fast path.
    conduit: Conduit = "smc" if prof.smc_via_smccc else "hvc"
    ids = sorted({e.function_id for e in smccc.catalogue().entries} - set(FAST_PATH_IDS))
    for psci in prof.psci_versions_accepted:
        for bitmaps in ({}, {0: 0, 1: 0, 2: 0}):
            vm_config = VmConfig(psci, bitmaps)
            vm = KvmVm.from_config(prof, vm_config, stolen_time_ipa=0x1000)
            handled = {fid for fid in ids if vm.resolve(fid, conduit).outcome == "handled"}
            assert handled == set(kernel_calls(prof, vm_config)), (psci, bitmaps)


@pytest.mark.parametrize("seed", range(8))
def test_overlap_sweep_matches_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    ranges = [(0xC200_0000 + rng.randrange(0, 400), rng.randrange(1, 40)) for _ in range(60)]
    text = _raw(*[(b, n, "deny") for b, n in ranges])
    report = lint_text(text)
    found = [d for d in report.diagnostics if d.code == "HVF201"]
    flagged = set()
    for diag in found:
        match = re.search(r"overlaps range\[(\d+)\]", diag.message)
        assert match is not None
        flagged.add(int(match.group(1)))
    # Every record that shares an ID with an earlier one (in base order) is named once.
    assert len(found) == len(flagged)
    assert flagged == _brute_overlaps(ranges)


def test_lookup_uses_the_installed_table() -> None:
    spec = loads(
        _raw(
            (0xC200_0000, 0x10, "deny"),
            (0xC200_0008, 0x10, "fwd_to_user"),
            (0xC200_0018, 4, "fwd_to_user"),
        )
    ).spec
    assert spec is not None
    a = analysis.analyse(spec)
    assert a.lookup(0xC200_0009) is spec.ranges[0]  # the second overlaps, so it is not installed
    assert a.lookup(0xC200_0019) is spec.ranges[2]  # installed: it only overlaps a rejected one
    assert a.lookup(0xC200_0010) is None
    assert a.action_at(0xC200_0000)[0] is Action.DENY


def test_as_written_layout_installs_in_spec_order() -> None:
    records = _raw(
        (0xC200_0008, 0x10, "fwd_to_user"), (0xC200_0000, 0x10, "deny"), (0xC200_0018, 4, "deny")
    )
    sorted_spec = loads(records).spec
    written = loads('[filter]\nlayout = "as-written"\n\n' + records).spec
    assert sorted_spec is not None and written is not None
    # Compiled by base, range[1] goes in first and range[0] is refused; in spec order
    # range[0] goes in first and range[1] is refused. range[2] is adjacent: kept either way.
    assert analysis.analyse(sorted_spec).lookup(0xC200_0009) is sorted_spec.ranges[1]
    assert analysis.analyse(sorted_spec).lookup(0xC200_0019) is sorted_spec.ranges[2]
    assert analysis.analyse(written).lookup(0xC200_0009) is written.ranges[0]
    assert analysis.analyse(written).lookup(0xC200_0019) is written.ranges[2]
    assert analysis.analyse(written).lookup(0xC200_0001) is None


def test_unsorted_and_sorted_inputs_give_the_same_findings() -> None:
    ranges = [(0xC200_0000 + 0x40 * i, 0x20 if i % 3 else 0x48, "deny") for i in range(30)]
    shuffled = ranges[:]
    random.Random(1).shuffle(shuffled)
    a = lint_text(_raw(*ranges)).diagnostics
    b = lint_text(_raw(*shuffled)).diagnostics
    assert sorted(d.code for d in a) == sorted(d.code for d in b)
    assert sum(d.code == "HVF201" for d in a) == 10


def test_analysis_is_cached_per_spec_and_released() -> None:
    spec = loads(_raw((0xC200_0000, 1, "deny"))).spec
    assert spec is not None
    assert analysis.analyse(spec) is analysis.analyse(spec)
    rules.check_spec(spec)
    assert id(spec) not in analysis._CACHE
