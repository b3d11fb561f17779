"""verify --guest on the real lab kernels: a Linux guest boots under a table in the lab's VMM.

The table is installed by the C that ``hvcfilter compile --format c`` emits,
compiled with -Wall -Wextra -Werror into the VMM, so these boots also prove
the emitted install code on each real kernel.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from hvcfilter.api import replay
from hvcfilter.kernel import KvmVm
from hvcfilter.lab import LabStatus
from hvcfilter.render.guest import guest_json, guest_text
from hvcfilter.rules.boot_calls import linux_boot_calls
from hvcfilter.verify.guest import ForwardPolicy, GuestReport, verify_guest

pytestmark = pytest.mark.lab
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DENY_PSCI = """\
[filter]
name = "deny-psci"
kernel = "6.12"

[[range]]
action = "deny"
base = 0x84000000
nr_functions = 0x20
"""


def _seen(g: GuestReport) -> str:
    """What a failed boot assertion prints: how the VMM stopped and the console's end."""
    tail = "\n".join(g.console_tail[-40:])
    return f"exit {g.exit_reason}, {g.seconds} s, reasons {g.reasons}; console:\n{tail}"


@pytest.mark.parametrize("kernel", ["6.12", "7.2"])
def test_default_table_boots_and_powers_off(lab: LabStatus, kernel: str) -> None:
    (g,) = verify_guest(EXAMPLES / "minimal.toml", [kernel], timeout_s=60).guests
    assert g.install == "0 0 0"  # the emitted install function returned 0
    assert g.booted and g.powered_off and g.cpus_online == 1, _seen(g)
    assert 0x84000000 in {c.function_id for c in g.calls}  # PSCI_VERSION
    # Every call's x0 was read back from the vCPU (the handle_hvc probes), and every one the
    # emulator predicts matched it: a difference would be listed in mismatches.
    assert all(c.x0 is not None and c.args is not None for c in g.calls)
    (version,) = {c.x0 for c in g.calls if c.function_id == 0x84000000}
    assert version == KvmVm(kernel).call(0x84000000).x0
    assert g.mismatches == ()
    # The shipped boot-call data (`hvcfilter lab boot-calls`) still holds what Linux calls.
    assert {c.function_id for c in g.calls} <= set(linux_boot_calls(kernel))


def test_hotplug_table_with_psci_policy_brings_two_cpus_up(lab: LabStatus) -> None:
    result = verify_guest(
        EXAMPLES / "vcpu-hotplug.toml", ["6.12"], cpus=2, policy=ForwardPolicy.PSCI, timeout_s=60
    )
    (g,) = result.guests
    assert g.booted and g.powered_off and g.cpus_online == 2, _seen(g)
    cpu_on = [c for c in g.calls if c.function_id in (0x84000003, 0xC4000003)]
    assert cpu_on and all(c.answered_by == "vmm" and c.x0 == 0 for c in cpu_on)
    assert result.ok


def test_hotplug_table_with_default_policy_leaves_one_cpu_and_says_why(lab: LabStatus) -> None:
    (g,) = verify_guest(EXAMPLES / "vcpu-hotplug.toml", ["7.2"], cpus=2, timeout_s=60).guests
    assert g.booted and g.powered_off and g.cpus_online == 1, _seen(g)
    assert any("CPU_ON was forwarded" in r for r in g.reasons)


def test_deny_all_psci_times_out_cleanly(lab: LabStatus, tmp_path: Path) -> None:
    spec = tmp_path / "deny-psci.toml"
    spec.write_text(DENY_PSCI)
    result = verify_guest(spec, ["6.12"], timeout_s=15)
    (g,) = result.guests
    assert not g.powered_off and g.exit_reason == "TIMEOUT"
    assert any("--timeout" in r for r in g.reasons)
    assert {c.answered_by for c in g.calls} == {"denied"}
    assert not result.ok


