"""The lab console split into the guest's lines, the VMM's events, its status and its stderr."""

from __future__ import annotations

from hvcfilter.lab import GuestRun
from hvcfilter.lab.guest import _split_console
from hvcfilter.verify.guest import _reasons

CONSOLE = """\
[    1.0] lab kernel noise before the run
@@HVCLAB-BEGIN
[    0.000000] Booting Linux on physical CPU 0x0000000000\r
@@VMM INSTALL 0 0 0
[    2.7] @@GUEST-INIT
@@GUEST-VMM-RC 139
@@HVCLAB-STDERR-BEGIN
guest_vmm: vcpu 1: unexpected exit 17
@@HVCLAB-STDERR-END
@@HVCLAB-TRACE-BEGIN
# tracer: nop
@@HVCLAB-TRACE-END
"""


def test_stderr_is_kept_apart_from_the_guest_console() -> None:
    guest, events, rc, stderr = _split_console(CONSOLE)
    assert guest == (
        "[    0.000000] Booting Linux on physical CPU 0x0000000000",
        "[    2.7] @@GUEST-INIT",
    )
    assert [e.kind for e in events] == ["INSTALL"]
    assert rc == 139
    assert stderr == ("guest_vmm: vcpu 1: unexpected exit 17",)


def test_a_crashed_vmm_is_reported_with_its_signal_and_its_stderr() -> None:
    guest, events, rc, stderr = _split_console(CONSOLE)
    run = GuestRun("6.12", guest, events, rc, "", 3.0, CONSOLE, None, stderr)
    reasons = _reasons(run, (), 1, None)
    assert reasons == [
        "the VMM failed (no exit line)",
        "the VMM was killed by signal 11",
        "the VMM's stderr: guest_vmm: vcpu 1: unexpected exit 17",
    ]
