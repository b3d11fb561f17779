"""Unit tests for hvcfilter.kernel.calls: the calls KVM answers, their gates, the allow-list."""

from __future__ import annotations

import pytest

from hvcfilter.kernel import calls as kvm_calls
from hvcfilter.kernel import psci, services, vm
from hvcfilter.kernel.calls import (
    KVM_CALLS,
    KVM_CALLS_BY_ID,
    Always,
    FirmwareBit,
    PsciVersion,
    default_allowed,
    firmware_bit_set,
    in_psci_block,
    reaches_psci,
    serves,
)
from hvcfilter.kernel.profiles import PROFILES, get_profile


def test_ids_are_unique() -> None:
    assert len(KVM_CALLS_BY_ID) == len(KVM_CALLS)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_bitmap_gates_name_bits_every_profile_has(name: str) -> None:
    profile = PROFILES[name]
    for call in KVM_CALLS:
        if isinstance(call.gate, FirmwareBit):
            reg = profile.register_by_name(call.gate.register)
            assert reg is not None and call.gate.feature in reg.bits, call.name


def test_the_emulator_has_a_handler_for_every_call() -> None:
    assert set(services.EXACT) | set(psci.HANDLERS) == set(KVM_CALLS_BY_ID)
    assert vm.FAST_PATH_IDS is kvm_calls.HVC_FAST_PATH


def test_allow_list() -> None:
    allowed = [0x8000_0000, 0x8000_0001, 0x8400_0000, 0x84FF_0003, 0x0400_0000, 0xC400_001F]
    allowed += list(range(0x95C1_BA5E, 0x95C1_BA62))
    for fid in allowed:
        assert default_allowed(fid), hex(fid)
    # Bitmap-gated, reserved-but-unimplemented, past 0x1F, or outside the 0.1 block.
    for fid in (0x8400_0050, 0x8600_0000, 0x8000_0002, 0x8400_0020, 0x95C1_BA62, 0x95C1_BA5D):
        assert not default_allowed(fid), hex(fid)
    assert in_psci_block(0x8401_0000) and not in_psci_block(0x95C1_BA5F)
    assert reaches_psci(0x95C1_BA5F) and not reaches_psci(0x8000_0000)


def test_psci_gates() -> None:
    new, old = get_profile("7.2"), get_profile("6.12")
    off2 = KVM_CALLS_BY_ID[kvm_calls.PSCI_SYSTEM_OFF2]
    legacy_on = KVM_CALLS_BY_ID[kvm_calls.KVM_PSCI_FN_CPU_ON]
    suspend = KVM_CALLS_BY_ID[kvm_calls.PSCI_SYSTEM_SUSPEND_64]
    reset2 = KVM_CALLS_BY_ID[kvm_calls.PSCI_SYSTEM_RESET2]
    assert serves(off2, new, (1, 3), {}) and not serves(off2, new, (1, 2), {})
    assert not serves(off2, old, (1, 3), {})  # the kernel lacks it
    assert serves(legacy_on, new, (0, 1), {}) and not serves(legacy_on, new, (0, 2), {})
    assert not serves(suspend, new, (1, 0), {})
    assert serves(suspend, new, (1, 0), {}, system_suspend=True)
    assert not serves(suspend, new, (0, 2), {}, system_suspend=True)
    assert serves(reset2, new, (1, 1), {}) and not serves(reset2, new, (1, 0), {})
    assert isinstance(off2.gate, PsciVersion) and not off2.gate.implemented_by(old)


def test_bitmap_gates_read_defaults_and_values() -> None:
    profile = get_profile("7.2")
    ptp = KVM_CALLS_BY_ID[kvm_calls.KVM_PTP]
    assert serves(ptp, profile, (1, 3), {})  # vendor_hyp defaults to 0x3
    assert not serves(ptp, profile, (1, 3), {2: 0x1})
    assert serves(ptp, profile, (1, 3), {2: 0x2})
    assert not firmware_bit_set(profile, {}, "vendor_hyp", "no-such-bit")
    assert not firmware_bit_set(profile, {}, "no_such_register", "ptp")
    arch = KVM_CALLS_BY_ID[kvm_calls.SMCCC_VERSION]
    assert isinstance(arch.gate, Always) and serves(arch, profile, (0, 1), {0: 0, 1: 0, 2: 0})