def test_6_1_the_filter_unavailable_report(lab: LabStatus) -> None:
    """6.1: the filter-unavailable report.

    Linux 6.1 has no SMCCC filter: the emitted install function's
    KVM_HAS_DEVICE_ATTR probe fails (EINVAL on 6.1.176), the VMM carries on,
    and the guest boots and powers off with the kernel's default handling,
    call for call as the 6.1 emulator profile predicts.
    """
    result = verify_guest(EXAMPLES / "minimal.toml", ["6.1"], timeout_s=60)
    (g,) = result.guests
    assert g.install == f"-1 -1 {errno.EINVAL}"  # failed at the probe, record -1
    assert g.filter_available is False and g.probe_errno == errno.EINVAL
    assert g.booted and g.powered_off and g.cpus_online == 1, _seen(g)
    assert g.calls and all(c.answered_by == c.predicted_by == "kernel" for c in g.calls)
    assert all(c.x0 is not None for c in g.calls)  # 6.1's kretprobes read x0 just the same
    assert 0x84000000 in {c.function_id for c in g.calls}  # PSCI_VERSION
    assert g.mismatches == () and result.ok
    text = guest_text(result)
    assert "SMCCC filter unavailable (KVM_HAS_DEVICE_ATTR: EINVAL" in text
    assert '"probe_errno": 22' in guest_json(result)


DENY_TRNG = """\
[filter]
name = "deny-trng"
kernel = "6.12"

[[range]]
service = "trng"
action = "deny"
"""


def test_a_table_denying_trng_still_boots_and_the_kernel_denies_its_trng_calls(
    lab: LabStatus, tmp_path: Path
) -> None:
    spec = tmp_path / "deny-trng.toml"
    spec.write_text(DENY_TRNG)
    result = verify_guest(spec, ["6.12"], timeout_s=60)
    (g,) = result.guests
    assert g.booted and g.powered_off, _seen(g)
    trng = [c for c in g.calls if (c.function_id & 0xBFFFFFFF) in range(0x84000050, 0x84000060)]
    # Debian's 6.12 guest asks TRNG for entropy at boot; every such call is denied by the table.
    assert trng and all(c.answered_by == "denied" and c.action == "deny" for c in trng)
    assert {c.x0 for c in trng} == {2**64 - 1}  # SMCCC NOT_SUPPORTED, as the guest saw it
    assert result.ok
    # --save-trace closes the loop: simulate replays the saved calls to the same outcomes.
    saved = tmp_path / "guest.txt"
    saved.write_text(g.trace)
    replayed = replay([str(saved)], spec=str(spec))
    assert replayed.summary.calls == len(g.calls)
    assert replayed.summary.outcomes["not_supported"] == len(trng)


def test_smc_conduit_every_call_is_an_smc_and_the_jsonl_trace_replays_it(
    lab: LabStatus, tmp_path: Path
) -> None:
    """A device tree naming the SMC conduit: Linux makes every SMCCC call by SMC.

    No tracepoint records an SMC's function ID (reference §6.1); the
    handle_smc probes do, with its registers, and 7.2 answers them through
    the same SMCCC handler as HVCs (reference §4, 6.4 row).
    """
    from hvcfilter.render.guest import guest_calls_jsonl

    result = verify_guest(EXAMPLES / "minimal.toml", ["7.2"], conduit="smc", timeout_s=60)
    (g,) = result.guests
    assert g.booted and g.powered_off and g.conduit == "smc", _seen(g)
    assert g.calls and {c.conduit for c in g.calls} == {"smc"}
    assert 0x84000000 in {c.function_id for c in g.calls}  # PSCI_VERSION
    assert all(c.x0 is not None and c.args is not None for c in g.calls)
    assert g.mismatches == () and result.ok
    saved = tmp_path / "guest.jsonl"
    saved.write_text(guest_calls_jsonl(g))
    replayed = replay([str(saved)], spec=str(EXAMPLES / "minimal.toml"))
    assert replayed.summary.calls == len(g.calls) and replayed.summary.skipped_lines == 0


def test_6_1_answers_every_smc_with_minus_one_so_the_guest_cannot_power_off(
    lab: LabStatus,
) -> None:
    """Before 6.4 an EL1 SMC got x0 = -1 without reaching any SMCCC handler (reference §4).

    Linux then finds no PSCI, cannot power off, and the VMM stops it at the timeout.
    """
    result = verify_guest(EXAMPLES / "minimal.toml", ["6.1"], conduit="smc", timeout_s=15)
    (g,) = result.guests
    assert g.booted and not g.powered_off and g.exit_reason == "TIMEOUT", _seen(g)
    assert g.calls and {c.conduit for c in g.calls} == {"smc"}
    assert {c.x0 for c in g.calls} == {2**64 - 1} and {c.action for c in g.calls} == {"none"}
    assert g.mismatches == ()  # the 6.1 profile predicts exactly that
    assert not result.ok
