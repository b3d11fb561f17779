"""The DTB writer: the spec's header and blocks, read back by the parser, and the guest's tree."""

from __future__ import annotations

import struct

import pytest

from hvcfilter.lab import fdt


def _guest(cpus: int = 2) -> bytes:
    return fdt.guest_tree(
        cpus=cpus,
        ram_base=0x80000000,
        ram_size=0x10000000,
        initrd=(0x88000000, 0x88001000),
        uart=0x9000000,
        gicd=0x8000000,
        gicr=0x80A0000,
        bootargs="console=ttyS0",
    )


def test_header_follows_the_spec() -> None:
    blob = _guest()
    magic, total, off_struct, off_strings, off_rsv, version, last, _boot, size_str, size_struct = (
        struct.unpack_from(">10I", blob)
    )
    assert (magic, total, version, last) == (0xD00DFEED, len(blob), 17, 16)
    assert off_rsv % 8 == 0 and blob[off_rsv : off_rsv + 16] == b"\0" * 16
    assert off_struct == off_rsv + 16 and off_struct % 4 == 0
    assert struct.unpack_from(">I", blob, off_struct)[0] == 1  # FDT_BEGIN_NODE
    assert struct.unpack_from(">I", blob, off_struct + size_struct - 4)[0] == 9  # FDT_END
    assert off_strings == off_struct + size_struct and off_strings + size_str == total


def test_round_trip_keeps_nodes_and_values() -> None:
    root = fdt.Node("", {"#address-cells": 2, "model": "m"})
    child = root.child("a@1", reg=[0, 1], device_type="memory", linux__x=b"")
    child.child("b")
    back = fdt.parse(fdt.build(root))
    assert back.props == {"#address-cells": b"\0\0\0\2", "model": b"m\0"}
    (a,) = back.children
    assert a.name == "a@1" and [c.name for c in a.children] == ["b"]
    assert a.props == {"reg": b"\0\0\0\0\0\0\0\1", "device_type": b"memory\0", "linux,x": b""}


def test_guest_tree_has_what_linux_needs() -> None:
    root = fdt.parse(_guest(cpus=2))
    nodes = {n.name: n for n in root.children}
    assert nodes["memory@80000000"].props["device_type"] == b"memory\0"
    assert nodes["memory@80000000"].props["reg"] == struct.pack(">4I", 0, 0x80000000, 0, 0x10000000)
    cpus = nodes["cpus"].children
    assert [c.name for c in cpus] == ["cpu@0", "cpu@1"]
    assert all(c.props["enable-method"] == b"psci\0" for c in cpus)
    assert nodes["psci"].props["method"] == b"hvc\0"
    chosen = nodes["chosen"].props
    assert chosen["linux,initrd-start"] == struct.pack(">2I", 0, 0x88000000)
    assert chosen["bootargs"] == b"console=ttyS0\0"
    gic = nodes["intc@8000000"].props
    assert gic["compatible"] == b"arm,gic-v3\0" and "interrupt-controller" in gic
    # The redistributor region grows by 128 KiB per vCPU.
    reg = gic["reg"]
    assert isinstance(reg, bytes)
    assert reg[16:] == struct.pack(">4I", 0, 0x80A0000, 0, 0x40000)


def test_parse_refuses_a_bad_magic() -> None:
    blob = bytearray(_guest())
    blob[0] = 0
    with pytest.raises(ValueError, match="magic"):
        fdt.parse(bytes(blob))


def test_the_psci_method_is_the_conduit_asked_for() -> None:
    def method(conduit: str) -> bytes:
        blob = fdt.guest_tree(
            cpus=1, ram_base=0x80000000, ram_size=0x10000000, initrd=(0x88000000, 0x88001000),
            uart=0x9000000, gicd=0x8000000, gicr=0x80A0000, bootargs="", conduit=conduit,
        )  # fmt: skip
        (psci,) = [n for n in fdt.parse(blob).children if n.name == "psci"]
        value = psci.props["method"]
        assert isinstance(value, bytes)
        return value

    assert method("smc") == b"smc\0" and method("hvc") == b"hvc\0"
    with pytest.raises(ValueError, match="hvc or smc"):
        method("svc")
