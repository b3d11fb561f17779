"""``verify --guest``: boot a real Linux guest under a table and report every SMCCC call it made.

:func:`verify_guest` compiles the spec, emits its C header (the code
``hvcfilter compile --format c`` produces, compiled into the lab's VMM),
boots each lab kernel as a guest of that VMM and reads back the guest's
calls: the lab kernel's ``kvm_hvc_arm64`` ftrace events give every HVC and
its function ID, kprobes on ``handle_hvc`` and ``handle_smc``
(:mod:`hvcfilter.lab.call_probe`) every SMC, the x1-x3 each call passed and
the x0 the kernel returned, and the VMM's ``@@VMM FWD`` lines the x0 it
answered for forwarded ones. Each call is replayed on
the emulator (``KvmVm`` with the kernel's profile and the same records); a
call the emulator says is forwarded but the VMM never saw, or the reverse, is
a mismatch, and so is a kernel x0 other than the predicted one. Where the
probes saw nothing, a call carries ``x0 = None`` with the reason, never a guess.
"""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from hvcfilter import smccc
from hvcfilter.diagnostics import Diagnostic
from hvcfilter.errors import errno_name
from hvcfilter.kernel import CallResult, KvmVm
from hvcfilter.kernel.abi import Action
from hvcfilter.lab import CallSample, GuestRun, build_vmm, lab_status, run_guest
from hvcfilter.smccc import Conduit
from hvcfilter.verify.plans import emulator_profile, lab_kernel_for

__all__ = [
    "ForwardPolicy",
    "GuestCall",
    "GuestReport",
    "GuestResult",
    "guest_calls",
    "guest_trace",
    "predicted_install",
    "verify_guest",
]

_HVC = re.compile(
    r"^\s*\S+-(\d+)\s+\[\d+\].*?kvm_hvc_arm64: HVC at (0x[0-9a-f]+) "
    r"\(r0: (0x[0-9a-f]+), imm: (0x[0-9a-f]+)\)"
)
_PSCI_CPU_ON = (0x84000003, 0xC4000003)
X0_UNOBSERVED = "the lab's exit-handler probes recorded no return for this call"


class ForwardPolicy(StrEnum):
    """How the lab VMM answers forwarded calls."""

    NOT_SUPPORTED = "not-supported"
    PSCI = "psci"


@dataclass(frozen=True, slots=True)
class GuestCall:
    """One SMCCC call the guest made, what the table and the emulator say, and who answered."""

    vcpu: int
    conduit: str
    function_id: int
    name: str | None
    action: str
    answered_by: str
    x0: int | None
    x0_note: str | None
    predicted_by: str
    # The guest's x1-x3 as the probes saw them (None: not observed), and the
    # x0 the emulator predicted (None where it depends on the host or the VMM).
    args: tuple[int, int, int] | None = None
    predicted_x0: int | None = None
    imm: int = 0


@dataclass(frozen=True, slots=True)
class GuestReport:
    """One kernel's guest boot."""

    kernel: str
    booted: bool
    powered_off: bool
    cpus: int
    cpus_online: int | None
    online: str | None
    seconds: float
    install: str
    exit_reason: str | None
    reasons: tuple[str, ...]
    calls: tuple[GuestCall, ...]
    mismatches: tuple[str, ...]
    console_tail: tuple[str, ...]
    console: tuple[str, ...]
    # Whether the kernel has the SMCCC filter, from the install function's
    # KVM_HAS_DEVICE_ATTR probe (None: an empty table probes nothing), and
    # the probe's errno when it failed (EINVAL before Linux 6.4).
    filter_available: bool | None = None
    probe_errno: int | None = None
    # The guest's calls as the lab kernel traced them (ftrace text that `simulate` reads).
    trace: str = ""
    vmm_stderr: tuple[str, ...] = ()
    # The SMCCC conduit the guest's device tree named.
    conduit: str = "hvc"

    @property
    def ok(self) -> bool:
        """Booted, powered off, every call as predicted."""
        return self.booted and self.powered_off and not self.mismatches


@dataclass(frozen=True, slots=True)
class GuestResult:
    """``verify --guest`` over one spec."""

    spec: str
    compiled: bool
    unreadable: bool
    diagnostics: tuple[Diagnostic, ...]
    guests: tuple[GuestReport, ...]

    @property
    def ok(self) -> bool:
        """Every guest booted, powered off and matched the emulator."""
        return self.compiled and all(g.ok for g in self.guests)


