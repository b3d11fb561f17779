"""verify --guest's reading of a guest run: trace lines and VMM log into calls, offline."""

from __future__ import annotations

import errno
import json
import threading
import time
from pathlib import Path

import pytest
from lab_fakes import fake_status

from hvcfilter.api import replay
from hvcfilter.kernel import KvmVm
from hvcfilter.lab import GuestRun, VmmEvent
from hvcfilter.render.guest import guest_json, guest_text
from hvcfilter.table.payload import RECORD
from hvcfilter.verify.guest import (
    GuestCall,
    GuestReport,
    GuestResult,
    guest_calls,
    guest_trace,
    predicted_install,
)

_TRACE = """\
# tracer: nop
 guest_vmm-135 [000] ..... 2.68: kvm_hvc_arm64: HVC at 0xffff80 (r0: 0x0000000084000000, imm: 0x0)
 guest_vmm-135 [000] ..... 2.69: kvm_hvc_arm64: HVC at 0xffff80 (r0: 0x00000000c4000003, imm: 0x0)
 guest_vmm-136 [001] ..... 2.70: kvm_hvc_arm64: HVC at 0xffff84 (r0: 0x0000000080000001, imm: 0x0)
"""


def _run(events: tuple[VmmEvent, ...]) -> GuestRun:
    return GuestRun("6.12", ("@@GUEST-INIT", "@@GUEST-ONLINE 0-1"), events, 0, _TRACE, 7.0, "")


def _vm(forward_cpu_on: bool) -> KvmVm:
    vm = KvmVm("6.12", nr_vcpus=2)
    if forward_cpu_on:
        vm.set_filter_record(RECORD.pack(0xC4000003, 1, 2, bytes(15)))
    return vm


def test_calls_in_order_with_vcpus_from_threads_and_vmm_answers() -> None:
    fwd = VmmEvent("FWD", ("0", "0", "c4000003", "0"))
    calls, mismatches = guest_calls(_run((fwd,)), _vm(True))
    assert [(c.vcpu, c.function_id, c.answered_by) for c in calls] == [
        (0, 0x84000000, "kernel"),
        (0, 0xC4000003, "vmm"),
        (1, 0x80000001, "kernel"),
    ]
    assert calls[0].name == "PSCI_VERSION_32" and calls[0].x0 is None and calls[0].x0_note
    assert calls[1].x0 == 0 and calls[1].action == "fwd_to_user"
    assert mismatches == ()


_VCPU = 0xFFF0000003C53720


def _probed(tid: int, fid: int, x1: int, x0: int, idx: int = 0) -> str:
    """One call's kvm_hvc_arm64 line and its two handle_hvc probe lines, as 6.12 prints them."""
    saved = " ".join(
        f"r{n}={_VCPU if n == 20 else 0:#x} v{n}={x0 if n == 20 else 0:#x}" for n in range(19, 29)
    )
    return (
        f" guest_vmm-{tid} [000] d.... 2.6: hvc_args: (handle_hvc+0x0/0x118) vcpu={_VCPU:#x} "
        f"a0={fid:#x} a1={x1:#x} a2=0x0 a3=0x0 idx={idx}\n"
        f" guest_vmm-{tid} [000] ..... 2.6: kvm_hvc_arm64: HVC at 0xffff80 (r0: {fid:#018x}, "
        "imm: 0x0)\n"
        f" guest_vmm-{tid} [000] d.... 2.6: hvc_ret: (handle_exit+0x68/0x168 <- handle_hvc) ret=1 "
        f"{saved}\n"
    )


def _probed_run(trace: str, probe_error: str | None = None) -> GuestRun:
    return GuestRun("6.12", (), (), 0, trace, 7.0, "", probe_error)


def test_the_kernel_x0_and_arguments_come_from_the_probes_and_match_the_emulator() -> None:
    # PSCI_FEATURES(CPU_ON_64) is supported (0); PSCI_FEATURES(CPU_FREEZE) is not (-1) on 6.12.
    trace = _probed(135, 0x8400000A, 0xC4000003, 0) + _probed(
        135, 0x8400000A, 0x8400000B, -1 % 2**64
    )
    calls, mismatches = guest_calls(_probed_run(trace), _vm(False))
    assert [(c.args, c.x0, c.predicted_x0, c.x0_note) for c in calls] == [
        ((0xC4000003, 0, 0), 0, 0, None),
        ((0x8400000B, 0, 0), 2**64 - 1, 2**64 - 1, None),
    ]
    assert mismatches == ()


