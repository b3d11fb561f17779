"""A small flattened-device-tree (DTB) writer, and the lab guest's device tree.

The format is the Devicetree Specification's (chapter 5): a 40-byte header
with magic ``0xd00dfeed``, a memory-reservation block ended by a zero entry,
a structure block of big-endian tokens (BEGIN_NODE, PROP, END_NODE, END) and a
strings block of NUL-terminated property names. :func:`parse` reads one back
so the writer is tested without ``dtc``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

__all__ = ["FDT_MAGIC", "Node", "build", "guest_tree", "parse"]

FDT_MAGIC = 0xD00DFEED
_HEADER = struct.Struct(">10I")  # magic totalsize off_struct off_strings off_rsvmap version
# last_comp_version boot_cpuid_phys size_strings size_struct
_BEGIN_NODE, _END_NODE, _PROP, _END = 1, 2, 3, 9
_VERSION, _LAST_COMPAT = 17, 16

PropValue = bytes | str | int | list[int]


@dataclass
class Node:
    """One node: a name, properties in order, and child nodes in order."""

    name: str
    props: dict[str, PropValue] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)

    def child(self, name: str, **props: PropValue) -> Node:
        """Append and return a child named ``name`` with ``props``.

        In keys, ``__`` becomes ``,`` and ``_`` becomes ``-``, except in
        ``device_type``, the one standard name with an underscore.
        """
        node = Node(name, {_prop_name(k): v for k, v in props.items()})
        self.children.append(node)
        return node


def _prop_name(key: str) -> str:
    return key if key == "device_type" else key.replace("__", ",").replace("_", "-")


def _encode(value: PropValue) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode() + b"\0"
    if isinstance(value, int):
        return struct.pack(">I", value)
    return b"".join(struct.pack(">I", v) for v in value)


def build(root: Node) -> bytes:
    """The DTB of the tree under ``root`` (whose name should be empty)."""
    strings = bytearray()
    offsets: dict[str, int] = {}
    body = bytearray()

    def name_off(name: str) -> int:
        if name not in offsets:
            offsets[name] = len(strings)
            strings.extend(name.encode() + b"\0")
        return offsets[name]

    def emit(node: Node) -> None:
        body.extend(struct.pack(">I", _BEGIN_NODE))
        raw = node.name.encode() + b"\0"
        body.extend(raw + b"\0" * (-len(raw) % 4))
        for key, value in node.props.items():
            data = _encode(value)
            body.extend(struct.pack(">III", _PROP, len(data), name_off(key)))
            body.extend(data + b"\0" * (-len(data) % 4))
        for ch in node.children:
            emit(ch)
        body.extend(struct.pack(">I", _END_NODE))

    emit(root)
    body.extend(struct.pack(">I", _END))
    rsv = b"\0" * 16
    off_rsv = _HEADER.size + (-_HEADER.size % 8)
    off_struct = off_rsv + len(rsv)
    off_strings = off_struct + len(body)
    total = off_strings + len(strings)
    header = _HEADER.pack(
        FDT_MAGIC,
        total,
        off_struct,
        off_strings,
        off_rsv,
        _VERSION,
        _LAST_COMPAT,
        0,
        len(strings),
        len(body),
    )
    return header + b"\0" * (off_rsv - _HEADER.size) + rsv + bytes(body) + bytes(strings)


def parse(blob: bytes) -> Node:
    """Read a DTB back into nodes (property values as raw bytes).

    Raises:
        ValueError: the blob is not a well-formed version-17 DTB.
    """
    if len(blob) < _HEADER.size:
        raise ValueError("DTB shorter than its header")
    magic, total, off_struct, off_strings, _rsv, _ver, _lc, _boot, size_str, size_struct = (
        _HEADER.unpack_from(blob)
    )
    if magic != FDT_MAGIC or total != len(blob):
        raise ValueError("bad DTB magic or total size")
    strings = blob[off_strings : off_strings + size_str]
    pos, end = off_struct, off_struct + size_struct
    stack: list[Node] = []
    root: Node | None = None
    while pos < end:
        (tok,) = struct.unpack_from(">I", blob, pos)
        pos += 4
        if tok == _BEGIN_NODE:
            nul = blob.index(b"\0", pos)
            node = Node(blob[pos:nul].decode())
            pos = (nul + 4) & ~3
            if stack:
                stack[-1].children.append(node)
            else:
                root = node
            stack.append(node)
        elif tok == _PROP:
            length, nameoff = struct.unpack_from(">II", blob, pos)
            pos += 8
            key = strings[nameoff : strings.index(b"\0", nameoff)].decode()
            stack[-1].props[key] = blob[pos : pos + length]
            pos += (length + 3) & ~3
        elif tok == _END_NODE:
            stack.pop()
        elif tok == _END:
            break
        else:
            raise ValueError(f"unknown DTB token {tok:#x} at {pos - 4:#x}")
    if root is None or stack:
        raise ValueError("DTB structure block is not a closed tree")
    return root


def _cells(value: int) -> list[int]:
    return [value >> 32, value & 0xFFFFFFFF]


def guest_tree(
    *,
    cpus: int,
    ram_base: int,
    ram_size: int,
    initrd: tuple[int, int],
    uart: int,
    gicd: int,
    gicr: int,
    bootargs: str,
    conduit: str = "hvc",
) -> bytes:
    """The lab guest's DTB: memory, cpus with PSCI, a psci node, GICv3, timer, 16550 UART.

    ``conduit`` is the psci node's ``method``, ``hvc`` or ``smc``; Linux makes
    every SMCCC call, not only PSCI, through the conduit PSCI names.
    """
    if conduit not in ("hvc", "smc"):
        raise ValueError(f"conduit must be hvc or smc, not {conduit!r}")
    gic_phandle = 1
    root = Node(
        "",
        {
            "#address-cells": 2,
            "#size-cells": 2,
            "compatible": "linux,dummy-virt",
            "interrupt-parent": gic_phandle,
            "model": "hvcfilter-lab-guest",
        },
    )
    root.child(
        "chosen",
        bootargs=bootargs,
        stdout_path=f"/uart@{uart:x}",
        linux__initrd_start=_cells(initrd[0]),
        linux__initrd_end=_cells(initrd[1]),
    )
    root.child(
        f"memory@{ram_base:x}", device_type="memory", reg=[*_cells(ram_base), *_cells(ram_size)]
    )
    cpu_node = root.child("cpus", **{"#address-cells": 1, "#size-cells": 0})
    for i in range(cpus):
        cpu_node.child(
            f"cpu@{i}", device_type="cpu", compatible="arm,armv8", reg=i, enable_method="psci"
        )
    root.child("psci", compatible=b"arm,psci-1.0\0arm,psci-0.2\0arm,psci\0", method=conduit)
    root.child(
        f"intc@{gicd:x}",
        compatible="arm,gic-v3",
        interrupt_controller=b"",
        **{"#interrupt-cells": 3, "#address-cells": 2, "#size-cells": 2},
        reg=[*_cells(gicd), *_cells(0x10000), *_cells(gicr), *_cells(0x20000 * cpus)],
        phandle=gic_phandle,
    )
    # PPIs 13, 14, 11, 10 (secure, non-secure, virtual, hypervisor), level-high: 4.
    root.child(
        "timer",
        compatible="arm,armv8-timer",
        always_on=b"",
        interrupts=[1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4],
    )
    root.child(
        f"uart@{uart:x}",
        compatible="ns16550a",
        reg=[*_cells(uart), *_cells(8)],
        clock_frequency=1843200,
    )
    return build(root)
