"""Observing a guest's HVC registers in the lab kernel: what the call passed and what it got back.

The ``kvm_hvc_arm64`` tracepoint gives a call's function ID only. Two kprobe
events give the rest, on every kernel from 6.1 on:

- ``hvcfilter/hvc_args`` at the entry of ``handle_hvc(struct kvm_vcpu *vcpu)``
  (the exit handler every guest HVC goes through) records the vCPU pointer
  (``x0`` by the calling convention) and the guest's x0-x3 read from
  ``vcpu->arch.ctxt.regs.regs``;
- ``hvcfilter/hvc_ret`` at its return records ``handle_hvc``'s result and,
  for each callee-saved register x19-x28, its value and the guest's x0 read
  through it. ``handle_hvc``'s caller keeps the vCPU pointer in one of them,
  but which one is the compiler's choice; :func:`hvc_samples` picks the
  register that holds the pointer the entry event saw, so no register is
  assumed.

The member offset comes from the kernel's own BTF (:mod:`hvcfilter.lab.btf`).
Kretprobes on 6.12 and later could name ``vcpu->arch...`` directly, but 6.1
cannot, and one mechanism everywhere means one thing to trust.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ARGS_EVENT",
    "REGS_PATH",
    "RET_EVENT",
    "HvcSample",
    "hvc_samples",
    "probe_definitions",
]

REGS_PATH = ("kvm_vcpu", "arch.ctxt.regs.regs")
ARGS_EVENT, RET_EVENT = "hvc_args", "hvc_ret"
_GROUP = "hvcfilter"
_CALLEE_SAVED = range(19, 29)

_LINE = re.compile(r"^\s*\S+-(\d+)\s+\[\d+\]\s.*?\s(hvc_args|hvc_ret): \(([^)]*)\)(.*)$")
_FIELD = re.compile(r"(\w+)=(0x[0-9a-fA-F]+|-?\d+)")


def probe_definitions(regs_offset: int) -> tuple[str, str]:
    """The two ``dynamic_events`` lines, for the guest registers at ``regs_offset`` in a vCPU."""
    args = " ".join(f"a{i}=+{regs_offset + 8 * i}(%x0):x64" for i in range(4))
    saved = " ".join(f"r{n}=%x{n}:x64 v{n}=+{regs_offset}(%x{n}):x64" for n in _CALLEE_SAVED)
    return (
        f"p:{_GROUP}/{ARGS_EVENT} handle_hvc vcpu=%x0:x64 {args}",
        f"r:{_GROUP}/{RET_EVENT} handle_hvc ret=$retval {saved}",
    )


@dataclass(frozen=True, slots=True)
class HvcSample:
    """One HVC as the probes saw it on one vCPU thread.

    ``args`` are the guest's x0-x3 when it called; ``handled`` is
    ``handle_hvc``'s result (positive: the guest resumes at once; 0: the
    call left the kernel for the VMM); ``x0`` the guest's x0 when
    ``handle_hvc`` returned, None if no callee-saved register held the vCPU.
    """

    tid: int
    args: tuple[int, int, int, int]
    handled: int | None
    x0: int | None


def _fields(text: str) -> dict[str, int]:
    return {k: int(v, 0) for k, v in _FIELD.findall(text)}


def hvc_samples(trace_lines: Iterable[str]) -> tuple[HvcSample, ...]:
    """Pair each thread's ``hvc_args`` event with the ``hvc_ret`` that follows it.

    An entry whose return was not recorded (a missed kretprobe) gives a
    sample with ``handled`` and ``x0`` None; a return with no entry is dropped.
    """
    pending: dict[int, dict[str, int]] = {}
    out: list[HvcSample] = []

    def flush(tid: int) -> None:
        entry = pending.pop(tid, None)
        if entry is not None:
            out.append(HvcSample(tid, _args(entry), None, None))

    for line in trace_lines:
        m = _LINE.match(line)
        if m is None:
            continue
        tid, event, fields = int(m.group(1)), m.group(2), _fields(m.group(4))
        if event == ARGS_EVENT:
            if "vcpu" in fields and all(f"a{i}" in fields for i in range(4)):
                flush(tid)
                pending[tid] = fields
            continue
        entry = pending.pop(tid, None)
        if entry is None:
            continue
        vcpu = entry["vcpu"]
        x0 = next(
            (fields.get(f"v{n}") for n in _CALLEE_SAVED if fields.get(f"r{n}") == vcpu),
            None,
        )
        out.append(HvcSample(tid, _args(entry), fields.get("ret"), x0))
    for tid in list(pending):
        flush(tid)
    return tuple(out)


def _args(fields: dict[str, int]) -> tuple[int, int, int, int]:
    return (fields["a0"], fields["a1"], fields["a2"], fields["a3"])
