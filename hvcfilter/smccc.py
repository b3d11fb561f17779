"""The SMCCC model: function-ID bit fields, owners, service families and the call catalogue.

Everything here is pure data about the Arm SMC Calling Convention (Arm DEN0028)
as KVM sees it: a function ID is the low 32 bits of the guest's x0 (W0), and
KVM's filter is a flat map over those 32 bits. Kernel-version specific facts
(which ranges KVM reserves, what it answers) live in ``profiles.py``.
"""

# No `from __future__ import annotations`: NamedTuple compiles string annotations at start.

import bisect
import os
from collections.abc import Iterator, Sequence
from enum import IntEnum, StrEnum
from functools import cache
from typing import Literal, NamedTuple, NewType

__all__ = [
    "ARCH_RESERVED_SMC32",
    "ARCH_RESERVED_SMC64",
    "CALL_TYPE_BIT",
    "CONDUITS",
    "CONVENTION_BIT",
    "FUNCTION_ID_MAX",
    "FUNCTION_NUMBER_MASK",
    "MODES",
    "OWNER_MASK",
    "OWNER_SHIFT",
    "RESERVED_BITS_MASK",
    "SERVICES",
    "SVE_HINT_BIT",
    "CallKey",
    "CallType",
    "Catalogue",
    "CatalogueEntry",
    "Conduit",
    "Convention",
    "DecodedId",
    "FunctionId",
    "IdRange",
    "Mode",
    "Owner",
    "Service",
    "catalogue",
    "decode",
    "encode",
    "format_id",
    "format_record_span",
    "owner_name",
    "owner_numbers",
    "owner_ranges",
    "parse_owner",
    "service_ranges",
    "suggest",
]

FunctionId = NewType("FunctionId", int)

# How a guest makes a call: the instruction and the execution state it runs in.
Conduit = Literal["hvc", "smc"]
Mode = Literal["a64", "a32", "t32"]
CONDUITS: tuple[Conduit, ...] = ("hvc", "smc")
MODES: tuple[Mode, ...] = ("a64", "a32", "t32")
# (function ID = W0, conduit, immediate, mode): everything that decides a traced call's fate.
CallKey = tuple[int, Conduit, int, Mode]

FUNCTION_ID_MAX = 0xFFFF_FFFF
# DEN0028 section 2.5, table 2-1: the fields of a function identifier.
CALL_TYPE_BIT = 1 << 31  # 1 = fast call, 0 = yielding call
CONVENTION_BIT = 1 << 30  # 1 = SMC64/HVC64, 0 = SMC32/HVC32
OWNER_SHIFT = 24
OWNER_MASK = 0x3F << OWNER_SHIFT  # owning entity number, bits 29:24
RESERVED_BITS_MASK = 0x00FE_0000  # bits 23:17, must be zero in a fast call
SVE_HINT_BIT = 1 << 16  # SMCCC v1.3: "no live SVE state"; KVM does not strip it
FUNCTION_NUMBER_MASK = 0xFFFF
# Every ID that shares one owner field: function number, hint and reserved bits.
OWNER_SPAN = 0x00FF_FFFF


class CallType(StrEnum):
    """Bit 31 of a function ID."""

    FAST = "fast"
    YIELD = "yield"


class Convention(StrEnum):
    """Bit 30 of a function ID: the register width of the call."""

    SMC32 = "smc32"
    SMC64 = "smc64"


class Owner(IntEnum):
    """Owning entity numbers with a single meaning (DEN0028 table 6-2)."""

    ARCH = 0
    CPU = 1
    SIP = 2
    OEM = 3
    STANDARD = 4
    STANDARD_HYP = 5
    VENDOR_HYP = 6
    VENDOR_EL3 = 7