def test_a_kernel_x0_other_than_the_prediction_is_a_mismatch() -> None:
    trace = _probed(135, 0x80000000, 0, 0x10000)  # SMCCC_VERSION: the emulator says 1.1
    calls, mismatches = guest_calls(_probed_run(trace), _vm(False))
    assert calls[0].x0 == 0x10000 and calls[0].predicted_x0 == 0x10001
    assert mismatches == (
        "HVC 0x80000000 SMCCC_VERSION: the real kernel returned x0=0x10000, the emulator "
        "predicted 0x10001",
    )
    assert "x0=0x10000 (emulator: kernel, x0=0x10001)" in guest_text(_result(calls, mismatches))


def test_without_probe_events_x0_is_unknown_with_the_lab_s_reason() -> None:
    calls, mismatches = guest_calls(_probed_run(_TRACE, "no BTF in this kernel"), _vm(False))
    assert all(c.x0 is None and c.x0_note == "no BTF in this kernel" for c in calls)
    assert mismatches == ()
    assert "  x0 ?: no BTF in this kernel" in guest_text(_result(calls, mismatches))


def test_probe_samples_out_of_step_with_the_tracepoint_are_not_trusted() -> None:
    # The probes saw PSCI_VERSION where the tracepoint says SMCCC_VERSION: a missed hit.
    trace = _probed(135, 0x84000000, 0, 0x10001).replace(
        "r0: 0x0000000084000000", "r0: 0x0000000080000000"
    )
    (call,), mismatches = guest_calls(_probed_run(trace), _vm(False))
    assert call.function_id == 0x80000000 and call.x0 is None and call.args is None
    assert mismatches == ()


def _result(calls: tuple[GuestCall, ...], mismatches: tuple[str, ...]) -> GuestResult:
    report = GuestReport(
        "6.12", True, True, 1, 1, "0", 7.0, "0 0 0", "SHUTDOWN", (), calls, mismatches, (), ()
    )
    return GuestResult("t.toml", True, False, (), (report,))


def test_a_forward_the_emulator_did_not_predict_is_a_mismatch() -> None:
    fwd = VmmEvent("FWD", ("0", "0", "c4000003", "ffffffffffffffff"))
    _calls, mismatches = guest_calls(_run((fwd,)), _vm(False))
    assert len(mismatches) == 1 and "0xc4000003" in mismatches[0]


def test_json_follows_the_contract_and_text_shows_mismatches() -> None:
    calls, _ = guest_calls(_run(()), _vm(False))
    report = GuestReport(
        "6.12",
        True,
        True,
        2,
        2,
        "0-1",
        7.0,
        "0 0 0",
        "SHUTDOWN",
        (),
        calls,
        ("0x1: differs",),
        ("tail",),
        ("tail",),
    )
    result = GuestResult("t.toml", True, False, (), (report,))
    doc = json.loads(guest_json(result))
    (g,) = doc["guests"]
    for key in (
        "kernel",
        "booted",
        "powered_off",
        "cpus",
        "cpus_online",
        "seconds",
        "calls",
        "mismatches",
        "console_tail",
    ):
        assert key in g
    assert set(g["calls"][0]) >= {
        "vcpu",
        "conduit",
        "function_id",
        "name",
        "action",
        "answered_by",
        "x0",
    }
    assert doc["ok"] is False
    assert "MISMATCH 0x1: differs" in guest_text(result)


def test_the_install_prediction_follows_the_emitted_c() -> None:
    rec = RECORD.pack(0xC2000000, 0x100, 2, bytes(15))
    assert predicted_install(KvmVm("6.12"), rec) == (0, 0, 0)
    assert predicted_install(KvmVm("6.12"), rec + rec) == (-1, 1, errno.EEXIST)
    assert predicted_install(KvmVm("6.1"), rec) == (-1, -1, errno.EINVAL)  # the probe
    assert predicted_install(KvmVm("6.1"), b"") == (0, 0, 0)  # nothing to probe


def _report(install: str, available: bool | None, probe: int | None) -> GuestReport:
    return GuestReport(
        "6.1", True, True, 1, 1, "0", 3.0, install, "SHUTDOWN", (), (), (), (), (),
        filter_available=available, probe_errno=probe,
    )  # fmt: skip


def test_filter_unavailable_in_text_and_json() -> None:
    result = GuestResult("t.toml", True, False, (), (_report("-1 -1 22", False, 22),))
    text = guest_text(result)
    assert "SMCCC filter unavailable (KVM_HAS_DEVICE_ATTR: EINVAL" in text
    assert "default handling" in text and text.endswith("ok\n")
    (g,) = json.loads(guest_json(result))["guests"]
    assert g["filter_available"] is False and g["probe_errno"] == errno.EINVAL
    ok = GuestResult("t.toml", True, False, (), (_report("0 0 0", True, None),))
    assert "table install: 0 0 0" in guest_text(ok)


