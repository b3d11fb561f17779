"""Payloads: the kernel's own ``struct kvm_smccc_filter`` records, encoded, decoded and validated.

A payload is nothing but records of 24 bytes, one per ``KVM_SET_DEVICE_ATTR``
call, in the order a VMM issues them: no header and no container of our own
(reference section 1.2). :func:`encode` and :func:`decode` are exact inverses
for well-formed records; :func:`validate` reports *every* problem in a
payload as an ``HVF4xx`` diagnostic with the record index and byte offset,
including the ones that only show when the records are installed in order
(an overlap with an earlier record or with a reserved range gives EEXIST),
judged by the shared install model of :mod:`hvcfilter.kernel.filter` and the
profile's rules.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from typing import Literal, NamedTuple

from hvcfilter.diagnostics import Diagnostic, Location, Severity
from hvcfilter.errors import PayloadError, errno_name
from hvcfilter.kernel.abi import PAD_SIZE, RECORD, RECORD_BE, RECORD_SIZE
from hvcfilter.kernel.filter import RESERVED, RangeTree
from hvcfilter.kernel.filter import install as install_ranges
from hvcfilter.kernel.profiles import KernelProfile, get_profile
from hvcfilter.smccc import FUNCTION_ID_MAX, IdRange, format_id, format_record_span

__all__ = [
    "ACTION_COUNT",
    "PAD_SIZE",
    "PAYLOAD_RULES",
    "RECORD",
    "RECORD_BE",
    "RECORD_SIZE",
    "ByteOrder",
    "PayloadRule",
    "Record",
    "RecordProblem",
    "decode",
    "encode",
    "from_hex_text",
    "install",
    "record_problems",
    "validate",
]

ByteOrder = Literal["little", "big"]

# The newest kernel's NR_SMCCC_FILTER_ACTIONS, for checks without a profile
# (decode, Record.is_well_formed); an action byte >= this gives EINVAL.
ACTION_COUNT = get_profile(None).filter_actions
_ZERO_PAD = bytes(PAD_SIZE)
# Byte offsets of the fields inside a record, for diagnostics.
_OFF_NR = 4
_OFF_ACTION = 8
_OFF_PAD = 9


def _layout(byte_order: ByteOrder) -> struct.Struct:
    if byte_order == "little":
        return RECORD
    if byte_order == "big":
        return RECORD_BE
    raise PayloadError(f"unknown byte order {byte_order!r}; use 'little' or 'big'")


class Record(NamedTuple):
    """One ``struct kvm_smccc_filter`` with its raw field values, valid or not.

    ``action`` is the raw byte (0..255) and ``pad`` the raw 15 bytes, so that a
    malformed record read from a file survives a decode/encode round trip.
    """

    base: int
    nr_functions: int
    action: int
    pad: bytes = _ZERO_PAD

    @property
    def end32(self) -> int:
        """The last ID as the kernel computes it: ``(base + nr_functions - 1) mod 2**32``."""
        return (self.base + self.nr_functions - 1) & FUNCTION_ID_MAX

    @property
    def wraps(self) -> bool:
        """The range is empty or runs past 0xFFFFFFFF (the kernel's EINVAL test, and nr = 0)."""
        return self.nr_functions == 0 or self.base + self.nr_functions - 1 > FUNCTION_ID_MAX

    @property
    def is_well_formed(self) -> bool:
        """Every field passes the kernel's validation (rows 4 and 5 of section 2.1)."""
        return self.pad == _ZERO_PAD and self.action < ACTION_COUNT and not self.wraps

    def __str__(self) -> str:
        return format_record_span(self.base, self.nr_functions)


def from_hex_text(data: bytes) -> bytes | None:
    """The payload that ``compile --format hex`` text spells, one record per line; else None.

    So that ``decompile vm.hex``, ``diff vm.hex vm.toml`` and ``--payload
    vm.hex`` take the hex form back as ``xxd -r -p`` would: it was "text, not
    a binary payload", or a TOML syntax error. No line of 48 hex digits is
    TOML (a bare key needs ``=``), so no spec reads as one.
    """
    if not data or b"=" in data:
        return None  # a spec has "=" on its key lines: a large one is never split here
    lines = data.split()
    if not lines or any(len(line) != _HEX_LINE for line in lines):
        return None
    try:
        return bytes.fromhex(b"".join(lines).decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None


_HEX_LINE = 2 * RECORD_SIZE


def encode(records: Iterable[Record], byte_order: ByteOrder = "little") -> bytes:
    """The payload bytes of ``records``: 24 bytes each, in the given order.

    Raises:
        PayloadError: a field does not fit its C type (u32, u8, u8[15]), or
            the byte order is unknown.
    """
    layout = _layout(byte_order)
    parts: list[bytes] = []
    for index, rec in enumerate(records):
        if len(rec.pad) != PAD_SIZE:
            raise PayloadError(f"record {index}: pad is {len(rec.pad)} bytes, not {PAD_SIZE}")
        try:
            parts.append(layout.pack(rec.base, rec.nr_functions, rec.action, rec.pad))
        except struct.error as exc:
            raise PayloadError(
                f"record {index}: a field does not fit struct kvm_smccc_filter "
                f"(base {rec.base:#x}, nr_functions {rec.nr_functions:#x}, action {rec.action})"
            ) from exc
    return b"".join(parts)


def decode(data: bytes, byte_order: ByteOrder = "little", *, strict: bool = True) -> list[Record]:
    """Split a payload into records.

    With ``strict`` (the default) each record must also pass the kernel's
    field validation: an action of 0..2, an all-zero pad and a non-empty range
    that does not wrap. ``strict=False`` only checks the length, for callers
    that want the kernel (or the emulator) to judge the fields.

    Raises:
        PayloadError: the first problem, naming the record index and byte offset.
    """
    layout = _layout(byte_order)
    whole, tail = divmod(len(data), RECORD_SIZE)
    if tail:
        raise PayloadError(
            f"payload is {len(data)} bytes, not a multiple of {RECORD_SIZE}: record {whole} "
            f"at offset {whole * RECORD_SIZE:#x} is truncated ({tail} bytes)"
        )
    records = [Record(*fields) for fields in layout.iter_unpack(data)]
    if strict:
        for index, rec in enumerate(records):
            problem = next(_field_problems(rec, index, ACTION_COUNT), None)
            if problem is not None:
                raise PayloadError(f"{problem.message} (offset {problem.offset:#x})")
    return records


class PayloadRule(NamedTuple):
    """A payload diagnostic; ``doc`` is what ``hvcfilter explain`` prints."""

    code: str
    name: str
    severity: Severity
    doc: str


PAYLOAD_RULES: tuple[PayloadRule, ...] = (
    PayloadRule(
        "HVF401",
        "truncated-payload",
        Severity.ERROR,
        """The payload length is not a multiple of 24 bytes.

Every ``struct kvm_smccc_filter`` is exactly 24 bytes (pre-merge drafts had
16); a shorter tail is a truncated record the VMM cannot pass to
``KVM_SET_DEVICE_ATTR``. An empty payload (0 bytes) is a valid empty table.

Fail: a 40-byte file (one record and 16 stray bytes).
Pass: a 48-byte file (two records).""",
    ),
    PayloadRule(
        "HVF402",
        "bad-action",
        Severity.ERROR,
        """The action byte is not 0 (handle), 1 (deny) or 2 (fwd_to_user).

The kernel rejects any other value with EINVAL.

Fail: byte 8 of a record is ``0x03``.
Pass: byte 8 is ``0x01``.""",
    ),
    PayloadRule(
        "HVF403",
        "nonzero-pad",
        Severity.ERROR,
        """A byte of ``pad[15]`` (offsets 9-23 of a record) is not zero.

The kernel checks the padding first and rejects the record with EINVAL, even
where it would otherwise answer EEXIST or EBUSY.

Fail: byte 9 of a record is ``0x01``.
Pass: bytes 9-23 are all zero.""",
    ),
    PayloadRule(
        "HVF404",
        "empty-or-wrapping-record",
        Severity.ERROR,
        """The range is empty or runs past ``0xFFFFFFFF``.

The kernel computes ``end = base + nr_functions - 1`` in 32 bits and gives
EINVAL when ``end < base``. ``base = 0, nr_functions = 0`` slips through that
test (end wraps to 0xFFFFFFFF) and fails anyway: EEXIST against the reserved
ranges on Linux 6.12, EINVAL on 7.2.

Fail: ``base = 0xFFFFFFF0, nr_functions = 0x20`` or ``nr_functions = 0``.
Pass: ``base = 0xFFFFFFF0, nr_functions = 0x10``.""",
    ),
    PayloadRule(
        "HVF405",
        "overlapping-records",
        Severity.ERROR,
        """A record shares a function ID with a record installed before it.

Installing it gives EEXIST, and the VM keeps the records before it: a
partly installed table. Adjacent records are fine.

Fail: ``(0x86000000, 0x10)`` then ``(0x8600000F, 2)``.
Pass: ``(0x86000000, 0x10)`` then ``(0x86000010, 1)``.""",
    ),
    PayloadRule(
        "HVF406",
        "reserved-record",
        Severity.ERROR,
        """A record touches a range the kernel reserves for itself.

KVM keeps the Arm Architecture calls ``0x80000000-0x8000FFFF`` and
``0xC0000000-0xC000FFFF`` as HANDLE; any record that touches them fails with
EEXIST, whatever its action.

Fail: ``(0x7FFFFFFF, 2)``, which ends at 0x80000000.
Pass: ``(0x80010000, 1)``.""",
    ),
    PayloadRule(
        "HVF407",
        "payload-without-filter",
        Severity.ERROR,
        """The target kernel has no SMCCC filter: before Linux 6.4 every record fails.

The payload form of HVF207. Older kernels (Linux 6.1 is the lab's) do not
know the VM-fd device attribute, so ``KVM_HAS_DEVICE_ATTR`` and every
``KVM_SET_DEVICE_ATTR`` fail with EINVAL (observed on 6.1.176) before any
record is looked at, and the guest gets the kernel's default handling of
every call. One finding per payload, at its first record; the records' own
problems are not reported, since that kernel never gets to them.

Fail: any non-empty payload with ``--kernel 6.1``.
Pass: the same payload with ``--kernel 6.12``, or an empty payload.""",
    ),
)
_RULES = {rule.code: rule for rule in PAYLOAD_RULES}


class _Problem(NamedTuple):
    code: str
    message: str
    offset: int
    key: str
    hint: str | None = None


def _field_problems(rec: Record, index: int, filter_actions: int) -> Iterator[_Problem]:
    """The problems one record has on its own, in the kernel's order of checks.

    ``filter_actions`` is the profile's number of actions (3: 0..2).
    """
    start = index * RECORD_SIZE
    if rec.pad != _ZERO_PAD:
        nonzero = [i for i, b in enumerate(rec.pad) if b]
        shown = ", ".join(f"pad[{i}]={rec.pad[i]:#04x}" for i in nonzero[:4])
        if len(nonzero) > 4:
            shown += ", ..."
        yield _Problem(
            "HVF403",
            f"record {index}: nonzero padding ({shown}): EINVAL",
            start + _OFF_PAD + nonzero[0],
            f"record[{index}].pad",
            "bytes 9-23 of every record must be zero",
        )
    if rec.action >= filter_actions:
        yield _Problem(
            "HVF402",
            f"record {index}: action {rec.action} is not 0 (handle), 1 (deny) or "
            "2 (fwd_to_user): EINVAL",
            start + _OFF_ACTION,
            f"record[{index}].action",
        )
    if rec.wraps:
        what = (
            "is empty (nr_functions = 0)"
            if rec.nr_functions == 0
            else f"runs past 0xFFFFFFFF (base {format_id(rec.base)} + "
            f"{rec.nr_functions:#x} functions)"
        )
        yield _Problem(
            "HVF404",
            f"record {index}: the range {what}: the kernel rejects it",
            start + _OFF_NR,
            f"record[{index}].nr_functions",
            "nr_functions must be at least 1 and base + nr_functions - 1 at most 0xFFFFFFFF",
        )


# Named tuples, not dataclasses: importing dataclasses (and inspect) costs every
# simulate start more than the rest of a small replay.
class RecordProblem(NamedTuple):
    """Why one record of a table would not install: its index, the rule, and the words."""

    index: int  # type: ignore[assignment]  # hides tuple.index, which nothing here calls
    code: str
    message: str
    offset: int
    key: str
    hint: str | None = None

    @property
    def rule(self) -> PayloadRule:
        """The registered rule of :attr:`code`."""
        return _RULES[self.code]


def _install(
    records: Sequence[Record], profile: KernelProfile
) -> tuple[list[RecordProblem], RangeTree[int]]:
    """Install records one by one as the kernel does (section 2.1, rows 4-8, before any run).

    The tree's values are record indices, :data:`~hvcfilter.kernel.filter.RESERVED`
    for the reserved ranges.
    """
    if not profile.has_filter:
        tree = install_ranges(iter(()), profile)[0]  # nothing reserved, nothing installed
        if not records:
            return [], tree
        err = errno_name(profile.no_filter_errno or 0)
        plural = "record" if len(records) == 1 else "records"
        return [
            RecordProblem(
                0,
                "HVF407",
                f"kernel {profile.name} has no SMCCC filter (it arrived in Linux 6.4): "
                f"KVM_HAS_DEVICE_ATTR and KVM_SET_DEVICE_ATTR fail with {err}, so none of "
                f"the {len(records)} {plural} can be installed",
                0,
                "record[0]",
                "target Linux 6.4 or later (--kernel), or install no table on this kernel",
            )
        ], tree
    own: dict[int, list[RecordProblem]] = {}

    def spans() -> Iterator[tuple[int, int] | None]:
        for index, rec in enumerate(records):
            found = [_at(p, index) for p in _field_problems(rec, index, profile.filter_actions)]
            if found:
                own[index] = found
                yield None  # a record the kernel rejects as invalid is never inserted
            else:
                yield rec.base, rec.base + rec.nr_functions - 1

    tree, refused = install_ranges(spans(), profile)
    problems: list[RecordProblem] = []
    for index in sorted(own.keys() | refused.keys()):
        problems.extend(own.get(index, ()))
        owner = refused.get(index)
        if owner is None:
            continue
        rec = records[index]
        last = rec.base + rec.nr_functions - 1
        if owner == RESERVED:
            problems.append(
                RecordProblem(
                    index,
                    "HVF406",
                    f"record {index} ({rec}) touches a range kernel {profile.name} reserves "
                    f"({_reserved_text(profile, rec.base, last)}): EEXIST",
                    index * RECORD_SIZE,
                    f"record[{index}]",
                    "leave 0x80000000-0x8000FFFF and 0xC0000000-0xC000FFFF out of the table",
                )
            )
        else:
            problems.append(
                RecordProblem(
                    index,
                    "HVF405",
                    f"record {index} ({rec}) overlaps record {owner}, installed before it: EEXIST",
                    index * RECORD_SIZE,
                    f"record[{index}]",
                    "ranges must be disjoint; adjacent ranges are fine",
                )
            )
    return problems, tree


def _at(problem: _Problem, index: int) -> RecordProblem:
    return RecordProblem(
        index, problem.code, problem.message, problem.offset, problem.key, problem.hint
    )


def record_problems(
    records: Iterable[Record], *, profile: KernelProfile | None = None
) -> list[RecordProblem]:
    """Every reason the records, installed in order, would not all be accepted.

    Uses ``profile``'s reserved ranges (default: the newest kernel). A record
    that fails validation is never inserted, so it causes no later EEXIST.
    """
    return _install(list(records), profile or get_profile(None))[0]


def install(
    records: Iterable[Record], *, profile: KernelProfile | None = None
) -> list[tuple[int, int, int]]:
    """What the filter holds after installing ``records`` in order, ignoring failed calls.

    Returns ``(first, last, action)`` triples, inclusive and sorted by first
    ID, without the reserved ranges; a record that would fail is left out, as
    the kernel leaves it out.
    """
    prof = profile or get_profile(None)
    listed = list(records)
    tree = _install(listed, prof)[1]
    return [
        (first, last, listed[owner].action)
        for first, last, owner in tree.items()
        if owner != RESERVED
    ]


def validate(
    data: bytes,
    filename: str = "<payload>",
    *,
    profile: KernelProfile | None = None,
    byte_order: ByteOrder = "little",
) -> list[Diagnostic]:
    """Every problem in a payload, as diagnostics with record index and byte offset.

    Records are judged as the kernel would install them, one after the other
    (``profile``'s reserved ranges, default the newest kernel). An empty
    payload is a valid empty table; a truncated tail is reported and the
    whole records before it are still checked.

    Raises:
        PayloadError: the byte order is unknown.
    """
    layout = _layout(byte_order)
    whole, tail = divmod(len(data), RECORD_SIZE)
    records = [Record(*fields) for fields in layout.iter_unpack(data[: whole * RECORD_SIZE])]
    diags = [_diag(p, filename) for p in record_problems(records, profile=profile)]
    if tail:
        diags.append(
            _diag(
                _Problem(
                    "HVF401",
                    f"payload is {len(data)} bytes, not a multiple of {RECORD_SIZE}: "
                    f"record {whole} is truncated ({tail} of {RECORD_SIZE} bytes)",
                    whole * RECORD_SIZE,
                    f"record[{whole}]",
                    "each struct kvm_smccc_filter is 24 bytes: base u32, nr_functions u32, "
                    "action u8, pad[15]",
                ),
                filename,
            )
        )
    return diags


def _reserved_text(profile: KernelProfile, first: int, last: int) -> str:
    hit = [str(IdRange(a, b)) for a, b in profile.reserved_ranges if a <= last and first <= b]
    return ", ".join(hit)


def _diag(problem: _Problem | RecordProblem, filename: str) -> Diagnostic:
    rule = _RULES[problem.code]
    return Diagnostic(
        problem.code,
        rule.name,
        rule.severity,
        problem.message,
        Location(filename, offset=problem.offset, key=problem.key),
        problem.hint,
    )
