"""Observing a guest's SMCCC registers in the lab kernel: what each call passed and got back.

The ``kvm_hvc_arm64`` tracepoint gives an HVC's function ID only, and SMCs
have no tracepoint at all. Kprobe events on the two exit handlers every
guest call goes through, ``handle_hvc`` and ``handle_smc`` (both
``int (struct kvm_vcpu *vcpu)``), give the rest, on every kernel from 6.1 on:

- at entry (``hvc_args``, ``smc_args``): the vCPU pointer (``x0`` by the
  calling convention), the vCPU's index in its VM (``vcpu->vcpu_idx``), the
  exception syndrome (``vcpu->arch.fault.esr_el2``, whose low 16 bits are the
  instruction's immediate) and the guest's x0-x3 from
  ``vcpu->arch.ctxt.regs.regs``;
- at return (``hvc_ret``, ``smc_ret``): the handler's result and, for each
  callee-saved register x19-x28, its value and the guest's x0 read through
  it. The handler's caller keeps the vCPU pointer in one of them, but which
  one is the compiler's choice; :func:`call_samples` picks the register that
  holds the pointer the entry event saw, so no register is assumed.

The member offsets come from the kernel's own BTF (:mod:`hvcfilter.lab.btf`).
Kretprobes on 6.12 and later could name ``vcpu->arch...`` directly, but 6.1
cannot, and one mechanism everywhere means one thing to trust.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "VCPU_MEMBERS",
    "VCPU_STRUCT",
    "CallSample",
    "VcpuLayout",
    "call_samples",
    "probe_definitions",
]

VCPU_STRUCT = "kvm_vcpu"


@dataclass(frozen=True, slots=True)
class VcpuLayout:
    """Byte offsets in ``struct kvm_vcpu`` of what the probes read."""

    regs: int  # arch.ctxt.regs.regs: the guest's x0-x30
    index: int  # vcpu_idx: the vCPU's index in its VM (u32)
    esr: int  # arch.fault.esr_el2: the trapped instruction's syndrome


# VcpuLayout's fields, as member paths in struct kvm_vcpu.
VCPU_MEMBERS = ("arch.ctxt.regs.regs", "vcpu_idx", "arch.fault.esr_el2")
_GROUP = "hvcfilter"
_CALLEE_SAVED = range(19, 29)
_CONDUITS = ("hvc", "smc")

_LINE = re.compile(r"^\s*\S+-(\d+)\s+\[\d+\]\s.*?\s(hvc|smc)_(args|ret): \(([^)]*)\)(.*)$")
_FIELD = re.compile(r"(\w+)=(0x[0-9a-fA-F]+|-?\d+)")


def probe_definitions(layout: VcpuLayout) -> tuple[str, ...]:
    """The ``dynamic_events`` lines: an entry and a return probe per conduit's exit handler."""
    regs = layout.regs
    entry = " ".join(f"a{i}=+{regs + 8 * i}(%x0):x64" for i in range(4))
    entry += f" idx=+{layout.index}(%x0):u32 esr=+{layout.esr}(%x0):x64"
    saved = " ".join(f"r{n}=%x{n}:x64 v{n}=+{regs}(%x{n}):x64" for n in _CALLEE_SAVED)
    out: list[str] = []
    for conduit in _CONDUITS:
        out.append(f"p:{_GROUP}/{conduit}_args handle_{conduit} vcpu=%x0:x64 {entry}")
        out.append(f"r:{_GROUP}/{conduit}_ret handle_{conduit} ret=$retval {saved}")
    return tuple(out)


@dataclass(frozen=True, slots=True)
class CallSample:
    """One guest HVC or SMC as the probes saw it on one vCPU thread.

    ``args`` are the guest's x0-x3 when it called; ``imm`` the instruction's
    immediate; ``vcpu`` the vCPU's index in its VM; ``handled`` the exit
    handler's result (positive: the guest resumes at once; 0: the call left
    the kernel for the VMM); ``x0`` the guest's x0 when the handler
    returned, None if no callee-saved register held the vCPU. ``handled``
    and ``x0`` are None when the return was not recorded.
    """

    tid: int
    line: int  # the entry event's line in the trace, 0-based
    conduit: str
    args: tuple[int, int, int, int]
    imm: int | None
    vcpu: int | None
    handled: int | None
    x0: int | None


def _fields(text: str) -> dict[str, int]:
    return {k: int(v, 0) for k, v in _FIELD.findall(text)}


def _sample(
    tid: int, line: int, conduit: str, entry: dict[str, int], ret: dict[str, int]
) -> CallSample:
    vcpu = entry["vcpu"]
    x0 = next((ret.get(f"v{n}") for n in _CALLEE_SAVED if ret.get(f"r{n}") == vcpu), None)
    esr = entry.get("esr")
    return CallSample(
        tid=tid,
        line=line,
        conduit=conduit,
        args=(entry["a0"], entry["a1"], entry["a2"], entry["a3"]),
        imm=esr & 0xFFFF if esr is not None else None,
        vcpu=entry.get("idx"),
        handled=ret.get("ret"),
        x0=x0,
    )


def call_samples(trace_lines: Iterable[str]) -> tuple[CallSample, ...]:
    """Pair each thread's entry event with the return event that follows it, in trace order.

    A thread runs one exit handler at a time, so an entry pairs with the next
    return on its thread. An entry whose return was not recorded (a missed
    kretprobe) gives a sample with ``handled`` and ``x0`` None; a return with
    no entry, or of the other conduit, is dropped.
    """
    pending: dict[int, tuple[str, dict[str, int], int]] = {}
    done: list[CallSample] = []

    def flush(tid: int) -> None:
        held = pending.pop(tid, None)
        if held is not None:
            done.append(_sample(tid, held[2], held[0], held[1], {}))

    for position, line in enumerate(trace_lines):
        m = _LINE.match(line)
        if m is None:
            continue
        tid, conduit, kind, fields = int(m.group(1)), m.group(2), m.group(3), _fields(m.group(5))
        if kind == "args":
            if "vcpu" in fields and all(f"a{i}" in fields for i in range(4)):
                flush(tid)
                pending[tid] = (conduit, fields, position)
            continue
        held = pending.get(tid)
        if held is None or held[0] != conduit:
            continue
        del pending[tid]
        done.append(_sample(tid, held[2], conduit, held[1], fields))
    for tid in list(pending):
        flush(tid)
    return tuple(sorted(done, key=lambda sample: sample.line))
