"""The 6.1 profile: a kernel without the SMCCC filter, as observed on Linux 6.1.176 in the lab."""

from __future__ import annotations

import errno

from hvcfilter.kernel import KvmVm
from hvcfilter.kernel.profiles import PROFILES, get_profile
from hvcfilter.table.payload import RECORD

_U64 = 0xFFFF_FFFF_FFFF_FFFF


def test_only_6_1_lacks_the_filter() -> None:
    assert [p.name for p in PROFILES.values() if not p.has_filter] == ["6.1"]
    old = get_profile("6.1.176")
    assert old.no_filter_errno == errno.EINVAL and not old.smc_via_smccc
    assert old.reserved_ranges == ()
    assert all(p.smc_via_smccc for p in PROFILES.values() if p.has_filter)


def test_every_attribute_ioctl_fails_with_einval() -> None:
    vm = KvmVm("6.1")
    assert vm.has_device_attr(0, 0) == errno.EINVAL  # [obs: verify on 6.1.176]
    assert vm.has_device_attr(1, 0) == errno.EINVAL  # not ENXIO: the ioctl itself is unknown
    assert vm.get_device_attr(0, 0) == errno.EINVAL
    for base, nr, action in ((0xC2000000, 0x100, 2), (0x80000000, 1, 0), (0, 0, 1)):
        assert vm.set_filter(base, nr, action) == errno.EINVAL
    assert vm.set_device_attr(1, 0, RECORD.pack(0xC2000000, 1, 2, bytes(15))) == errno.EINVAL
    vm.run()
    assert vm.set_filter(0xC2000000, 1, 2) == errno.EINVAL  # no EBUSY either
    assert vm.installed_ranges() == ()


def test_smc_always_gets_all_ones_with_x1_to_x3_untouched() -> None:
    vm = KvmVm("6.1")
    for fid in (0x80000000, 0x84000000, 0xC2000005):
        r = vm.call(fid, 1, 2, 3, conduit="smc")
        assert (r.x0, r.x1, r.x2, r.x3, r.exit) == (_U64, 1, 2, 3, "none")
    r32 = vm.call(0x80000000, 1, 2, 3, conduit="smc", mode="a32")
    assert (r32.x0, r32.x1) == (0xFFFF_FFFF, 1)
    # 6.12 routes the same SMC through the SMCCC handler.
    assert KvmVm("6.12").call(0x80000000, 1, 2, 3, conduit="smc").x0 == 0x10001


def test_hvc_gets_the_default_in_kernel_handling() -> None:
    vm = KvmVm("6.1")
    assert vm.call(0x80000000, 0, 0, 0).x0 == 0x10001  # SMCCC 1.1
    assert vm.call(0x84000000, 0, 0, 0).x0 == 0x10001  # PSCI 1.1
    assert vm.call(0x86000000, 0, 0, 0).x0 == 0x3  # KVM_FEATURES: FUNC_FEAT | PTP
    assert vm.call(0x84000050, 0, 0, 0).x0 == 0x10000  # TRNG 1.0
    assert vm.get_fw_bitmap(3) == (errno.ENOENT, 0)  # three registers, as 6.12
    assert vm.call(0xC2000005, 0, 0, 0).outcome == "not_supported"
