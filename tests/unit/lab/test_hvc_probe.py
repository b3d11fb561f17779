"""The handle_hvc kprobes: their definitions, and reading their events back into samples.

The event lines below follow the format the lab's 6.1, 6.12 and 7.2 kernels
printed for these probes (6.12 prints ``ret=1`` in decimal, 6.1 ``ret=0x1``).
"""

from __future__ import annotations

from pathlib import Path

from hvcfilter.lab.guest import NOPROBE_MARK, _outer_init, _register_probes
from hvcfilter.lab.hvc_probe import HvcSample, hvc_samples, probe_definitions

VCPU = 0xFFF00000053E0000


def _args(tid: int, a0: int, a1: int = 0, vcpu: int = VCPU) -> str:
    return (
        f" guest_vmm-{tid} [000] d.... 5.03: hvc_args: (handle_hvc+0x0/0x118) vcpu={vcpu:#x} "
        f"a0={a0:#x} a1={a1:#x} a2=0x0 a3=0x0"
    )


def _ret(tid: int, x0: int, *, holder: int = 24, ret: str = "1", vcpu: int = VCPU) -> str:
    regs = " ".join(
        f"r{n}={vcpu if n == holder else n:#x} v{n}={x0 if n == holder else 0xBAD:#x}"
        for n in range(19, 29)
    )
    return f" guest_vmm-{tid} [001] d.... 5.04: hvc_ret: (handle_exit+0x68/0x168 <- handle_hvc) ret={ret} {regs}"  # noqa: E501


def test_the_definitions_read_the_guest_registers_at_the_btf_offset() -> None:
    entry, ret = probe_definitions(256)
    assert entry == (
        "p:hvcfilter/hvc_args handle_hvc vcpu=%x0:x64 a0=+256(%x0):x64 a1=+264(%x0):x64 "
        "a2=+272(%x0):x64 a3=+280(%x0):x64"
    )
    assert ret.startswith("r:hvcfilter/hvc_ret handle_hvc ret=$retval r19=%x19:x64 v19=+256(%x19)")
    assert "r28=%x28:x64 v28=+256(%x28):x64" in ret


def test_x0_is_read_through_whichever_register_holds_the_vcpu() -> None:
    lines = [
        _args(138, 0x80000000),
        _ret(138, 0x10001, holder=24),
        _args(138, 0x8400000A, a1=0xC4000001),
        _ret(138, 0, holder=19, ret="0x1"),
    ]
    assert hvc_samples(lines) == (
        HvcSample(138, (0x80000000, 0, 0, 0), 1, 0x10001),
        HvcSample(138, (0x8400000A, 0xC4000001, 0, 0), 1, 0),
    )


def test_threads_are_paired_separately_and_gaps_are_kept_as_unknown() -> None:
    other = 0xFFF0000009990000
    lines = [
        "# tracer: nop",
        _args(138, 0x84000000),
        _args(139, 0xC4000053, vcpu=other),
        "garbage line hvc_ret: (",
        _ret(139, 0, vcpu=other),
        _args(138, 0x84000006),  # the return of 138's first call was missed
        _ret(138, 2),
        _ret(140, 5),  # a return with no entry: dropped
        _args(138, 0x84000008),  # no return at all before the trace ends
    ]
    samples = hvc_samples(lines)
    by_tid = {tid: [s for s in samples if s.tid == tid] for tid in (138, 139)}
    assert by_tid[138] == [
        HvcSample(138, (0x84000000, 0, 0, 0), None, None),
        HvcSample(138, (0x84000006, 0, 0, 0), 1, 2),
        HvcSample(138, (0x84000008, 0, 0, 0), None, None),
    ]
    assert by_tid[139] == [HvcSample(139, (0xC4000053, 0, 0, 0), 1, 0)]
    assert len(samples) == 4


def test_no_register_holding_the_vcpu_leaves_x0_unknown() -> None:
    lines = [_args(138, 0x84000000), _ret(138, 0x10001, holder=99)]
    assert hvc_samples(lines) == (HvcSample(138, (0x84000000, 0, 0, 0), 1, None),)


def test_the_lab_derives_the_probes_from_the_image_or_says_why_not(
    tmp_path: Path, vcpu_btf: bytes
) -> None:
    with_btf = tmp_path / "Image"
    with_btf.write_bytes(b"\0" * 64 + vcpu_btf)
    probes, error = _register_probes(with_btf)
    assert error is None and probes == probe_definitions(256 + 8)
    without = tmp_path / "Image-nobtf"
    without.write_bytes(b"\0" * 4096)
    probes, error = _register_probes(without)
    assert probes == () and error is not None and "no BTF section" in error


def test_the_lab_init_adds_each_probe_with_a_fallback_marker() -> None:
    script = _outer_init(1, 0, 0, 30, probe_definitions(256))
    for definition in probe_definitions(256):
        events = "/sys/kernel/tracing/dynamic_events"
        assert f"echo '{definition}' >> {events} 2>/dev/null || echo {NOPROBE_MARK}" in script
    assert "events/hvcfilter/enable" in script
    assert "events/hvcfilter/enable" not in _outer_init(1, 0, 0, 30)
