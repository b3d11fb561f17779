"""Curated probe scenarios: the questions the reference leaves open, asked of a real kernel.

:func:`probe_scenarios` returns a fixed batch (PSCI, TRNG, PV time, KVM vendor
calls, ARCH_FEATURES, system events, PSCI version register values, install
ordering corner cases, AArch32 and T32 calls); :func:`tabulate` renders the
results of one or more :class:`~hvcfilter.lab.runner.LabRun` objects as a
Markdown table with one column per kernel, which is how the lab report's
evidence is produced.  Calls that block the vCPU (CPU_SUSPEND, CPU_OFF) and
calls that end in a system event get scenarios of their own so that they
cannot disturb other answers.
"""

from __future__ import annotations

from collections.abc import Sequence

from hvcfilter.errors import errno_name
from hvcfilter.lab.runner import LabRun
from hvcfilter.lab.scenario import (
    Call,
    CallOutcome,
    ErrnoResult,
    GetFwBitmap,
    Mode,
    RegValue,
    Run,
    RunResult,
    Scenario,
    SetFilter,
    SetFwBitmap,
    SetPsciVersion,
    Step,
    StepResult,
    VmConfig,
)

__all__ = [
    "describe",
    "discovery_scenarios",
    "probe_scenarios",
    "system_suspend_scenarios",
    "tabulate",
]

_PSCI32 = [0x8400_0000 + n for n in range(0x20)]
_PSCI64 = [0xC400_0000 + n for n in range(0x20)]
# PSCI calls that stop or halt the vCPU or end in a system event.
_DISRUPTIVE = {0x01, 0x02, 0x08, 0x09, 0x0E, 0x12, 0x15}
_TRNG = [0x8400_0050, 0x8400_0051, 0x8400_0052, 0x8400_0053, 0xC400_0053]
_ARCH_FEATURE_QUERIES = [
    0x8000_0000, 0x8000_0001, 0x8000_0002, 0x8000_0003, 0x8000_0004, 0x8000_0005,
    0x8000_8000, 0x8000_7FFF, 0x8000_3FFF, 0xC000_0000, 0xC500_0020, 0xC500_0021,
    0x8400_0000, 0x8400_0050, 0x8600_0000, 0x8600_FF01,
]  # fmt: skip


