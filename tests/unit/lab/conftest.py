"""A BTF blob built to the format in the kernel's Documentation/bpf/btf.rst, for the lab's tests."""

from __future__ import annotations

import struct

import pytest

INT, ARRAY, STRUCT, UNION, FWD, TYPEDEF, CONST = 1, 3, 4, 5, 7, 8, 10


class _Blob:
    """A BTF section: types appended in id order, names interned in a string table."""

    def __init__(self) -> None:
        self.types = b""
        self.strings = b"\0"
        self.count = 0

    def name(self, text: str) -> int:
        if not text:
            return 0
        off = len(self.strings)
        self.strings += text.encode() + b"\0"
        return off

    def add(
        self, kind: int, name: str, ref: int, extra: bytes = b"", *, vlen: int = 0,
        kflag: bool = False,
    ) -> int:  # fmt: skip
        info = (kind << 24) | vlen | (int(kflag) << 31)
        self.types += struct.pack("<III", self.name(name), info, ref) + extra
        self.count += 1
        return self.count

    def struct(self, kind: int, name: str, size: int, members: list[tuple[str, int, int]],
               kflag: bool = False) -> int:  # fmt: skip
        extra = b"".join(struct.pack("<III", self.name(n), t, off) for n, t, off in members)
        return self.add(kind, name, size, extra, vlen=len(members), kflag=kflag)

    def section(self) -> bytes:
        header = struct.pack(
            "<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(self.types), len(self.types), len(self.strings)
        )
        return header + self.types + self.strings


def _vcpu_blob() -> bytes:
    """kvm_vcpu -> (anonymous union) -> arch (typedef, const) -> ctxt -> regs.regs, as in Linux."""
    b = _Blob()
    b.add(FWD, "kvm_vcpu", 0)  # a forward declaration first: it has no members and is skipped
    u64 = b.add(INT, "u64", 8, struct.pack("<I", 64))
    u32 = b.add(INT, "u32", 4, struct.pack("<I", 32))
    regs_array = b.add(ARRAY, "", 0, struct.pack("<III", u64, u64, 31))
    pt_regs = b.struct(STRUCT, "user_pt_regs", 272, [("regs", regs_array, 0), ("sp", u64, 1984)])
    ctxt = b.struct(STRUCT, "kvm_cpu_context", 1024, [("regs", pt_regs, 0)])
    fault = b.struct(STRUCT, "kvm_vcpu_fault_info", 32, [("esr_el2", u64, 0)])
    arch = b.struct(
        STRUCT, "kvm_vcpu_arch", 4096,
        [("flags", u64, 0), ("ctxt", ctxt, 64), ("fault", fault, 1032 * 8)],
    )  # fmt: skip
    arch_t = b.add(TYPEDEF, "kvm_vcpu_arch_t", arch)
    arch_c = b.add(CONST, "", arch_t)
    anon = b.struct(UNION, "", 4096, [("arch", arch_c, 0)])
    # kflag: member offsets carry a bit-field size in the top 8 bits.
    b.struct(
        STRUCT, "kvm_vcpu", 8192,
        [
            ("cpu", u64, (3 << 24) | 0),
            ("vcpu_idx", u32, 40 * 8),
            ("", anon, 256 * 8),
            ("mode", u64, (1 << 24) | 8 * 8 + 3),
        ],
        kflag=True,
    )  # fmt: skip
    return b.section()


@pytest.fixture
def vcpu_btf() -> bytes:
    """BTF where ``kvm_vcpu.arch.ctxt.regs.regs`` is at byte 264, ``vcpu_idx`` at 40 and
    ``arch.fault.esr_el2`` at 1288."""
    return _vcpu_blob()
