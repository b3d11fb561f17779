"""Struct member offsets from BTF, on blobs built here to the format in the kernel's btf.rst."""

from __future__ import annotations

import pytest

from hvcfilter.lab.btf import BtfError, member_offset


def test_the_offset_walks_through_anonymous_members_typedefs_and_consts(vcpu_btf: bytes) -> None:
    image = b"\x9f\xeb\x01\x00junk that looks like a header" + vcpu_btf + b"rest of the image"
    assert member_offset(image, "kvm_vcpu", "arch.ctxt.regs.regs") == 256 + 8
    assert member_offset(image, "kvm_vcpu", "arch.ctxt.regs.sp") == 256 + 8 + 248
    assert member_offset(image, "kvm_vcpu", "cpu") == 0
    assert member_offset(image, "kvm_vcpu", "vcpu_idx") == 40


def test_missing_struct_member_and_bitfield_are_errors_that_say_which(vcpu_btf: bytes) -> None:
    image = vcpu_btf
    with pytest.raises(BtfError, match="struct kvm_vm is not in the BTF"):
        member_offset(image, "kvm_vm", "arch")
    with pytest.raises(BtfError, match="no member 'ctx'"):
        member_offset(image, "kvm_vcpu", "arch.ctx.regs")
    with pytest.raises(BtfError, match="non-struct"):
        member_offset(image, "kvm_vcpu", "cpu.low")
    with pytest.raises(BtfError, match="bit-field"):
        member_offset(image, "kvm_vcpu", "mode")


def test_an_image_without_btf_or_with_a_truncated_one_is_refused(vcpu_btf: bytes) -> None:
    with pytest.raises(BtfError, match="no BTF section"):
        member_offset(b"\0" * 4096, "kvm_vcpu", "arch")
    with pytest.raises(BtfError, match="truncated"):
        member_offset(vcpu_btf[:-10], "kvm_vcpu", "arch")
