"""Decompiling: the read-back the kernel lacks, a payload into a canonical spec.

:func:`decompile` validates a payload and writes a spec with one raw range
per record, each commented with the well-known calls it covers, in the
weakest layout that compiles back to the same bytes.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hvcfilter import smccc
from hvcfilter.diagnostics import Diagnostic, Severity
from hvcfilter.errors import PayloadError
from hvcfilter.kernel.profiles import get_profile
from hvcfilter.model import Action
from hvcfilter.spec import is_text, is_toml
from hvcfilter.spec.writer import dump_document
from hvcfilter.table import payload
from hvcfilter.table.compiler import Layout, mergeable
from hvcfilter.table.effective import covered_calls
from hvcfilter.table.payload import ByteOrder, Record

__all__ = ["DecompileResult", "decompile"]


@dataclass(frozen=True, slots=True)
class DecompileResult:
    """A payload read back: the canonical spec text, or the diagnostics that stopped it."""

    path: str
    records: tuple[Record, ...]
    text: str | None
    diagnostics: tuple[Diagnostic, ...]


def _layout_of(records: Sequence[Record]) -> Layout:
    """The weakest layout whose compile reproduces ``records`` exactly."""
    ordered = all(a.base < b.base for a, b in itertools.pairwise(records))
    if not ordered:
        return "as-written"
    joinable = any(mergeable(a, b) for a, b in itertools.pairwise(records))
    return "sorted" if joinable else "merged"


def _call_comment(rec: Record) -> str:
    names = covered_calls(rec.base, rec.end32)
    if not names:
        return f"no well-known calls ({_owners_text(rec.base, rec.end32)})"
    if len(names) <= 4:
        return ", ".join(names)
    return f"{', '.join(names[:3])}, ... ({len(names)} well-known calls)"


def _owners_text(first: int, last: int) -> str:
    low, high = smccc.decode(first), smccc.decode(last)
    if low.owner == high.owner and (first ^ last) < smccc.CONVENTION_BIT:
        kind = "fast" if low.call_type is smccc.CallType.FAST else "yielding"
        return f"{low.owner_display}, {kind} {low.convention.value.upper()}"
    return f"owners {low.owner_display} to {high.owner_display}"


def decompile(
    data: bytes,
    filename: str = "<payload>",
    *,
    kernel: str | None = None,
    byte_order: ByteOrder = "little",
) -> DecompileResult:
    """Validate a payload and write it as a canonical spec.

    The spec has one raw ``base``/``nr_functions`` entry per record, in
    payload order, each with a ``comment`` naming the well-known calls it
    covers. ``[filter] layout`` is written only when the plain defaults would
    not reproduce the payload (``"sorted"`` for adjacent same-action records,
    ``"as-written"`` for records not in ascending order), so that compiling
    the spec gives the payload back byte for byte. ``kernel`` is written as
    ``[filter] kernel`` and selects the reserved ranges used for validation.

    Raises:
        UnknownProfileError: ``kernel`` names no profile.
        PayloadError: unknown byte order, or ``data`` is a TOML spec.
    """
    data = payload.from_hex_text(data) or data  # compile --format hex, read back
    # Records hold NUL pad bytes, which TOML forbids: TOML text is never a payload,
    # and decoding a spec as records would give one bogus finding per 24 bytes.
    if data and is_text(data):
        if is_toml(data):
            raise PayloadError(
                f"{filename} is a TOML spec, not a binary payload: compile it first "
                "(`hvcfilter compile SPEC -o PAYLOAD`)"
            )
        raise PayloadError(
            f"{filename} is text, not a binary payload (whose records hold NUL pad bytes); "
            f"if it is meant as a spec, `hvcfilter check {filename}` shows what is wrong with it"
        )
    profile = get_profile(kernel) if kernel is not None else None
    diags = tuple(payload.validate(data, filename, profile=profile, byte_order=byte_order))
    if any(d.severity is Severity.ERROR for d in diags):
        return DecompileResult(filename, (), None, diags)
    records = tuple(payload.decode(data, byte_order))
    return DecompileResult(filename, records, dump_document(_document(records, kernel)), diags)


def _document(records: Sequence[Record], kernel: str | None) -> dict[str, Any]:
    table: dict[str, Any] = {}
    if kernel is not None:
        table["kernel"] = get_profile(kernel).name
    layout = _layout_of(records)
    if layout != "merged":
        table["layout"] = layout
    if not records:  # an empty payload is a table meant empty: HVF208 is its question
        table["allow"] = ["empty-table"]
    document: dict[str, Any] = {}
    if table:
        document["filter"] = table
    if records:
        document["range"] = [
            {
                "action": Action(rec.action).label,
                "base": rec.base,
                "nr_functions": rec.nr_functions,
                "comment": _call_comment(rec),
            }
            for rec in records
        ]
    return document