def _queries(mode: Mode) -> list[Call]:
    """Non-disruptive calls answered in the kernel, for one execution state."""
    c: list[Call] = [Call(0x8000_0000, mode=mode)]
    c += [Call(0x8000_0001, x1=q, mode=mode) for q in _ARCH_FEATURE_QUERIES]
    c += [Call(0x8000_0002, x1=0, mode=mode), Call(0x8000_0002, x1=1, mode=mode)]
    c += [Call(0x8000_8000, mode=mode), Call(0x8000_7FFF, mode=mode), Call(0x8000_3FFF, mode=mode)]
    c += [Call(0x8000_8000, conduit="smc", mode=mode), Call(0x8000_0004, mode=mode)]
    # TRNG
    c.append(Call(0x8400_0050, mode=mode))
    feats = [*_TRNG, 0xC400_0050, 0xC400_0051, 0xC400_0052, 0x8400_0054, 0x8400_0000, 0x8000_0000]
    c += [Call(0x8400_0051, x1=f, mode=mode) for f in feats]
    c.append(Call(0x8400_0052, mode=mode))
    c += [Call(0x8400_0053, x1=b, mode=mode) for b in (0, 32, 96, 97)]
    c += [Call(0xC400_0053, x1=b, mode=mode) for b in (0, 64, 192, 193)]
    # PSCI
    c.append(Call(0x8400_0000, mode=mode))
    fq = [*_PSCI32, *_PSCI64, 0x8000_0000, 0x8000_0001, 0x8400_0050,
          0x95C1_BA5E, 0x95C1_BA5F, 0x95C1_BA60, 0x95C1_BA61]  # fmt: skip
    c += [Call(0x8400_000A, x1=f, mode=mode) for f in fq]
    c += [Call(0x8400_0006, mode=mode), Call(0x8400_0007, mode=mode), Call(0xC400_0007, mode=mode)]
    c += [Call(0x8400_0005, x1=0, mode=mode), Call(0xC400_0005, x1=0, mode=mode)]
    for fid in (0x8400_0004, 0xC400_0004):
        for x1, x2 in ((0, 0), (1, 0), (0x1111, 0), (0, 1), (0, 2), (0, 3), (0, 4)):
            c.append(Call(fid, x1=x1, x2=x2, x3=0, mode=mode))
    for fid in (0x8400_0003, 0xC400_0003):
        c += [Call(fid, x1=0, x2=0x4000_0000, x3=0, mode=mode)]
        c += [Call(fid, x1=0x1111, x2=0x4000_0000, x3=0, mode=mode)]
        c += [Call(fid, x1=0x8000_0000, x2=0x4000_0000, x3=0, mode=mode)]
    safe = [n for n in range(0x20) if n not in _DISRUPTIVE | {0x00, 0x03, 0x04, 0x05, 0x06, 0x07}]
    c += [Call(0x8400_0000 + n, x1=0, x2=0, x3=0, mode=mode) for n in safe]
    c += [Call(0xC400_0000 + n, x1=0, x2=0, x3=0, mode=mode) for n in safe]
    # PV time (no stolen-time IPA configured by the driver)
    c += [Call(0xC500_0020, x1=f, mode=mode) for f in (0xC500_0020, 0xC500_0021, 0, 0x8000_0000)]
    c.append(Call(0xC500_0021, mode=mode))
    c.append(Call(0xC500_0000, mode=mode))
    # KVM vendor hypervisor service
    c += [Call(0x8600_0000, mode=mode), Call(0x8600_FF01, mode=mode), Call(0x8600_FF00, mode=mode)]
    c += [Call(0x8600_0001, x1=v, mode=mode) for v in (0, 1, 2, 0xFFFF_FFFF)]
    c += [Call(0xC600_0040, mode=mode), Call(0xC600_0041, mode=mode)]
    return c


def _single(name: str, call: Call, **cfg: object) -> Scenario:
    return Scenario(name, (call, Call(0x8400_0000, mode=call.mode)), VmConfig(**cfg))  # type: ignore[arg-type]


