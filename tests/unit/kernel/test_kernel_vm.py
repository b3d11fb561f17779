"""Tests for hvcfilter.kernel.KvmVm: data-driven cases (selftest, real-kernel rows), each rule."""

from __future__ import annotations

import errno
import itertools
import tomllib
from collections import Counter
from typing import Any

import pytest
from suite_paths import KERNEL_CASES

from hvcfilter.errors import HvcFilterError, PayloadError, SpecError
from hvcfilter.kernel import (
    FAST_PATH_IDS,
    KVM_HYPERCALL_EXIT_16BIT,
    CallResult,
    Conduit,
    KvmVm,
    Mode,
    in_kernel_calls,
)
from hvcfilter.kernel.profiles import PROFILES, HostCpu, UnknownProfileError
from hvcfilter.model import Action, VmConfig

CASES_DIR = KERNEL_CASES
OBSERVED = ("6.12", "7.2")
MARKERS = (0x1111, 0x2222, 0x3333)
U64 = (1 << 64) - 1
U32 = (1 << 32) - 1


# ----------------------------------------------------------------------------- data-driven


def _load_cases() -> list[Any]:
    params = []
    for path in sorted(CASES_DIR.glob("*.toml")):
        for case in tomllib.loads(path.read_text("utf-8"))["case"]:
            for kernel in case.get("kernels", OBSERVED):
                params.append(pytest.param(case, kernel, id=f"{path.stem}:{case['name']}@{kernel}"))
    return params


def _errno(value: str | int) -> int:
    if isinstance(value, int):
        return value
    return 0 if value == "OK" else int(getattr(errno, value))


def _pad(step: dict[str, Any]) -> bytes:
    pad = bytearray(15)
    if "pad_index" in step:
        pad[step["pad_index"]] = step["pad_value"]
    return bytes(pad)


def _expected(step: dict[str, Any], kernel: str) -> Any:
    return step.get("expect_by_kernel", {}).get(kernel, step.get("expect"))


def _reg(value: Any, sent: int | None, width: int) -> int | None:
    if value == "unknown":
        return None
    if value == "sent":
        return sent
    if value == "ones":
        return width
    assert isinstance(value, int)
    return value & width


def _check_call(result: CallResult, step: dict[str, Any], want: Any, regs: list[Any]) -> None:
    mode = step.get("mode", "a64")
    conduit = step.get("conduit", "hvc")
    width = U64 if mode == "a64" else U32
    sent = [None if r is None else (r & width) for r in regs]
    if want == "not_supported":
        want = {"outcome": "not_supported", "x0": "ones", "x1": 0, "x2": 0, "x3": 0}
    elif want == "forwarded":
        flags = 1 if conduit == "smc" else 0
        want = {
            "outcome": "forwarded",
            "exit": "hypercall",
            "nr": step["x0"] & U32,
            "flags": flags,
            "action": "fwd_to_user",
        }
    elif want == "rejected":
        want = {"outcome": "rejected", "x0": U64, "x1": "sent", "x2": "sent", "x3": "sent"}
    assert isinstance(want, dict), want
    for key, value in want.items():
        got = getattr(result, key)
        if key in ("x0", "x1", "x2", "x3"):
            index = int(key[1])
            expect = _reg(value, None if index == 0 else sent[index - 1], width)
        elif key == "action":
            expect = None if value == "unknown" else Action.parse(value)
        else:
            expect = value
        assert got == expect, f"{key}: got {got!r}, want {expect!r} in {result}"