# Owner names users may write in a spec; each maps to the entity numbers it covers.
_OWNER_NAMES: dict[str, range] = {
    "arch": range(0, 1),
    "cpu": range(1, 2),
    "sip": range(2, 3),
    "oem": range(3, 4),
    "standard": range(4, 5),
    "standard-hyp": range(5, 6),
    "vendor-hyp": range(6, 7),
    "vendor-el3": range(7, 8),
    "trusted-app": range(48, 50),
    "trusted-os": range(50, 64),
}
_OWNER_ALIASES = {
    "arm": "arch",
    "architecture": "arch",
    "std": "standard",
    "standard-secure": "standard",
    "std-hyp": "standard-hyp",
    "hyp": "standard-hyp",
    "vendor": "vendor-hyp",
    "el3": "vendor-el3",
    "tos": "trusted-os",
    "ta": "trusted-app",
}
_OWNER_DISPLAY = {
    0: "Arm Architecture",
    1: "CPU Service",
    2: "SiP Service",
    3: "OEM Service",
    4: "Standard Secure Service",
    5: "Standard Hypervisor Service",
    6: "Vendor Specific Hypervisor Service",
    7: "Vendor Specific EL3 Monitor",
}

# KVM's fixed HANDLE ranges: the Arm Architecture calls in both conventions
# (reference section 2.2; linux arch/arm64/kvm/hypercalls.c).
ARCH_RESERVED_SMC32 = (0x8000_0000, 0x8000_FFFF)
ARCH_RESERVED_SMC64 = (0xC000_0000, 0xC000_FFFF)


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def owner_name(owner: int) -> str:
    """The spec name of an owning entity number, e.g. ``2 -> "sip"``."""
    for name, numbers in _OWNER_NAMES.items():
        if owner in numbers:
            return name
    return "reserved"


def owner_display(owner: int) -> str:
    """The DEN0028 title of an owning entity number, e.g. ``"SiP Service"``."""
    if owner in _OWNER_DISPLAY:
        return _OWNER_DISPLAY[owner]
    if 48 <= owner <= 49:
        return "Trusted Application"
    if 50 <= owner <= 63:
        return "Trusted OS"
    return "reserved for future use"


def parse_owner(value: str | int) -> range:
    """The entity numbers an owner selector names.

    Raises:
        ValueError: the name is unknown (the message suggests the closest) or
            the number is outside 0..63.
    """
    if isinstance(value, int):
        if not 0 <= value <= 63:
            raise ValueError(f"owner number {value} is outside 0..63")
        return range(value, value + 1)
    key = _normalise(value)
    key = _OWNER_ALIASES.get(key, key)
    if key in _OWNER_NAMES:
        return _OWNER_NAMES[key]
    raise ValueError(
        f"unknown owner {value!r}"
        + _did_you_mean(key, [*_OWNER_NAMES, *_OWNER_ALIASES])
        + f"; known owners: {', '.join(_OWNER_NAMES)} or a number 0..63"
    )


def owner_numbers() -> Sequence[str]:
    """The owner names a spec accepts."""
    return tuple(_OWNER_NAMES)


class IdRange(NamedTuple):
    """An inclusive range of function IDs, ``first..last``."""

    first: int
    last: int

    @property
    def size(self) -> int:
        """How many IDs the range holds (up to 2**32)."""
        return self.last - self.first + 1

    def __contains__(self, fid: object) -> bool:
        return isinstance(fid, int) and self.first <= fid <= self.last

    def __str__(self) -> str:
        if self.first == self.last:
            return format_id(self.first)
        return f"{format_id(self.first)}-{format_id(self.last)}"


def format_id(fid: int) -> str:
    """Eight hex digits, the way SMCCC documents write IDs: ``0x84000003``."""
    return f"0x{fid:08X}"


def format_record_span(base: int, nr_functions: int) -> str:
    """The IDs a filter record names, for people: ``0x84000000-0x8400001F``.

    An empty record and one running past 0xFFFFFFFF are said as such: their
    last ID as the kernel computes it (32-bit) would read backwards, or as
    the whole ID space for ``(0, 0)``.
    """
    if nr_functions == 0:
        return f"{format_id(base)} (empty)"
    if base + nr_functions - 1 > FUNCTION_ID_MAX:
        return f"{format_id(base)} + {nr_functions:#x} (past 0xFFFFFFFF)"
    return str(IdRange(base, base + nr_functions - 1))