def _count_online(text: str | None) -> int | None:
    if not text:
        return None
    total = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        try:
            total += int(hi or lo) - int(lo) + 1
        except ValueError:
            return None
    return total


def _answered(pred: CallResult) -> str:
    """Who the emulator says answers: the VMM (forwarded), the table (denied) or the kernel."""
    if pred.outcome == "forwarded":
        return "vmm"
    return "denied" if pred.action is Action.DENY else "kernel"


@dataclass(frozen=True, slots=True)
class _Row:
    """One guest call in trace order, before it meets the emulator."""

    tid: int
    conduit: Conduit
    fid: int
    imm: int
    sample: CallSample | None


def _rows(run: GuestRun) -> list[_Row]:
    """The guest's calls in trace order: HVCs from ``kvm_hvc_arm64``, SMCs from the probes.

    An HVC takes the next HVC sample of its thread when the two agree on the
    function ID; a disagreement (a missed probe hit) stops the thread's
    samples from being trusted. SMCs have no tracepoint, so the probes are
    their only record.
    """
    samples = run.call_samples
    hvc: dict[int, deque[CallSample]] = {}
    for sample in samples:
        if sample.conduit == "hvc":
            hvc.setdefault(sample.tid, deque()).append(sample)
    smc = [s for s in samples if s.conduit == "smc"]
    rows: list[tuple[int, _Row]] = [
        (s.line, _Row(s.tid, "smc", s.args[0] & 0xFFFFFFFF, s.imm or 0, s)) for s in smc
    ]
    for position, line in enumerate((run.trace or "").splitlines()):
        m = _HVC.match(line)
        if m is None:
            continue
        tid, fid, imm = int(m.group(1)), int(m.group(3), 16) & 0xFFFFFFFF, int(m.group(4), 16)
        queue = hvc.get(tid)
        taken: CallSample | None = queue.popleft() if queue else None
        if taken is not None and taken.args[0] & 0xFFFFFFFF != fid:
            hvc.pop(tid, None)
            taken = None
        rows.append((position, _Row(tid, "hvc", fid, imm & 0xFFFF, taken)))
    return [row for _, row in sorted(rows, key=lambda item: item[0])]


def guest_calls(run: GuestRun, vm: KvmVm) -> tuple[tuple[GuestCall, ...], tuple[str, ...]]:
    """The guest's calls from the trace and the VMM's log, each beside the emulator's answer.

    Calls are replayed on ``vm`` in the guest's order with the x1-x3 the probes
    saw, so state the calls change (a CPU_ON's target) follows the guest. A
    call whose x0 the kernel returned differently from the emulator's
    prediction is a mismatch, as is a forward on one side only.
    """
    rows = _rows(run)
    tids = sorted({row.tid for row in rows})
    fwd = [ev.fields for ev in run.events if ev.kind == "FWD" and len(ev.fields) >= 4]
    calls: list[GuestCall] = []
    mismatches: list[str] = []
    cat = smccc.catalogue()
    for row in rows:
        sample, fid = row.sample, row.fid
        args = sample.args[1:] if sample is not None else None
        if args is not None:
            pred = vm.call(fid, *args, conduit=row.conduit, imm=row.imm)
        else:
            pred = vm.resolve(fid, row.conduit, row.imm)
        action = pred.action.name.lower() if pred.action is not None else "none"
        name = cat.name_of(fid)
        expected = _answered(pred)
        # The vCPU's own index when the probes read it; else threads in start order,
        # which is vCPU order in the lab's VMM.
        vcpu = (
            sample.vcpu if sample is not None and sample.vcpu is not None else tids.index(row.tid)
        )
        hit = next(
            (i for i, f in enumerate(fwd) if int(f[2], 16) == fid and f[0] == str(vcpu)),
            next((i for i, f in enumerate(fwd) if int(f[2], 16) == fid), None),
        )
        x0: int | None = None
        note: str | None = None
        if hit is not None:
            x0, answered = int(fwd.pop(hit)[3], 16), "vmm"
        else:
            # Not the VMM: the table's deny or the kernel, as the emulator tells them apart.
            answered = "kernel" if expected == "vmm" else expected
            if sample is not None and sample.x0 is not None:
                x0 = sample.x0
            else:
                note = run.probe_error or X0_UNOBSERVED
        label = f"{row.conduit.upper()} {fid:#010x} {name or '?'}"
        if (answered == "vmm") != (expected == "vmm"):
            mismatches.append(
                f"{label}: the emulator says {expected}, the real kernel gave it to "
                f"{'the VMM' if answered == 'vmm' else 'the kernel'}"
            )
        elif answered != "vmm" and x0 is not None and pred.x0 is not None and x0 != pred.x0:
            mismatches.append(
                f"{label}: the real kernel returned x0={x0:#x}, the emulator predicted {pred.x0:#x}"
            )
        calls.append(
            GuestCall(
                vcpu=vcpu,
                conduit=row.conduit,
                function_id=fid,
                name=name,
                action=action,
                answered_by=answered,
                x0=x0,
                x0_note=note,
                predicted_by=expected,
                args=args,
                predicted_x0=pred.x0,
                imm=row.imm,
            )
        )
    return tuple(calls), tuple(mismatches)