@pytest.mark.parametrize(("case", "kernel"), _load_cases())
def test_case(case: dict[str, Any], kernel: str) -> None:
    """Each selftest case and reference observation, replayed on the emulator."""
    vm = KvmVm(kernel, **case.get("vm", {}))
    for n, step in enumerate(case["steps"]):
        op = step["op"]
        want = _expected(step, kernel)
        where = f"step {n} {step}"
        if op in ("filter", "record", "set_attr"):
            args = (step["base"], step["nr"], step["action"], _pad(step))
            if op == "filter":
                got = vm.set_filter(*args)
            else:
                record = args[0].to_bytes(4, "little") + args[1].to_bytes(4, "little")
                record += bytes([args[2]]) + args[3]
                if op == "record":
                    got = vm.set_filter_record(record)
                else:
                    got = vm.set_device_attr(step["group"], step["attr"], record)
            assert got == _errno(want), where
        elif op == "has_attr":
            assert vm.has_device_attr(step["group"], step["attr"]) == _errno(want), where
        elif op == "get_attr":
            assert vm.get_device_attr(step["group"], step["attr"]) == _errno(want), where
        elif op == "bitmap":
            assert vm.set_fw_bitmap(step["reg"], step["value"]) == _errno(want), where
        elif op == "getbitmap":
            assert vm.get_fw_bitmap(step["reg"]) == (_errno(want[0]), want[1]), where
        elif op == "psci":
            assert vm.set_psci_version(step["version"]) == _errno(want), where
        elif op == "vcpus":
            vm.create_vcpus()
        elif op == "run":
            vm.run()
        elif op == "call":
            regs = [step.get(f"x{i}", MARKERS[i - 1]) for i in (1, 2, 3)]
            regs = [None if r == "unknown" else r for r in regs]
            result = vm.call(
                step["x0"],
                *regs,
                conduit=step.get("conduit", "hvc"),
                imm=step.get("imm", 0),
                mode=step.get("mode", "a64"),
            )
            _check_call(result, step, want, regs)
        else:  # pragma: no cover - a typo in a case file
            pytest.fail(f"unknown op {op!r} in {case['name']}")


def test_case_files_cover_every_selftest_function() -> None:
    """The selftest file names every test function of smccc_filter.c (so none is dropped)."""
    text = (CASES_DIR / "selftest.toml").read_text("utf-8")
    for fn in (
        "test_pad_must_be_zero",
        "test_invalid_nr_functions",
        "test_overflow_nr_functions",
        "test_reserved_action",
        "test_filter_reserved_range",
        "test_filter_overlap",
        "test_filter_denied",
        "test_filter_fwd_to_user",
        "kvm_supports_smccc_filter",
    ):
        assert fn in text


# ----------------------------------------------------------------------------- profiles


def test_default_profile_is_newest() -> None:
    assert KvmVm().profile.name == "7.2"


def test_unknown_profile_lists_known_ones() -> None:
    with pytest.raises(UnknownProfileError, match=r"6\.12.*7\.2") as info:
        KvmVm("5.10")
    assert isinstance(info.value, HvcFilterError)


@pytest.mark.parametrize("name", OBSERVED)
def test_zero_zero_matches_profile_field(name: str) -> None:
    """The emulator's (0, 0) errno is the one the profile records for the linter."""
    vm = KvmVm(name)
    assert vm.set_filter(0, 0, 1) == PROFILES[name].zero_zero_errno


@pytest.mark.parametrize("name", OBSERVED)
def test_default_psci_version_from_profile(name: str) -> None:
    vm = KvmVm(name)
    major, minor = PROFILES[name].psci_version_default
    assert vm.psci_version == (major, minor)
    assert vm.call(0x84000000).x0 == (major << 16) | minor


# ----------------------------------------------------------------------------- installs


def test_failed_set_leaves_reserved_inserted() -> None:
    """6.7+: the reserved ranges go in at the first SET that passes validation, even if it fails."""
    vm = KvmVm("6.12")
    assert not vm.reserved_inserted
    assert vm.set_filter(0x84000000, 0, 1) == errno.EINVAL
    assert not vm.reserved_inserted
    assert vm.set_filter(0x80000000, 1, 1) == errno.EEXIST
    assert vm.reserved_inserted
    assert vm.installed_ranges() == ()
    assert vm.call(0x84000000).x0 == 0x10001  # behaves as unfiltered [obs 2.1]


def test_partial_table_stays_installed() -> None:
    vm = KvmVm("6.12")
    assert vm.set_filter(0xC2000000, 1, 2) == 0
    assert vm.set_filter(0xC2000000, 1, 1) == errno.EEXIST
    assert [(s.first, s.last, s.action) for s in vm.installed_ranges()] == [
        (0xC2000000, 0xC2000000, Action.FWD_TO_USER)
    ]


def test_pad_wins_over_ebusy_and_eexist() -> None:
    vm = KvmVm("6.12")
    pad = bytes([1]) + bytes(14)
    assert vm.set_filter(0x80000000, 1, 1, pad) == errno.EINVAL
    vm.run()
    assert vm.set_filter(0xC2000000, 1, 1, pad) == errno.EINVAL