class DecodedId(NamedTuple):
    """The fields of one 32-bit function ID (DEN0028 section 2.5)."""

    value: int
    call_type: CallType
    convention: Convention
    owner: int
    sve_hint: bool
    reserved_bits: int
    function_number: int

    @property
    def owner_name(self) -> str:
        """The owner's spec name, e.g. ``"sip"``."""
        return owner_name(self.owner)

    @property
    def owner_display(self) -> str:
        """The owner's DEN0028 title."""
        return owner_display(self.owner)

    def problems(self) -> list[str]:
        """Why the ID is not a valid SMCCC function ID; empty when it is."""
        found: list[str] = []
        if self.call_type is CallType.FAST:
            if self.reserved_bits:
                found.append(
                    f"reserved bits 23:17 are {self.reserved_bits:#x}, "
                    "but must be zero in a fast call (DEN0028 2.5)"
                )
        elif 0x2000_0000 <= self.value <= 0x7FFF_FFFF:
            # DEN0028 table 6-1: yielding IDs above the Trusted OS block are reserved.
            found.append(
                "yielding IDs 0x20000000-0x7FFFFFFF are reserved by SMCCC; "
                "OP-TEE (0x32000003) and Hyper-V (0x46000001) use them anyway"
            )
        # The owner field means something only in fast calls (reference 5.4).
        if self.call_type is CallType.FAST and 8 <= self.owner <= 47:
            found.append(f"owner {self.owner} is reserved for future use (DEN0028 6.2)")
        return found


def decode(fid: int) -> DecodedId:
    """Split a 32-bit function ID into its fields.

    Raises:
        ValueError: ``fid`` is not within 0..0xFFFFFFFF.
    """
    if not 0 <= fid <= FUNCTION_ID_MAX:
        raise ValueError(f"function ID {fid:#x} is outside 0..0xFFFFFFFF")
    return DecodedId(
        value=fid,
        call_type=CallType.FAST if fid & CALL_TYPE_BIT else CallType.YIELD,
        convention=Convention.SMC64 if fid & CONVENTION_BIT else Convention.SMC32,
        owner=(fid & OWNER_MASK) >> OWNER_SHIFT,
        sve_hint=bool(fid & SVE_HINT_BIT),
        reserved_bits=(fid & RESERVED_BITS_MASK) >> 17,
        function_number=fid & FUNCTION_NUMBER_MASK,
    )


def encode(
    call_type: CallType,
    convention: Convention,
    owner: int,
    function_number: int,
    *,
    sve_hint: bool = False,
) -> FunctionId:
    """Build a function ID from its fields; the inverse of :func:`decode` for valid IDs.

    Raises:
        ValueError: a field is out of range.
    """
    if not 0 <= owner <= 63:
        raise ValueError(f"owner {owner} is outside 0..63")
    if not 0 <= function_number <= FUNCTION_NUMBER_MASK:
        raise ValueError(f"function number {function_number:#x} is outside 0..0xFFFF")
    fid = (
        (CALL_TYPE_BIT if call_type is CallType.FAST else 0)
        | (CONVENTION_BIT if convention is Convention.SMC64 else 0)
        | (owner << OWNER_SHIFT)
        | (SVE_HINT_BIT if sve_hint else 0)
        | function_number
    )
    return FunctionId(fid)


def owner_ranges(
    owners: range,
    conventions: Sequence[Convention] = (Convention.SMC32, Convention.SMC64),
    call_types: Sequence[CallType] = (CallType.FAST, CallType.YIELD),
) -> list[IdRange]:
    """Every ID whose owner field is in ``owners``, merged into the fewest ranges.

    The span of one owner is all 24 low bits, not only the function number:
    KVM compares the whole of W0, so a hinted (bit 16) or malformed ID of that
    owner must be caught by the same range.
    """
    ranges = [
        IdRange(
            encode(call, conv, owners.start, 0),
            encode(call, conv, owners.stop - 1, 0) | OWNER_SPAN,
        )
        for call in call_types
        for conv in conventions
    ]
    return merge_ranges(ranges)


