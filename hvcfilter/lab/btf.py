"""Where a kernel keeps a struct member, read from the BTF inside its own Image.

The lab reads a guest's registers out of ``struct kvm_vcpu`` with kprobe
fetch arguments (``+OFFSET(%xN)``), which need byte offsets that change with
every kernel build. Debian builds with ``CONFIG_DEBUG_INFO_BTF``, and the
``.BTF`` section is part of the loaded image, so the uncompressed ``Image``
the lab boots carries the type information itself: :func:`member_offset`
finds the section by its header and walks a dotted member path, so an offset
is never typed in by hand. The format is the kernel's
``Documentation/bpf/btf.rst``; only what a member lookup needs is decoded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["BtfError", "BtfTypes", "member_offset"]

_MAGIC = b"\x9f\xeb\x01"  # 0xeB9F little-endian, then version 1
_HEADER = struct.Struct("<HBBIIIII")  # magic, version, flags, hdr_len, type/str off/len
_TYPE = struct.Struct("<III")  # name_off, info, size_or_type
_MEMBER = struct.Struct("<III")  # name_off, type, offset

_STRUCT, _UNION = 4, 5
# Kinds that only qualify or rename another type: typedef, volatile, const,
# restrict, type_tag. A member lookup looks through them.
_QUALIFIERS = frozenset({8, 9, 10, 11, 18})
# Bytes of kind-specific data after the 12-byte common header, per kind; the
# kinds with a list of vlen entries are sized separately.
_FIXED_EXTRA = {1: 4, 3: 12, 14: 4, 17: 4} | dict.fromkeys((2, 7, 8, 9, 10, 11, 12, 16, 18), 0)
_PER_ENTRY = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}


class BtfError(ValueError):
    """No usable BTF, or the member path is not in it."""


@dataclass(frozen=True, slots=True)
class _Type:
    kind: int
    name: int
    ref: int  # size for structs, referenced type for qualifiers
    kflag: bool
    members: tuple[tuple[int, int, int], ...]


class BtfTypes:
    """The types of one BTF blob, indexed by their BTF id (1-based)."""

    def __init__(self, data: bytes) -> None:
        start = data.find(_MAGIC)
        while start >= 0:
            if len(data) - start >= _HEADER.size and _HEADER.unpack_from(data, start)[3] == 24:
                break
            start = data.find(_MAGIC, start + 1)
        if start < 0:
            raise BtfError("no BTF section in the image (a kernel built without DEBUG_INFO_BTF?)")
        _m, _v, _f, hdr_len, type_off, type_len, str_off, str_len = _HEADER.unpack_from(data, start)
        base = start + hdr_len
        if base + max(type_off + type_len, str_off + str_len) > len(data):
            raise BtfError("the BTF section is truncated")
        self._strings = data[base + str_off : base + str_off + str_len]
        self._types: list[_Type | None] = [None]
        blob = memoryview(data)[base + type_off : base + type_off + type_len]
        pos = 0
        while pos < len(blob):
            name, info, ref = _TYPE.unpack_from(blob, pos)
            pos += _TYPE.size
            kind, vlen, kflag = (info >> 24) & 0x1F, info & 0xFFFF, bool(info >> 31)
            members: tuple[tuple[int, int, int], ...] = ()
            if kind in (_STRUCT, _UNION):
                members = tuple(_MEMBER.iter_unpack(blob[pos : pos + vlen * _MEMBER.size]))
            if kind in _PER_ENTRY:
                pos += vlen * _PER_ENTRY[kind]
            elif kind in _FIXED_EXTRA:
                pos += _FIXED_EXTRA[kind]
            else:
                raise BtfError(f"unknown BTF kind {kind} at type {len(self._types)}")
            self._types.append(_Type(kind, name, ref, kflag, members))

    def _name(self, offset: int) -> str:
        end = self._strings.find(b"\0", offset)
        return self._strings[offset : end if end >= 0 else None].decode("utf-8", "replace")

    def _resolve(self, type_id: int) -> _Type:
        t = self._types[type_id]
        while t is not None and t.kind in _QUALIFIERS:
            t = self._types[t.ref]
        if t is None:
            raise BtfError(f"BTF type {type_id} is void")
        return t

    def struct(self, name: str) -> _Type:
        """The complete (sized) struct called ``name``."""
        for t in self._types:
            if t is not None and t.kind == _STRUCT and t.ref > 0 and self._name(t.name) == name:
                return t
        raise BtfError(f"struct {name} is not in the BTF")

    def _member(self, owner: _Type, field: str) -> tuple[_Type, int] | None:
        """``field``'s type and bit offset in ``owner``, looking into anonymous members."""
        for name_off, type_id, raw in owner.members:
            bits = raw & 0xFFFFFF if owner.kflag else raw
            if name_off and self._name(name_off) == field:
                return self._resolve(type_id), bits
            if not name_off:
                inner = self._resolve(type_id)
                if inner.kind in (_STRUCT, _UNION):
                    found = self._member(inner, field)
                    if found is not None:
                        return found[0], bits + found[1]
        return None

    def offset(self, struct_name: str, path: str) -> int:
        """The byte offset of the dotted member ``path`` inside ``struct struct_name``."""
        current, bits = self.struct(struct_name), 0
        for field in path.split("."):
            if current.kind not in (_STRUCT, _UNION):
                raise BtfError(f"{struct_name}.{path}: {field!r} is inside a non-struct member")
            found = self._member(current, field)
            if found is None:
                raise BtfError(f"{struct_name}.{path}: no member {field!r}")
            current, bits = found[0], bits + found[1]
        if bits % 8:
            raise BtfError(f"{struct_name}.{path} is a bit-field")
        return bits // 8


def member_offset(image: bytes, struct_name: str, path: str) -> int:
    """The byte offset of ``struct_name.path`` per the BTF embedded in a kernel ``image``.

    Raises:
        BtfError: the image has no BTF, or the struct or a member is missing.
    """
    return BtfTypes(image).offset(struct_name, path)