def test_action_passed_through_raw() -> None:
    vm = KvmVm()
    for action in (3, 0x80, 0xFF):
        assert vm.set_filter(0xC2000000, 1, action) == errno.EINVAL


def test_bad_python_arguments_raise() -> None:
    vm = KvmVm()
    with pytest.raises(ValueError, match="u32"):
        vm.set_filter(1 << 32, 1, 0)
    with pytest.raises(ValueError, match="pad"):
        vm.set_filter(0, 1, 0, bytes(7))
    with pytest.raises(PayloadError, match="24 bytes"):
        vm.set_filter_record(bytes(16))
    with pytest.raises(ValueError, match="conduit"):
        vm.call(0, conduit="svc")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode"):
        vm.call(0, mode="a16")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="imm"):
        vm.call(0, imm=0x10000)
    with pytest.raises(ValueError, match="64-bit"):
        vm.call(1 << 64)
    with pytest.raises(ValueError, match="register 9"):
        vm.fw_bitmap(9)


def test_lookup_and_segments() -> None:
    vm = KvmVm("6.12")
    assert vm.lookup(0x80000005) is Action.HANDLE  # reserved, even before insertion
    assert vm.lookup(0xDEAD_0000_8000_0005) is Action.HANDLE  # only W0 counts
    assert vm.lookup(0x84000000) is None
    assert vm.set_filter(0x84000000, 0x20, 1) == 0
    assert vm.set_filter(0x84000020, 0x20, 2) == 0
    assert vm.lookup(0x8400001F) is Action.DENY
    assert vm.lookup(0x84000020) is Action.FWD_TO_USER
    assert vm.lookup(0x84000040) is None
    segs = list(vm.effective_segments())
    assert segs[0].first == 0 and segs[-1].last == U32
    for a, b in itertools.pairwise(segs):
        assert a.last + 1 == b.first
    sources = [(s.first, s.source, s.order) for s in segs if s.source != "none"]
    assert sources == [
        (0x80000000, "reserved", None),
        (0x84000000, "installed", 0),
        (0x84000020, "installed", 1),
        (0xC0000000, "reserved", None),
    ]


def test_filter_after_vcpu_creation_then_locked() -> None:
    vm = KvmVm()
    vm.create_vcpus()
    assert vm.set_filter(0xC2000000, 1, 1) == 0
    vm.call(0x80000000)  # a call implies the first run
    assert vm.has_run
    assert vm.set_filter(0xC3000000, 1, 1) == errno.EBUSY


# ----------------------------------------------------------------------------- calls


def test_only_w0_is_the_function_id() -> None:
    vm = KvmVm()
    assert vm.set_filter(0x84000000, 1, 1) == 0
    assert vm.call(0xFFFF_FFFF_8400_0000).outcome == "not_supported"
    r = vm.call(0x1234_5678_8600_0000)
    assert (r.fid, r.x0) == (0x86000000, 3)


def test_deny_reason_names_the_range() -> None:
    vm = KvmVm()
    assert vm.set_filter(0x84000000, 0x20, 1) == 0
    r = vm.call(0x84000005)
    assert r.reason == "filter range 0x84000000-0x8400001F denies it"
    assert r.matched == (0x84000000, 0x8400001F)


def test_bitmap_reason() -> None:
    vm = KvmVm()
    assert vm.set_fw_bitmap(0, 0) == 0
    r = vm.call(0x84000050)
    assert r.outcome == "not_supported"
    assert r.reason == "TRNG disabled in the std firmware bitmap"
    assert r.service == "trng"


def test_explicit_handle_never_enables() -> None:
    vm = KvmVm()
    assert vm.set_filter(0xC4000020, 0x20, 0) == 0  # SDEI: not implemented by KVM
    r = vm.call(0xC4000021)
    assert (r.outcome, r.action) == ("not_supported", Action.HANDLE)
    assert "leaves it to KVM" in r.reason


