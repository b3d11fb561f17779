"""The exit-handler kprobes: their definitions, and reading their events back into samples.

The event lines below follow the format the lab's 6.1, 6.12 and 7.2 kernels
printed for these probes (6.12 prints ``ret=1`` in decimal, 6.1 ``ret=0x1``).
"""

from __future__ import annotations

from pathlib import Path

from hvcfilter.lab.call_probe import CallSample, VcpuLayout, call_samples, probe_definitions
from hvcfilter.lab.guest import NOPROBE_MARK, _outer_init, _register_probes

VCPU = 0xFFF00000053E0000
LAYOUT = VcpuLayout(regs=256, index=40, esr=1288)
HVC_ESR = 0x5A000000  # EC 0x16 (HVC64), imm 0


def _args(tid: int, a0: int, a1: int = 0, *, conduit: str = "hvc", vcpu: int = VCPU,
          idx: int = 0, esr: int = HVC_ESR) -> str:  # fmt: skip
    return (
        f" guest_vmm-{tid} [000] d.... 5.03: {conduit}_args: (handle_{conduit}+0x0/0x118) "
        f"vcpu={vcpu:#x} a0={a0:#x} a1={a1:#x} a2=0x0 a3=0x0 idx={idx} esr={esr:#x}"
    )


def _ret(tid: int, x0: int, *, conduit: str = "hvc", holder: int = 24, ret: str = "1",
         vcpu: int = VCPU) -> str:  # fmt: skip
    regs = " ".join(
        f"r{n}={vcpu if n == holder else n:#x} v{n}={x0 if n == holder else 0xBAD:#x}"
        for n in range(19, 29)
    )
    return (
        f" guest_vmm-{tid} [001] d.... 5.04: {conduit}_ret: "
        f"(handle_exit+0x68/0x168 <- handle_{conduit}) ret={ret} {regs}"
    )


def _sample(tid: int, line: int, a0: int, x0: int | None, *, conduit: str = "hvc", a1: int = 0,
            imm: int = 0, vcpu: int = 0, handled: int | None = 1) -> CallSample:  # fmt: skip
    return CallSample(tid, line, conduit, (a0, a1, 0, 0), imm, vcpu, handled, x0)


def test_the_definitions_read_the_guest_registers_at_the_btf_offsets() -> None:
    hvc_entry, hvc_ret, smc_entry, smc_ret = probe_definitions(LAYOUT)
    assert hvc_entry == (
        "p:hvcfilter/hvc_args handle_hvc vcpu=%x0:x64 a0=+256(%x0):x64 a1=+264(%x0):x64 "
        "a2=+272(%x0):x64 a3=+280(%x0):x64 idx=+40(%x0):u32 esr=+1288(%x0):x64"
    )
    assert hvc_ret.startswith("r:hvcfilter/hvc_ret handle_hvc ret=$retval r19=%x19:x64 v19=+256")
    assert "r28=%x28:x64 v28=+256(%x28):x64" in hvc_ret

    def to_smc(text: str) -> str:
        return text.replace("/hvc_", "/smc_").replace("handle_hvc", "handle_smc")

    assert (smc_entry, smc_ret) == (to_smc(hvc_entry), to_smc(hvc_ret))


def test_x0_is_read_through_whichever_register_holds_the_vcpu() -> None:
    lines = [
        _args(138, 0x80000000),
        _ret(138, 0x10001, holder=24),
        _args(138, 0x8400000A, a1=0xC4000001),
        _ret(138, 0, holder=19, ret="0x1"),
    ]
    assert call_samples(lines) == (
        _sample(138, 0, 0x80000000, 0x10001),
        _sample(138, 2, 0x8400000A, 0, a1=0xC4000001),
    )


def test_smc_samples_carry_their_conduit_and_the_immediate_from_the_syndrome() -> None:
    lines = [
        _args(138, 0xC2000005, conduit="smc", esr=0x5E000001),  # EC 0x17 (SMC64), imm 1
        _ret(138, 2**64 - 1, conduit="smc"),
        _args(138, 0x84000000),
        _ret(138, 0x10001, conduit="smc"),  # the other conduit's return: not this call's
    ]
    assert call_samples(lines) == (
        _sample(138, 0, 0xC2000005, 2**64 - 1, conduit="smc", imm=1),
        _sample(138, 2, 0x84000000, None, handled=None),
    )


def test_threads_are_paired_separately_and_gaps_are_kept_as_unknown() -> None:
    other = 0xFFF0000009990000
    lines = [
        "# tracer: nop",
        _args(138, 0x84000000),
        _args(139, 0xC4000053, vcpu=other, idx=1),
        "garbage line hvc_ret: (",
        _ret(139, 0, vcpu=other),
        _args(138, 0x84000006),  # the return of 138's first call was missed
        _ret(138, 2),
        _ret(140, 5),  # a return with no entry: dropped
        _args(138, 0x84000008),  # no return at all before the trace ends
    ]
    assert call_samples(lines) == (
        _sample(138, 1, 0x84000000, None, handled=None),
        _sample(139, 2, 0xC4000053, 0, vcpu=1),
        _sample(138, 5, 0x84000006, 2),
        _sample(138, 8, 0x84000008, None, handled=None),
    )


def test_no_register_holding_the_vcpu_leaves_x0_unknown() -> None:
    lines = [_args(138, 0x84000000), _ret(138, 0x10001, holder=99)]
    assert call_samples(lines) == (_sample(138, 0, 0x84000000, None),)


def test_the_lab_derives_the_probes_from_the_image_or_says_why_not(
    tmp_path: Path, vcpu_btf: bytes
) -> None:
    with_btf = tmp_path / "Image"
    with_btf.write_bytes(b"\0" * 64 + vcpu_btf)
    probes, error = _register_probes(with_btf)
    assert error is None and probes == probe_definitions(VcpuLayout(264, 40, 1288))
    without = tmp_path / "Image-nobtf"
    without.write_bytes(b"\0" * 4096)
    probes, error = _register_probes(without)
    assert probes == () and error is not None and "no BTF section" in error


def test_the_lab_init_adds_each_probe_with_a_fallback_marker() -> None:
    script = _outer_init(1, 0, 0, 30, probe_definitions(LAYOUT))
    for definition in probe_definitions(LAYOUT):
        events = "/sys/kernel/tracing/dynamic_events"
        assert f"echo '{definition}' >> {events} 2>/dev/null || echo {NOPROBE_MARK}" in script
    assert "events/hvcfilter/enable" in script
    assert "events/hvcfilter/enable" not in _outer_init(1, 0, 0, 30)