def merge_ranges(ranges: Sequence[IdRange]) -> list[IdRange]:
    """Sort and coalesce overlapping or adjacent ranges."""
    merged: list[IdRange] = []
    for rng in sorted(ranges):
        if merged and rng.first <= merged[-1].last + 1:
            if rng.last > merged[-1].last:
                merged[-1] = IdRange(merged[-1].first, rng.last)
        else:
            merged.append(rng)
    return merged


class Service(NamedTuple):
    """A service family: an owner and a block of function numbers, in both conventions."""

    name: str
    title: str
    owner: int
    first_number: int
    last_number: int
    source: str
    conventions: tuple[Convention, ...] = (Convention.SMC32, Convention.SMC64)


SERVICES: dict[str, Service] = {
    s.name: s
    for s in (
        Service("psci", "PSCI", 4, 0x00, 0x1F, "DEN0022 PSCI; DEN0028 table 6-4"),
        Service("sdei", "SDEI", 4, 0x20, 0x3F, "DEN0054 SDEI; DEN0028 table 6-4"),
        Service("trng", "TRNG", 4, 0x50, 0x5F, "DEN0098 TRNG; DEN0028 table 6-4"),
        Service("ffa", "FF-A", 4, 0x60, 0xFF, "DEN0077 FF-A; DEN0028 table 6-4"),
        Service("rmi", "Realm Management Interface", 4, 0x150, 0x18F, "DEN0137 RMM"),
        Service("rsi", "Realm Services Interface", 4, 0x190, 0x1AF, "DEN0137 RMM"),
        Service(
            "std-queries",
            "Standard Secure general queries",
            4,
            0xFF00,
            0xFFFF,
            "DEN0028 section 6.3",
        ),
        Service("pv-time", "Paravirtualized time", 5, 0x20, 0x21, "DEN0057 PV time"),
        Service(
            "kvm-vendor",
            "KVM vendor hypervisor calls",
            6,
            0x0000,
            0xFFFF,
            "linux include/linux/arm-smccc.h (ARM_SMCCC_VENDOR_HYP_*)",
        ),
    )
}
_SERVICE_ALIASES = {
    "pvtime": "pv-time",
    "pv": "pv-time",
    "ff-a": "ffa",
    "kvm": "kvm-vendor",
    "vendor-hyp": "kvm-vendor",
    "queries": "std-queries",
}


def parse_service(name: str) -> Service:
    """Find a service family by name.

    Raises:
        ValueError: the name is unknown; the message suggests the closest.
    """
    key = _normalise(name)
    key = _SERVICE_ALIASES.get(key, key)
    if key in SERVICES:
        return SERVICES[key]
    raise ValueError(
        f"unknown service {name!r}"
        + _did_you_mean(key, [*SERVICES, *_SERVICE_ALIASES])
        + f"; known services: {', '.join(SERVICES)}"
    )


def service_ranges(service: Service, conventions: Sequence[Convention]) -> list[IdRange]:
    """The fast-call IDs of a service family in the given conventions."""
    ranges = []
    for conv in conventions:
        base = encode(CallType.FAST, conv, service.owner, 0)
        ranges.append(IdRange(base + service.first_number, base + service.last_number))
    return merge_ranges(ranges)


class CatalogueEntry(NamedTuple):
    """One well-known function ID, with where it is defined."""

    name: str
    function_id: int
    convention: Convention
    call_type: CallType
    origin: str

    @property
    def stem(self) -> str:
        """The name without its ``_32``/``_64`` width suffix: twins share a stem."""
        if self.name.endswith(("_32", "_64")):
            return self.name[:-3]
        return self.name