def test_sixteen_bit_flag_never_set() -> None:
    vm = KvmVm()
    assert vm.set_filter(0xC2000000, 1, 2) == 0
    modes: tuple[Mode, ...] = ("a64", "a32", "t32")
    conduits: tuple[Conduit, ...] = ("hvc", "smc")
    for mode in modes:
        for conduit in conduits:
            r = vm.call(0xC2000000, conduit=conduit, mode=mode)
            assert r.flags is not None
            assert not r.flags & KVM_HYPERCALL_EXIT_16BIT


def test_fast_path_ignores_filter_and_bitmaps() -> None:
    assert frozenset({0x80008000, 0x80007FFF, 0x80003FFF}) == FAST_PATH_IDS
    vm = KvmVm()
    r = vm.call(0x80008000, 7, 8, 9)
    assert (r.outcome, r.action, r.x0, r.x1, r.x2, r.x3) == ("handled", None, 0, 0, 8, 9)


def test_aarch32_registers_are_32_bit() -> None:
    vm = KvmVm()
    r = vm.call(0xFFFF_FFFF_8400_0008, mode="a32")
    assert r.x0 == 0xFFFFFFFA  # INTERNAL_FAILURE as r0 holds it
    r = vm.call(0xC2000000, 0x1_0000_0005, mode="a32", conduit="smc", imm=3)
    assert r.outcome == "not_supported"  # A32 SMC immediates are not checked


def test_cpu_on_states() -> None:
    vm = KvmVm(nr_vcpus=3)
    assert vm.call(0xC4000003, 0).x0 == -4 & U64  # the caller is on: ALREADY_ON
    assert vm.call(0xC4000003, 2).x0 == 0  # powered-off secondary
    assert vm.call(0x84000003, 2).x0 == -4 & U64  # now on
    assert vm.call(0x84000003, 1 | 1 << 32).x0 == 0  # SMC32 ID: x1 narrowed to vCPU 1
    assert vm.call(0xC4000003, 1 << 32).x0 == -2 & U64  # Aff3 = 1: no such vCPU
    assert vm.call(0xC4000003, 1 << 24).x0 == -2 & U64  # not an affinity bit
    unknown = vm.call(0xC4000003)
    assert (unknown.x0, unknown.x1) == (None, 0)


@pytest.mark.parametrize(
    ("kernel", "event", "x1"),
    [
        pytest.param("6.1", 0x84000008, 0, id="6.1-SYSTEM_OFF"),
        pytest.param("6.12", 0x84000009, 0, id="6.12-SYSTEM_RESET"),
        pytest.param("6.12", 0xC4000012, 0, id="6.12-SYSTEM_RESET2-warm"),
        pytest.param("7.2", 0xC4000015, 1, id="7.2-SYSTEM_OFF2-hibernate"),
    ],
)
def test_a_system_event_stops_the_secondaries(kernel: str, event: int, x1: int) -> None:
    # Seen on the lab's 6.1, 6.12 and 7.2: after the exit, a secondary that was on reads
    # OFF and CPU_ON starts it again; vCPU 0, resumed by the VMM, is on.
    vm = KvmVm(kernel, nr_vcpus=3)
    assert vm.call(0xC4000003, 1, 0x40000000).x0 == 0
    assert vm.call(0xC4000004, 1, 0).x0 == 0  # ON
    assert vm.call(event, x1, 0, 0).exit == "system_event"
    assert vm.call(0xC4000004, 1, 0).x0 == 1  # OFF
    assert vm.call(0xC4000004, 0, 0).x0 == 0  # the caller
    assert vm.call(0xC4000003, 1, 0x40000000).x0 == 0
    assert vm.call(0xC4000003, 0, 0x40000000).x0 == -4 & U64


def test_a_failed_or_suspend_system_call_stops_no_vcpu() -> None:
    vm = KvmVm("7.2", nr_vcpus=2, system_suspend=True)
    assert vm.call(0xC4000003, 1, 0x40000000).x0 == 0
    assert vm.call(0xC4000012, 0x1111, 0, 0).x0 == -2 & U64  # RESET2 of a bad type: no exit
    # SYSTEM_SUSPEND exits without kvm_prepare_system_event [src psci.c]: the VMM decides.
    assert vm.call(0xC400000E, 0x40000000, 0).exit == "system_event"
    assert vm.call(0xC4000004, 1, 0).x0 == 0  # still ON