def predicted_install(vm: KvmVm, raw: bytes) -> tuple[int, int, int]:
    """What the emitted install function returns on ``vm``: (rc, record, errno), as the VMM prints.

    It probes with ``KVM_HAS_DEVICE_ATTR`` (record -1 when that fails), then
    sets one record at a time and stops at the first refusal; an empty table
    does neither. The records are installed into ``vm`` as a side effect.
    """
    if not raw:
        return 0, 0, 0
    err = vm.has_device_attr(0, 0)
    if err:
        return -1, -1, err
    for index, off in enumerate(range(0, len(raw), 24)):
        err = vm.set_filter_record(raw[off : off + 24])
        if err:
            return -1, index, err
    return 0, 0, 0


def _install_fields(
    install: str, predicted: tuple[int, int, int], *, probed: bool
) -> tuple[bool | None, int | None, list[str]]:
    """``filter_available``, ``probe_errno`` and any mismatch from the VMM's INSTALL line."""
    try:
        real = tuple(int(f) for f in install.split())
    except ValueError:
        real = ()
    if len(real) != 3:
        return None, None, [f"the VMM reported no usable install result ({install!r})"]
    rc, record, err = real
    mismatches = []
    if real != predicted:
        mismatches.append(
            f"table install: the VMM got rc={rc} record={record} {errno_name(err)}, the "
            f"emulator predicted rc={predicted[0]} record={predicted[1]} {errno_name(predicted[2])}"
        )
    if rc and record == -1:
        return False, err, mismatches
    return (True if probed else None), None, mismatches


def guest_trace(run: GuestRun) -> str:
    """The guest's SMCCC calls as ftrace text: the trace header and its ``kvm_hvc_arm64`` events.

    This is the lab kernel's own trace, unchanged line for line, so ``hvcfilter
    simulate`` replays exactly the calls the report lists.
    """
    keep = [
        line
        for line in (run.trace or "").splitlines()
        if line.startswith("#") or _HVC.match(line) is not None
    ]
    return "".join(f"{line}\n" for line in keep)


def _reasons(run: GuestRun, calls: Sequence[GuestCall], cpus: int, online: int | None) -> list[str]:
    out: list[str] = []
    if run.exit_reason == "TIMEOUT":
        out.append("the guest did not power off before --timeout; the VMM stopped it")
    elif run.exit_reason in ("ERROR", None):
        detail = next((" ".join(e.fields[1:]) for e in run.events if e.kind == "EXIT"), "")
        out.append(
            f"the VMM failed ({run.exit_reason or 'no exit line'}{' ' + detail if detail else ''})"
        )
    if run.vmm_rc is not None and run.vmm_rc > 128:
        out.append(f"the VMM was killed by signal {run.vmm_rc - 128}")
    if run.vmm_stderr:
        out.append("the VMM's stderr: " + " | ".join(run.vmm_stderr[-5:]))
    if any("Kernel panic" in ln for ln in run.guest_console):
        out.append("the guest kernel panicked")
    if online is not None and online < cpus:
        refused = [c for c in calls if c.function_id in _PSCI_CPU_ON and c.x0 not in (None, 0)]
        denied = [c for c in calls if c.function_id in _PSCI_CPU_ON and c.answered_by == "denied"]
        if refused:
            out.append(
                f"CPU_ON was forwarded and the VMM answered x0={refused[0].x0:#x} "
                "(use --forward-policy psci to start secondaries in the VMM)"
            )
        elif denied:
            out.append("CPU_ON was denied by the table")
        else:
            out.append(f"only {online} of {cpus} CPUs came online")
    return out