def probe_scenarios() -> list[Scenario]:
    """The fixed probe batch (about 60 scenarios, 700 calls)."""
    out: list[Scenario] = []
    out.append(Scenario("bitmaps-default", tuple(GetFwBitmap(r) for r in range(6))))
    out.append(Scenario("queries-a64", tuple(_queries("a64")), VmConfig(extra_vcpus=1)))
    out.append(Scenario("queries-a32", tuple(_queries("a32")), VmConfig(extra_vcpus=1)))
    out.append(Scenario("queries-t32", tuple(_queries("t32")), VmConfig(extra_vcpus=1)))
    # CPU_ON to a powered-off second vCPU (MPIDR 1), then again (now on / pending).
    out.append(Scenario("cpu-on-secondary", (
        Call(0x8400_0004, x1=1, x2=0, x3=0),
        Call(0xC400_0003, x1=1, x2=0x4000_0000, x3=0),
        Call(0x8400_0004, x1=1, x2=0, x3=0),
        Call(0xC400_0003, x1=1, x2=0x4000_0000, x3=0),
        Call(0xC400_0003, x1=1, x2=0x4000_0001, x3=0),
    ), VmConfig(extra_vcpus=1)))  # fmt: skip
    # Calls that halt, stop or end the VM: one scenario each, then PSCI_VERSION.
    for mode in ("a64", "a32"):
        m: Mode = "a64" if mode == "a64" else "a32"
        for fid, x1, x2, x3 in (
            (0x8400_0001, 0, 0, 0), (0xC400_0001, 0, 0x4000_0000, 0),
            (0x8400_0002, 0, 0, 0), (0x8400_0008, 0, 0, 0), (0x8400_0009, 0, 0, 0),
            (0x8400_0012, 0, 0, 0), (0xC400_0012, 0, 0, 0), (0x8400_0012, 0x8000_0000, 0, 0),
            (0x8400_0012, 1, 0, 0), (0x8400_0015, 0, 0, 0), (0x8400_0015, 1, 0, 0),
            (0x8400_0015, 2, 0, 0), (0xC400_0015, 0, 0, 0), (0xC400_0015, 0, 5, 0),
            (0x8400_000E, 0x4000_0000, 0, 0), (0xC400_000E, 0x4000_0000, 0, 0),
            (0x95C1_BA5E, 0, 0, 0), (0x95C1_BA5F, 0, 0, 0), (0x95C1_BA60, 1, 0x4000_0000, 0),
            (0x95C1_BA61, 0, 0, 0),
        ):  # fmt: skip
            if m == "a32" and fid > 0xFFFF_FFFF:
                continue
            out.append(
                _single(
                    f"event-{mode}-{fid:08x}-{x1:x}-{x2:x}",
                    Call(fid, x1=x1, x2=x2, x3=x3, mode=m),
                    extra_vcpus=1,
                )
            )
    # The PSCI_VERSION register: which values each kernel takes, and what follows.
    for major, minor in ((0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (1, 2), (1, 3),
                         (1, 4), (2, 0)):  # fmt: skip
        steps = (
            SetPsciVersion(major, minor),
            Call(0x8400_0000),
            Call(0x8400_000A, x1=0x8400_0015),
            Call(0x8400_000A, x1=0x8400_0012),
            Call(0x8400_000A, x1=0x8000_0000),
            Call(0x8400_000A, x1=0x8400_000E),
            Call(0x95C1_BA61),
            Call(0x95C1_BA60, x1=1, x2=0x4000_0000, x3=0),
            Call(0x8400_0015, x1=0, x2=0, x3=0),
        )
        out.append(Scenario(f"psci-version-{major}.{minor}", steps, VmConfig(extra_vcpus=1)))
    out.append(Scenario("psci-version-after-run", (
        Run(), SetPsciVersion(1, 0), SetPsciVersion(1, 1), Call(0x8400_0000),
    )))  # fmt: skip
    out.append(Scenario("no-psci-0.2", (
        Call(0x8400_0000), Call(0x8400_000A, x1=0x8400_0000), Call(0x95C1_BA61),
        Call(0x95C1_BA60, x1=1, x2=0x4000_0000, x3=0), Call(0x8000_0000),
    ), VmConfig(psci_0_2=False, extra_vcpus=1)))  # fmt: skip
    # A vCPU without KVM_ARM_VCPU_PSCI_0_2: which PSCI_VERSION values are taken, what answers.
    for ver in ((0, 1), (0, 2), (1, 0)):
        out.append(Scenario(f"no-psci-0.2-set-{ver[0]}.{ver[1]}", (
            SetPsciVersion(*ver), Call(0x8400_0000), Call(0x95C1_BA61),
            Call(0x95C1_BA60, x1=1, x2=0x4000_0000, x3=0), Call(0x8400_0008, x1=0, x2=0, x3=0),
        ), VmConfig(psci_0_2=False, extra_vcpus=1)))  # fmt: skip
    for fid in (0x95C1_BA5E, 0x95C1_BA5F):
        out.append(Scenario(f"no-psci-0.2-{fid:08x}", (
            Call(fid, x1=0, x2=0, x3=0), Call(0x8000_0000),
        ), VmConfig(psci_0_2=False)))  # fmt: skip
    # Is PSCI_VERSION locked by the first run?
    for ver in ((1, 0), (0, 2)):
        out.append(Scenario(f"psci-version-after-run-{ver[0]}.{ver[1]}", (
            Call(0x8400_0000), SetPsciVersion(*ver), Call(0x8400_0000),
        )))  # fmt: skip
    # Registers after in-kernel system events, with markers in x1-x3.
    for fid, x1 in ((0x8400_0008, 0x1111), (0x8400_0009, 0x1111), (0x8400_0012, 0),
                    (0xC400_0012, 0), (0x8400_0015, 0)):  # fmt: skip
        out.append(Scenario(f"event-markers-{fid:08x}", (
            Call(fid, x1=x1, x2=0x2222 if fid != 0x8400_0015 else 0, x3=0x3333),
        )))  # fmt: skip
    # Install corner cases and check ordering.
    bad = bytes([1]) + bytes(14)
    out.append(Scenario("install-before-run", (
        SetFilter(0, 0, 0), SetFilter(0, 0, 1), SetFilter(0, 0, 3), SetFilter(0, 0, 0, bad),
        SetFilter(0x8000_0000, 1, 3), SetFilter(0x8000_0000, 0, 3),
        SetFilter(0x8000_0000, 1, 0, bad), SetFilter(0x8400_0000, 0, 1),
        SetFilter(0xFFFF_FFFF, 2, 1), SetFilter(0xC200_0000, 0x100, 2),
    )))  # fmt: skip
    out.append(Scenario("install-after-run", (
        Run(), SetFilter(0, 0, 0), SetFilter(0xC200_0000, 1, 2), SetFilter(0x8000_0000, 1, 1),
        SetFilter(0xC200_0000, 1, 3), SetFilter(0xC200_0000, 1, 0, bad),
        SetFilter(0xC200_0000, 0, 2),
        SetFilter(0xFFFF_FFFF, 2, 1), SetFwBitmap(0, 1), SetFwBitmap(0, 0), SetFwBitmap(0, 2),
        SetFwBitmap(3, 0), SetFwBitmap(3, 1),
    )))  # fmt: skip
    # Bitmap registers: which values each register takes.
    bm: list[SetFwBitmap | GetFwBitmap] = []
    for reg in range(5):
        for value in (0, 1, 2, 3, 4, 0xFFFF_FFFF_FFFF_FFFF):
            bm += [SetFwBitmap(reg, value), GetFwBitmap(reg)]
    out.append(Scenario("bitmap-values", tuple(bm)))
    out.append(Scenario("kvm-features-bmap2", (
        SetFwBitmap(3, 3), Call(0x8600_0000), Call(0xC600_0040), Call(0xC600_0041),
    )))  # fmt: skip
    # Forwarding from AArch32: flags (SMC bit, 16BIT bit) and PC.
    fwd = (SetFilter(0xC200_0000, 0x100, 2), SetFilter(0x8200_0000, 0x100, 2))
    for mode in ("a32", "t32"):
        m2: Mode = "a32" if mode == "a32" else "t32"
        out.append(Scenario(f"forward-{mode}", (*fwd,
            Call(0x8200_0005, mode=m2), Call(0x8200_0005, conduit="smc", mode=m2),
            Call(0x8200_0005, conduit="smc", imm=1, mode=m2),
            Call(0x8200_0005, imm=0x1234, mode=m2),
            Call(0xC200_0005, mode=m2), Call(0x8000_8000, mode=m2),
        )))  # fmt: skip
    out.append(Scenario("forward-a64", (*fwd,
        Call(0xDEAD_0000_C200_0005), Call(0xC200_0005, conduit="smc"),
        Call(0xC200_0005, conduit="smc", imm=1), Call(0xC200_0005, imm=0xFFFF),
        Call(0x1_8000_0000), Call(0xFFFF_FFFF_8000_8000), Call(0x8000_8000, imm=5),
    )))  # fmt: skip
    return out


def discovery_scenarios() -> list[Scenario]:
    """What KVM's discovery calls answer about calls a filter denies or forwards.

    The premise of HVF307: a discovery call left to KVM answers from what KVM
    implements, not from the filter. PSCI_FEATURES is asked about each PSCI
    call Linux looks up at boot (CPU_SUSPEND, SYSTEM_RESET2, SYSTEM_OFF2) and
    CPU_OFF, TRNG_FEATURES about the TRNG calls, and KVM_FEATURES (a bitmap)
    with the PTP call filtered; with a deny range and with a forward range.
    """
    asked = (0xC400_0001, 0x8400_0002, 0xC400_0012, 0xC400_0015)
    trng = (0x8400_0052, 0x8400_0053, 0xC400_0053)
    ptp = 0x8600_0001
    out: list[Scenario] = []
    for action in (1, 2):
        steps: list[Step] = [SetFilter(fid, 1, action) for fid in (*asked, *trng, ptp)]
        steps += [Call(0x8400_000A, x1=fid) for fid in asked]
        steps += [Call(0x8400_0051, x1=fid) for fid in trng]
        steps.append(Call(0x8600_0000))
        out.append(Scenario(f"discovery-under-filter-{action}", tuple(steps)))
    return out


def system_suspend_scenarios() -> list[Scenario]:
    """PSCI SYSTEM_SUSPEND with ``KVM_CAP_ARM_SYSTEM_SUSPEND`` enabled, and what changes it.

    A batch of its own rather than part of :func:`probe_scenarios`, whose
    captured consoles the tests replay; so is :func:`discovery_scenarios`.

    The reference says only that the call exits with type 5, registers
    untouched, when the capability is on (section 3.7). These ask the
    kernel: PSCI_FEATURES with the capability, the 32-bit ID's x1-x3 from
    AArch64 (high bits set) and from AArch32, PSCI versions without
    SYSTEM_SUSPEND, and filter ranges over it.
    """
    cap = VmConfig(system_suspend=True, extra_vcpus=1)
    features = (Call(0x8400_000A, x1=0x8400_000E), Call(0x8400_000A, x1=0xC400_000E))
    out = [Scenario("suspend-cap-features-a64", (*features, Call(0x8400_0000)), cap)]
    out.append(
        Scenario(
            "suspend-cap-features-a32",
            (Call(0x8400_000A, x1=0x8400_000E, mode="a32"),
             Call(0x8400_000A, x1=0xC400_000E, mode="a32"), Call(0xC400_000E, mode="a32")),
            VmConfig(system_suspend=True, extra_vcpus=1),
        )
    )  # fmt: skip
    high = 0xFFFF_FFFF_0000_0000
    for name, call in (
        ("a64-32", Call(0x8400_000E, x1=high | 0x4000_0000, x2=high | 0x2222, x3=high | 3)),
        ("a64-64", Call(0xC400_000E, x1=high | 0x4000_0000, x2=high | 0x2222, x3=high | 3)),
        ("a64-imm", Call(0xC400_000E, x1=0x4000_0000, imm=7)),
        ("smc-a64", Call(0xC400_000E, x1=0x4000_0000, conduit="smc")),
        ("a32", Call(0x8400_000E, x1=0x4000_0000, mode="a32")),
        ("t32", Call(0x8400_000E, x1=0x4000_0000, mode="t32")),
    ):
        out.append(_single(f"suspend-cap-{name}", call, system_suspend=True, extra_vcpus=1))
    # PSCI 0.2 has no SYSTEM_SUSPEND, capability or not; 1.0, the first that has
    # it, is the positive control.
    for major, minor in ((0, 2), (1, 0)):
        out.append(Scenario(f"suspend-cap-psci-{major}.{minor}", (
            SetPsciVersion(major, minor), Call(0x8400_000A, x1=0xC400_000E),
            Call(0xC400_000E, x1=0x4000_0000), Call(0x8400_0000),
        ), cap))  # fmt: skip
    # A filter decides before PSCI does: forwarded, or denied, capability or not.
    for action in (1, 2):
        out.append(Scenario(f"suspend-cap-filter-{action}", (
            SetFilter(0xC400_000E, 1, action), SetFilter(0x8400_000E, 1, action),
            Call(0x8400_000A, x1=0xC400_000E), Call(0xC400_000E, x1=0x4000_0000),
            Call(0x8400_000E, x1=0x4000_0000), Call(0x8400_0000),
        ), cap))  # fmt: skip
    return out


def describe(step: object, res: StepResult | None) -> str:
    """One short cell describing a step result."""
    if res is None:
        return "-"
    match res:
        case ErrnoResult(e):
            return "0" if e == 0 else errno_name(e)
        case RegValue(e, v):
            return f"{v:#x}" if e == 0 else errno_name(e)
        case RunResult(e, ex):
            return ex if e == 0 else errno_name(e)
        case CallOutcome():
            return _describe_call(step, res)
    return "?"  # pragma: no cover


def _sx(v: int, bits: int) -> str:
    if v >> (bits - 1) & 1 and v >= (1 << bits) - 16:
        return str(v - (1 << bits))
    return f"{v:#x}"


def _describe_call(step: object, r: CallOutcome) -> str:
    bits = 32 if isinstance(step, Call) and step.is_32bit else 64
    x = [_sx(v, bits) for v in (r.x0, r.x1, r.x2, r.x3)]
    regs = f"{x[0]} [{x[1]},{x[2]},{x[3]}]"
    if r.exit == "hypercall":
        s = f"FWD nr={r.nr:#x} fl={r.flags} pc+={int(bool(r.pc_advanced))} {regs}"
    elif r.exit == "system_event":
        ev = f"EVENT t={r.event_type} n={r.event_ndata} d0={r.event_data0 or 0:#x}"
        s = f"{ev} x0@ev={_sx(r.event_x0 or 0, 64)} then {regs}"
    elif r.exit == "none":
        s = regs
    else:
        s = f"{r.exit} err={r.errno} {regs}"
    if r.interrupts:
        s += f" (halted x{r.interrupts})"
    return s


def _describe_step(step: object) -> str:
    match step:
        case Call(x0, x1, x2, x3, conduit, imm, mode):
            imm_s = f"#{imm:x}" if imm else ""
            return f"{mode} {conduit}{imm_s} {x0:#x}({x1:#x},{x2:#x},{x3:#x})"
        case SetFilter(base, nr, action, pad):
            p = f" pad={pad.hex()}" if any(pad) else ""
            return f"filter {base:#x}+{nr:#x} a={action}{p}"
        case SetFwBitmap(reg, value):
            return f"set bmap{reg}={value:#x}"
        case GetFwBitmap(reg):
            return f"get bmap{reg}"
        case SetPsciVersion():
            return f"set PSCI_VERSION {step.text}"
        case Run():
            return "KVM_RUN"
    return type(step).__name__


def tabulate(scenarios: Sequence[Scenario], runs: Sequence[LabRun]) -> str:
    """A Markdown table: one row per step, one column per run (kernel).

    Raises:
        ValueError: a run's results do not belong to ``scenarios``.
    """
    head = "| scenario | step | " + " | ".join(r.release or r.kernel for r in runs) + " |"
    lines = [head, "|" + "---|" * (2 + len(runs))]
    for k, sc in enumerate(scenarios):
        for i, step in enumerate(sc.steps):
            cells = []
            for run in runs:
                res = run.results[k]
                if res.name != sc.name:
                    raise ValueError(f"run {run.kernel} result {k} is {res.name}, not {sc.name}")
                if res.setup_errno:
                    cells.append(f"VM: {errno_name(res.setup_errno)}")
                else:
                    cells.append(describe(step, res.steps[i] if i < len(res.steps) else None))
            lines.append(f"| {sc.name} | {_describe_step(step)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