def test_guest_trace_keeps_the_header_and_calls_and_simulate_replays_them(tmp_path: Path) -> None:
    noisy = _TRACE + " guest_vmm-135 [000] ..... 2.71: kvm_exit: some other event\n"
    run = GuestRun("6.12", (), (), 0, noisy, 1.0, "")
    text = guest_trace(run)
    assert text == _TRACE  # the lab's own lines, unchanged, the unrelated event left out
    path = tmp_path / "guest.txt"
    path.write_text(text)
    report = replay([str(path)], kernel="6.12")
    assert report.summary.calls == 3 and report.summary.skipped_lines == 0


def test_an_unimplemented_call_is_answered_by_the_kernel_and_a_denied_one_by_the_table() -> None:
    trace = _probed(135, 0xC2000005, 0, 2**64 - 1) + _probed(135, 0xC4000003, 1, 2**64 - 1)
    vm = KvmVm("6.12", nr_vcpus=2)
    vm.set_filter_record(RECORD.pack(0xC4000003, 1, 1, bytes(15)))  # deny CPU_ON_64
    calls, mismatches = guest_calls(_probed_run(trace), vm)
    assert [(c.function_id, c.action, c.answered_by, c.predicted_by) for c in calls] == [
        (0xC2000005, "handle", "kernel", "kernel"),  # SiP: nothing in KVM implements it
        (0xC4000003, "deny", "denied", "denied"),
    ]
    assert mismatches == ()


def test_the_vcpu_is_the_index_the_probes_read_not_the_thread_order() -> None:
    # Only vCPU 1's thread made calls here: thread order alone would call it vCPU 0.
    fwd = VmmEvent("FWD", ("1", "0", "c4000003", "0"))
    trace = _probed(200, 0x84000000, 0, 0x10001, idx=1) + _probed(
        200, 0xC4000003, 0, 0xC4000003, idx=1
    )
    run = GuestRun("6.12", (), (fwd,), 0, trace, 7.0, "")
    calls, mismatches = guest_calls(run, _vm(True))
    assert [(c.vcpu, c.answered_by, c.x0) for c in calls] == [(1, "kernel", 0x10001), (1, "vmm", 0)]
    assert mismatches == ()


def test_smc_calls_come_from_the_probes_in_trace_order_with_hvcs() -> None:
    saved = " ".join(
        f"r{n}={_VCPU if n == 20 else 0:#x} v{n}={2**64 - 1 if n == 20 else 0:#x}"
        for n in range(19, 29)
    )
    smc = (
        f" guest_vmm-135 [000] d.... 2.7: smc_args: (handle_smc+0x0/0x40) vcpu={_VCPU:#x} "
        "a0=0xc2000005 a1=0x0 a2=0x0 a3=0x0 idx=0 esr=0x5e000000\n"
        " guest_vmm-135 [000] d.... 2.7: smc_ret: (handle_exit+0x68/0x168 <- handle_smc) ret=1 "
        f"{saved}\n"
    )
    trace = _probed(135, 0x80000000, 0, 0x10001) + smc + _probed(135, 0x84000000, 0, 0x10001)
    calls, mismatches = guest_calls(_probed_run(trace), _vm(False))
    assert [(c.conduit, c.function_id, c.x0) for c in calls] == [
        ("hvc", 0x80000000, 0x10001),
        ("smc", 0xC2000005, 2**64 - 1),  # SiP over SMC: nothing in KVM implements it
        ("hvc", 0x84000000, 0x10001),
    ]
    assert calls[1].predicted_x0 == 2**64 - 1 and mismatches == ()


def test_kernels_boot_in_parallel_and_reports_keep_the_kernels_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from hvcfilter.verify import guest as guest_mod

    running, peak, lock = [0], [0], threading.Lock()
    both_started = threading.Barrier(2, timeout=10)
    built: list[str] = []

    def fake_run_guest(_lab: object, kernel: str, _header: str, **_: object) -> GuestRun:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        if kernel != "6.1":
            both_started.wait()  # 6.12 and 7.2 are in flight together
        time.sleep(0.05 if kernel == "6.12" else 0)  # finish out of order
        with lock:
            running[0] -= 1
        return GuestRun(kernel, ("@@GUEST-INIT",), (), 0, _TRACE, 1.0, "")

    monkeypatch.setattr(guest_mod, "lab_status", lambda _cache: fake_status(tmp_path))
    monkeypatch.setattr(guest_mod, "build_vmm", lambda _cache, header: built.append(header))
    monkeypatch.setattr(guest_mod, "run_guest", fake_run_guest)
    spec = Path(__file__).resolve().parents[3] / "examples" / "minimal.toml"
    result = guest_mod.verify_guest(spec, ["6.1", "6.12", "7.2"], jobs=2)
    assert [g.kernel for g in result.guests] == ["6.1", "6.12", "7.2"]
    assert peak[0] == 2 and len(built) == 1  # the VMM is built once, before the boots
    assert all(len(g.calls) == 3 for g in result.guests)
