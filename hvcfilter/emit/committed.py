"""Committed outputs: is a payload checked in beside its spec still what the spec compiles to?

A payload is paired with its spec by name (``vm.toml`` with ``vm.bin``, or
``vm.h``, ``vm.rs``, ``vm.json``, ``vm.hex``, ``vm.sha256``: the suffix
gives the ``compile --format``), or explicitly as ``SPEC=OUTPUT`` when the
two live apart. :func:`pair_files` turns the file names a pre-commit hook
passes into pairs (a spec with no output beside it has nothing to check);
:func:`check_pair` compiles the spec as ``compile`` would and compares the
bytes, with a line diff when they differ (records, for binary payloads).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from hvcfilter.diagnostics import Diagnostic
from hvcfilter.emit import OutputFormat, emit
from hvcfilter.errors import PayloadError, SpecError
from hvcfilter.inputs import unreadable
from hvcfilter.kernel.abi import Action
from hvcfilter.table import payload
from hvcfilter.table.compiler import compile_file
from hvcfilter.table.payload import ByteOrder

__all__ = ["SUFFIX_FORMATS", "Freshness", "Pair", "Status", "check_pair", "pair_files"]

SUFFIX_FORMATS: dict[str, OutputFormat] = {
    ".bin": OutputFormat.BIN,
    ".h": OutputFormat.C,
    ".rs": OutputFormat.RUST,
    ".json": OutputFormat.JSON,
    ".hex": OutputFormat.HEX,
    ".sha256": OutputFormat.SHA256,
}
_SPEC_SUFFIX = ".toml"


@dataclass(frozen=True, slots=True, order=True)
class Pair:
    """A spec and the committed output it should compile to."""

    spec: str
    output: str
    fmt: OutputFormat


class Status(StrEnum):
    """What comparing a pair found."""

    FRESH = "fresh"  # the output is byte for byte what the spec compiles to
    STALE = "stale"  # it differs: recompile and commit
    MISSING = "missing"  # an explicit pair names an output that does not exist
    BROKEN = "broken"  # the spec does not compile (its findings say why)


@dataclass(frozen=True, slots=True)
class Freshness:
    """The outcome for one pair: its status, a diff when stale, findings when broken."""

    pair: Pair
    status: Status
    diff: tuple[str, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()
    unreadable: bool = False


def _format_of(output: str) -> OutputFormat:
    fmt = SUFFIX_FORMATS.get(Path(output).suffix)
    if fmt is None:
        known = ", ".join(SUFFIX_FORMATS)
        raise ValueError(f"{output}: cannot tell its format from the suffix (known: {known})")
    return fmt


def pair_files(names: Iterable[str]) -> list[Pair]:
    """The pairs named by hook arguments: ``SPEC=OUTPUT``, a spec, or an output.

    A spec or output without its sibling is left out (nothing to compare);
    each pair appears once, however many of its files were named.

    Raises:
        ValueError: an explicit pair lacks a name, or its output has a suffix of no
            known format.
        SpecError: a file named on its own does not exist or is a directory (a typo
            would pass as nothing to compare).
    """
    pairs: set[Pair] = set()
    for name in names:
        if "=" in name:
            spec, output = name.split("=", 1)
            if not spec or not output:
                raise ValueError(f"{name!r}: SPEC=OUTPUT needs both names, e.g. vm.toml=vm.bin")
            pairs.add(Pair(spec, output, _format_of(output)))
            continue
        path = Path(name)
        # os.path's probes, not Path's: they take a name too long to exist as missing.
        if not os.path.exists(path):
            raise SpecError(f"{name}: no such file (name a spec, an output, or SPEC=OUTPUT)")
        if os.path.isdir(path):  # would pair with nothing and pass as "0 pair(s)"
            raise SpecError(f"{name}: is a directory (name a spec, an output, or SPEC=OUTPUT)")
        if path.suffix == _SPEC_SUFFIX:
            for suffix, fmt in SUFFIX_FORMATS.items():
                sibling = path.with_suffix(suffix)
                if os.path.isfile(sibling):
                    pairs.add(Pair(name, str(sibling), fmt))
        elif path.suffix in SUFFIX_FORMATS:
            spec_path = path.with_suffix(_SPEC_SUFFIX)
            if os.path.isfile(spec_path):
                pairs.add(Pair(str(spec_path), name, SUFFIX_FORMATS[path.suffix]))
    return sorted(pairs)


def _record_lines(data: bytes, byte_order: ByteOrder) -> list[str]:
    """One line per 24-byte record, decoded where it can be, for a readable diff."""
    size = payload.RECORD_SIZE
    lines = []
    for offset in range(0, len(data), size):
        chunk = data[offset : offset + size]
        text = f"record {offset // size} @{offset:#06x}: {chunk.hex()}"
        if len(chunk) == size:
            (rec,) = payload.decode(chunk, byte_order, strict=False)
            action = Action(rec.action).label if rec.action < len(Action) else rec.action
            text += f"  {rec} {action}"
        lines.append(text)
    return lines


def _lines(data: bytes, fmt: OutputFormat, byte_order: ByteOrder) -> list[str]:
    if fmt.is_binary:
        return _record_lines(data, byte_order)
    return data.decode("utf-8", errors="replace").splitlines()


def check_pair(
    pair: Pair, *, merge: bool = True, kernel: str | None = None, byte_order: ByteOrder = "little"
) -> Freshness:
    """Compile the pair's spec as ``compile`` would and compare with the committed output.

    Raises:
        UnknownProfileError: ``kernel`` names no profile.
        PayloadError: unknown byte order, or the output exists but cannot be read.
    """
    result = compile_file(pair.spec, merge=merge, kernel=kernel)
    if result.table is None:
        return Freshness(
            pair, Status.BROKEN, diagnostics=result.diagnostics, unreadable=result.unreadable
        )
    expected = emit(result.table, pair.fmt, byte_order=byte_order)
    try:
        committed = Path(pair.output).read_bytes()
    except FileNotFoundError:
        return Freshness(pair, Status.MISSING)
    except OSError as exc:  # a directory, no permission: not "missing", and no diff to show
        raise PayloadError(f"cannot read {pair.output}: {unreadable(exc)}") from exc
    if committed == expected:
        return Freshness(pair, Status.FRESH)
    diff = difflib.unified_diff(
        _lines(committed, pair.fmt, byte_order),
        _lines(expected, pair.fmt, byte_order),
        f"{pair.output} (committed)",
        f"{pair.output} (compiled from {pair.spec})",
        lineterm="",
    )
    lines = tuple(diff)
    if not lines:  # every line agrees: the bytes between them differ
        lines = (_line_ending_note(committed, expected),)
    return Freshness(pair, Status.STALE, diff=lines)


def _line_ending_note(committed: bytes, expected: bytes) -> str:
    """Why a text output whose lines all agree is still not what compile writes."""
    crlf = committed.count(b"\r\n")
    if crlf and b"\r\n" not in expected:
        which = "1 line ends" if crlf == 1 else f"{crlf} lines end"
        return (
            f"(the lines agree, but {which} in CRLF where compile writes LF: "
            "git's core.autocrlf or an editor converted the file)"
        )
    return "(the lines agree; only line endings or the final newline differ)"
