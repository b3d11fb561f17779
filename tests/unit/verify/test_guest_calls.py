"""verify --guest's reading of a guest run: trace lines and VMM log into calls, offline."""

from __future__ import annotations

import errno
import json
from pathlib import Path

from hvcfilter.api import replay
from hvcfilter.kernel import KvmVm
from hvcfilter.lab import GuestRun, VmmEvent
from hvcfilter.render.guest import guest_json, guest_text
from hvcfilter.table.payload import RECORD
from hvcfilter.verify.guest import (
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