def test_cpu_on_secondaries_running() -> None:
    vm = KvmVm(nr_vcpus=2, secondaries_off=False)
    assert vm.call(0xC4000003, 1).x0 == -4 & U64


def test_mpidr_layout_above_16_vcpus() -> None:
    vm = KvmVm(nr_vcpus=20)
    assert vm.call(0xC4000003, 0x103).x0 == 0  # vCPU 19: Aff1 = 1, Aff0 = 3
    assert vm.call(0xC4000003, 0x13).x0 == -2 & U64


def test_affinity_info() -> None:
    vm = KvmVm(nr_vcpus=2)
    assert vm.call(0xC4000004, 0, 0).x0 == 0  # vCPU 0 ON
    assert vm.call(0xC4000004, 1, 0).x0 == 1  # vCPU 1 OFF
    assert vm.call(0xC4000004, 5, 0).x0 == -2 & U64
    assert vm.call(0xC4000004, 0, 4).x0 == -2 & U64
    assert vm.call(0xC4000004, 0x100, 1).x0 == -2 & U64  # no vCPU in Aff1 = 1
    assert vm.call(0x84000004, 1, 1 << 32).x0 == 1  # 32-bit ID: level narrowed to 0
    assert vm.call(0xC4000004, 0, None).x0 is None


def test_psci_0_1_vm() -> None:
    vm = KvmVm(psci_0_2=False, nr_vcpus=2)
    assert vm.psci_version == (0, 1)
    assert vm.set_psci_version("1.0") == errno.EINVAL
    assert vm.set_psci_version("0.1") == 0
    assert vm.call(0x84000000).outcome == "not_supported"
    assert vm.call(0x95C1BA60, 0).x0 == -2 & U64  # 0.1 answers INVALID_PARAMS for on
    assert vm.call(0x95C1BA60, 1).x0 == 0
    assert vm.call(0x95C1BA5F).x0 == 0
    assert vm.call(0x95C1BA5E).outcome == "not_supported"


def test_psci_0_2_and_1_0() -> None:
    vm = KvmVm("6.12")
    assert vm.set_psci_version("0.2") == 0
    assert vm.call(0x84000000).x0 == 2
    assert vm.call(0x8400000A, 0x84000000).outcome == "not_supported"
    assert vm.set_psci_version((1, 0)) == 0
    assert vm.call(0x84000000).x0 == 0x10000
    assert vm.call(0x8400000A, 0x84000012).x0 == -1 & U64  # RESET2 needs 1.1
    assert vm.call(0x84000012, 0).outcome == "not_supported"
    assert vm.set_psci_version(0x10001) == 0
    assert vm.call(0x8400000A, 0x84000012).x0 == 0


def test_psci_features_list() -> None:
    vm = KvmVm("7.2", system_suspend=True)
    for fid in (
        0x84000000,
        0x84000001,
        0xC4000001,
        0x84000002,
        0x84000003,
        0xC4000003,
        0x84000004,
        0xC4000004,
        0x84000006,
        0x84000008,
        0x84000009,
        0x8400000A,
        0x80000000,
        0x8400000E,
        0xC400000E,
        0x84000012,
        0xC4000012,
    ):
        assert vm.call(0x8400000A, fid).x0 == 0, hex(fid)
    assert vm.call(0x8400000A, 0x84000005).x0 == -1 & U64
    assert vm.call(0x8400000A, 0xC4000003, mode="a32").x0 == U32
    assert vm.call(0x8400000A).x0 is None
    assert KvmVm().call(0x8400000A, 0x8400000E).x0 == -1 & U64  # capability off


def test_system_reset2() -> None:
    vm = KvmVm("6.12")
    r = vm.call(0xC4000012, 0, 5, 6)
    assert (r.exit, r.event_type, r.event_data0, r.x0) == ("system_event", 2, 1, -6 & U64)
    assert (r.x1, r.x2, r.x3) == (0, 5, 6)  # only x0 is written before this exit
    r = vm.call(0x84000012, 0x8000_0001 | 1 << 32, 1 << 40, 0)
    assert (r.exit, r.x1, r.x2) == ("system_event", 0x80000001, 0)  # narrowed, vendor type
    assert vm.call(0xC4000012, 1).x0 == -2 & U64
    unknown = vm.call(0xC4000012)
    assert (unknown.exit, unknown.x0, unknown.event_type) == (None, None, None)