class Catalogue:
    """Well-known function IDs, searchable by name and by ID or range."""

    def __init__(self, entries: Sequence[CatalogueEntry]) -> None:
        self.entries: tuple[CatalogueEntry, ...] = tuple(
            sorted(entries, key=lambda e: e.function_id)
        )
        self._ids = [e.function_id for e in self.entries]
        self._by_name = {e.name.lower(): e for e in self.entries}
        self._by_id: dict[int, CatalogueEntry] = {}
        for entry in self.entries:
            self._by_id.setdefault(entry.function_id, entry)
        self._by_stem: dict[str, list[CatalogueEntry]] = {}
        for entry in self.entries:
            self._by_stem.setdefault(entry.stem, []).append(entry)

    def __len__(self) -> int:
        return len(self.entries)

    def by_name(self, name: str) -> CatalogueEntry:
        """Look a call up by name, ignoring case.

        Raises:
            KeyError: no such call; the message suggests the closest names.
        """
        entry = self._by_name.get(name.strip().lower())
        if entry is None:
            raise KeyError(
                f"unknown function {name!r}"
                + _did_you_mean(name.strip().lower(), list(self._by_name), upper=True)
            )
        return entry

    def by_id(self, fid: int) -> CatalogueEntry | None:
        """The catalogue entry for an exact ID, if there is one."""
        return self._by_id.get(fid)

    def name_of(self, fid: int) -> str | None:
        """The catalogue name of an exact ID, if there is one."""
        entry = self._by_id.get(fid)
        return entry.name if entry else None

    def in_range(self, first: int, last: int) -> Iterator[CatalogueEntry]:
        """The entries whose ID lies in ``first..last``, in ID order."""
        start = bisect.bisect_left(self._ids, first)
        stop = bisect.bisect_right(self._ids, last)
        return iter(self.entries[start:stop])

    def twins(self, entry: CatalogueEntry) -> list[CatalogueEntry]:
        """The other-width variants of a call (``PSCI_CPU_ON_32`` for ``PSCI_CPU_ON_64``)."""
        return [e for e in self._by_stem.get(entry.stem, []) if e is not entry]

    def label(self, fid: int) -> str:
        """``0x84000003 PSCI_CPU_ON_32``, or the bare hex for an unknown ID."""
        name = self.name_of(fid)
        return f"{format_id(fid)} {name}" if name else format_id(fid)


def _parse_catalogue(text: str) -> list[CatalogueEntry]:
    entries = []
    for line in text.splitlines()[1:]:
        if not line.strip():
            continue
        name, fid, _owner, conv, call, origin = line.split("\t", 5)
        entries.append(
            CatalogueEntry(
                name=name,
                function_id=int(fid, 16),
                convention=Convention.SMC64 if conv == "64" else Convention.SMC32,
                call_type=CallType.FAST if call == "fast" else CallType.YIELD,
                origin=origin,
            )
        )
    return entries


@cache
def catalogue() -> Catalogue:
    """The catalogue shipped as package data (read once per process)."""
    # The file beside this module, as every normal install has it; importlib.resources
    # (zipped packages) costs more start-up than the whole catalogue, so only as a fallback.
    shipped = os.path.join(os.path.dirname(__file__), "data", "smccc-catalogue.tsv")
    if os.path.isfile(shipped):
        with open(shipped, encoding="utf-8") as handle:
            text = handle.read()
    else:
        from importlib import resources

        text = resources.files("hvcfilter").joinpath("data/smccc-catalogue.tsv").read_text("utf-8")
    return Catalogue(_parse_catalogue(text))


def suggest(word: str, candidates: Sequence[str]) -> list[str]:
    """Up to three close matches for a misspelt name."""
    import difflib  # only a misspelling pays for it

    return difflib.get_close_matches(word, candidates, n=3, cutoff=0.6)


def _did_you_mean(word: str, candidates: Sequence[str], *, upper: bool = False) -> str:
    close = suggest(word, candidates)
    if not close:
        return ""
    shown = [c.upper() if upper else c for c in close]
    return f"; did you mean {' or '.join(repr(c) for c in shown)}?"