def verify_guest(
    spec_path: str | Path,
    kernels: Sequence[str] = (),
    *,
    cpus: int = 1,
    policy: ForwardPolicy = ForwardPolicy.NOT_SUPPORTED,
    timeout_s: float = 60.0,
    cache_dir: Path | None = None,
    conduit: str = "hvc",
    jobs: int | None = None,
) -> GuestResult:
    """Boot a Linux guest under the spec's table on each lab kernel and report its calls.

    ``conduit`` is the SMCCC conduit the guest's device tree names (``hvc`` or
    ``smc``): Linux makes all its SMCCC calls through it. ``jobs`` bounds the
    kernels booted at once (default: one per core); reports keep the kernels'
    order either way.

    Raises:
        LabError: the lab is not ready, the VMM does not compile, or QEMU fails.
        UnknownProfileError, SpecError: from compiling the spec.
    """
    from hvcfilter.emit import OutputFormat, emit
    from hvcfilter.table.compiler import compile_file

    result = compile_file(spec_path)
    if result.table is None:
        return GuestResult(str(spec_path), False, result.unreadable, result.diagnostics, ())
    table = result.table
    header = emit(table, OutputFormat.C).decode()
    lab = lab_status(cache_dir)
    chosen = list(kernels) or [lab_kernel_for(table.profile)]
    raw = table.encode()
    # Once, before any boot: parallel boots then share the cached binary.
    build_vmm(lab.cache_dir, header)

    def boot(kernel: str) -> GuestReport:
        vm = KvmVm(emulator_profile(kernel), nr_vcpus=cpus)
        predicted = predicted_install(vm, raw)
        # Secondaries wait for the VMM's CPU_ON only when the VMM, not KVM, answers it.
        hold = policy is ForwardPolicy.PSCI and any(
            (a := vm.lookup(f)) is not None and a.name == "FWD_TO_USER" for f in _PSCI_CPU_ON
        )
        run = run_guest(
            lab,
            kernel,
            header,
            cpus=cpus,
            psci_policy=policy is ForwardPolicy.PSCI,
            hold_secondaries=hold,
            timeout_s=timeout_s,
            conduit=conduit,
        )
        return _report(run, vm, predicted, probed=bool(raw), cpus=cpus, conduit=conduit)

    workers = max(1, min(len(chosen), jobs or os.cpu_count() or 1))
    if workers == 1:
        reports = [boot(kernel) for kernel in chosen]
    else:
        # Each boot is a QEMU process the thread waits on, so threads are enough.
        with ThreadPoolExecutor(max_workers=workers) as pool:
            reports = list(pool.map(boot, chosen))
    return GuestResult(str(spec_path), True, False, result.diagnostics, tuple(reports))


def _report(
    run: GuestRun,
    vm: KvmVm,
    predicted: tuple[int, int, int],
    *,
    probed: bool,
    cpus: int,
    conduit: str,
) -> GuestReport:
    """One kernel's report from its guest run and the emulator that replays it."""
    calls, mismatches = guest_calls(run, vm)
    online = _count_online(run.cpus_online)
    install = next((" ".join(e.fields) for e in run.events if e.kind == "INSTALL"), "none")
    available, probe_errno, install_mismatches = _install_fields(install, predicted, probed=probed)
    return GuestReport(
        kernel=run.kernel,
        booted=run.booted,
        powered_off=run.exit_reason == "SHUTDOWN",
        cpus=cpus,
        cpus_online=online,
        online=run.cpus_online,
        seconds=round(run.seconds, 2),
        install=install,
        exit_reason=run.exit_reason,
        reasons=tuple(_reasons(run, calls, cpus, online)),
        calls=calls,
        mismatches=(*install_mismatches, *mismatches),
        console_tail=run.guest_console[-15:],
        console=run.guest_console,
        filter_available=available,
        probe_errno=probe_errno,
        trace=guest_trace(run),
        vmm_stderr=run.vmm_stderr,
        conduit=conduit,
    )