def test_system_suspend() -> None:
    r = KvmVm(system_suspend=True).call(0xC400000E, 1, 2, 3)
    assert (r.exit, r.event_type, r.event_ndata) == ("system_event", 5, 0)
    assert (r.x0, r.x1, r.x2, r.x3) == (0xC400000E, 1, 2, 3)
    assert KvmVm().call(0xC400000E, 1, 2, 3).outcome == "not_supported"


def test_cpu_suspend_off_migrate_info() -> None:
    vm = KvmVm()
    assert vm.call(0xC4000001).x0 == 0
    assert vm.call(0x84000002).x0 == 0
    assert vm.call(0x84000006).x0 == 2


def test_trng_random_registers() -> None:
    vm = KvmVm()
    r = vm.call(0x84000053, 0)
    assert (r.x0, r.x1, r.x2, r.x3) == (0, 0, 0, 0)
    r = vm.call(0x84000053, 40)
    assert (r.x0, r.x1, r.x2, r.x3) == (0, 0, None, None)
    r = vm.call(0x84000053, 96)
    assert (r.x0, r.x1, r.x2, r.x3) == (0, None, None, None)
    r = vm.call(0xC4000053, 64)
    assert (r.x0, r.x1, r.x2, r.x3) == (0, 0, 0, None)
    r = vm.call(0xC4000053, 193)
    assert (r.x0, r.x1) == (-2 & U64, 0)
    assert vm.call(0x84000053).x0 is None
    assert vm.call(0x84000051, 0x1_84000050).x0 == -1 & U64  # TRNG compares the full x1


def test_ptp_and_pv_time() -> None:
    vm = KvmVm()
    assert vm.call(0x86000001, 0).x0 is None  # host time
    r = vm.call(0x86000001, 2)
    assert (r.x0, r.x1) == (-1 & U64, 0)
    no_counter = HostCpu("other", 0, -1, -1, arch_counter_clocksource=False)
    assert KvmVm(host=no_counter).call(0x86000001, 0).x0 == -1 & U64
    assert vm.call(0xC5000020, 0xC5000020).x0 == -1 & U64  # no stolen-time IPA
    assert vm.call(0xC5000021).x0 == -1 & U64
    st = KvmVm(stolen_time_ipa=0x4000_0000)
    assert st.call(0xC5000020, 0xC5000021).x0 == 0
    assert st.call(0xC5000020, 0x80000000).x0 == -1 & U64
    assert st.call(0xC5000021).x0 == 0x4000_0000
    assert st.call(0x80000001, 0xC5000020).x0 == 0
    off = KvmVm(stolen_time_ipa=0x4000_0000)
    assert off.set_fw_bitmap(1, 0) == 0
    assert off.call(0x80000001, 0xC5000020).x0 == -1 & U64
    assert off.call(0xC5000021).outcome == "not_supported"


def test_arch_features_host_dependent() -> None:
    host = HostCpu("mitigated", wa1_answer=0, wa2_answer=-2, wa3_answer=1)
    vm = KvmVm(host=host)
    assert [vm.call(0x80000001, w).x0 for w in (0x80008000, 0x80007FFF, 0x80003FFF)] == [
        0,
        -2 & U64,
        1,
    ]


def test_in_kernel_table_gates_are_profile_bits() -> None:
    for profile in PROFILES.values():
        for call in in_kernel_calls().values():
            if call.gate is not None:
                reg = profile.register_by_name(call.gate[0])
                assert reg is not None and call.gate[1] in reg.bits


# ----------------------------------------------------------------------------- batch and cache


def test_resolve_is_memoised_and_invalidated() -> None:
    vm = KvmVm()
    first = vm.resolve(0x86000000)
    assert vm.resolve(0x86000000) is first
    vm2 = KvmVm()
    assert vm2.resolve(0x84000050).x0 == 0x10000
    vm2 = KvmVm()
    vm2._cache[(0x84000050, "hvc", 0, "a64")] = first  # poison, then change a bitmap
    assert vm2.set_fw_bitmap(0, 0) == 0
    assert vm2.resolve(0x84000050).outcome == "not_supported"
    vm3 = KvmVm()
    vm3.resolve(0x84000000)
    assert vm3.set_psci_version("1.1") == 0  # not locked by the run [src]
    assert vm3.resolve(0x84000000).x0 == 0x10001


def test_batch_agrees_with_single_calls() -> None:
    calls = [
        (0x80000000, "hvc", 0, "a64"),
        (0x84000000, "smc", 0, "a64"),
        (0xC2000005, "smc", 1, "a64"),
        (0xC2000005, "smc", 1, "a32"),
        (0x80008000, "hvc", 0, "t32"),
        (0x84000008, "hvc", 0, "a64"),
        (0xDEAD_0000_C200_0001, "hvc", 3, "a64"),
        (0x84000000, "smc", 0, "a64"),
    ]
    vm = KvmVm("6.12")
    assert vm.set_filter(0xC2000000, 0x10, 2) == 0
    single = KvmVm("6.12")
    assert single.set_filter(0xC2000000, 0x10, 2) == 0
    batch = vm.call_batch(calls)  # type: ignore[arg-type]
    assert batch == [
        single.call(x0, conduit=c, imm=i, mode=m)  # type: ignore[arg-type]
        for x0, c, i, m in calls
    ]
    tally = KvmVm("6.12")
    assert tally.set_filter(0xC2000000, 0x10, 2) == 0
    assert tally.tally(calls) == Counter(batch)  # type: ignore[arg-type]
    assert vm.has_run and tally.has_run


# ----------------------------------------------------------------------------- from_config


def test_from_config_applies_vm_table() -> None:
    vm = KvmVm.from_config("7.2", VmConfig(psci_version=(1, 1), bitmaps={2: 1, 3: 2}))
    assert vm.psci_version == (1, 1)
    assert (vm.fw_bitmap(2), vm.fw_bitmap(3)) == (1, 2)
    assert vm.call(0x86000000).x2 == 2


def test_from_config_psci_0_1_means_a_vcpu_without_psci_0_2() -> None:
    """A spec's ``psci_version = "0.1"`` is accepted by the linter, so simulate must build it."""
    vm = KvmVm.from_config("7.2", VmConfig(psci_version=(0, 1)))
    assert vm.psci_version == (0, 1)
    assert vm.call(0x95C1BA5F, 0, 0, 0).x0 == 0  # KVM PSCI 0.1 CPU_OFF
    assert vm.call(0x84000000, 0, 0, 0).outcome == "not_supported"


def test_from_config_refusals() -> None:
    with pytest.raises(SpecError, match=r"PSCI version 1\.3: EINVAL"):
        KvmVm.from_config("6.12", VmConfig(psci_version=(1, 3)))
    with pytest.raises(SpecError, match=r"register 3 = 0x1: ENOENT"):
        KvmVm.from_config("6.12", VmConfig(bitmaps={3: 1}))


def test_protected_needs_profile_support() -> None:
    with pytest.raises(ValueError, match="protected"):
        KvmVm("6.12", protected=True)


def test_reserved_inserted_at_creation_for_create_profiles() -> None:
    """A 6.4-6.6 style profile puts the reserved ranges in at VM creation (same answers)."""
    early = PROFILES["6.12"]._replace(name="6.6", reserved_insertion="create")
    vm = KvmVm(early)
    assert vm.reserved_inserted
    assert vm.set_filter(0x80000000, 1, 1) == errno.EEXIST
    assert vm.call(0x80000000).x0 == 0x10001


def test_a_memoised_system_reset_still_stops_the_secondaries() -> None:
    # resolve() memoises calls with x1-x3 unknown; the second SYSTEM_RESET came from
    # the cache and left vCPU 1 on, so CPU_ON answered ALREADY_ON where the kernel says 0.
    vm = KvmVm("7.2", nr_vcpus=2)
    for _ in range(2):
        assert vm.call(0xC4000003, 1, 0x40000000).x0 == 0
        assert vm.resolve(0x84000009).exit == "system_event"
    assert vm.call(0xC4000003, 1, 0x40000000).x0 == 0
    vm.call(0xC4000003, 1, 0x40000000)
    vm.call_batch([(0x84000009, "hvc", 0, "a64")])  # a cache hit in a batch too
    assert vm.call(0xC4000004, 1, 0).x0 == 1  # OFF
