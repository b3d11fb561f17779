"""The compiler: specs to exact ``KVM_SET_DEVICE_ATTR`` records, and records back to specs.

``compile_spec`` turns a loaded :class:`~hvcfilter.model.FilterSpec` into
the records a VMM installs, in install order, each with the spec entries it
came from. ``decompile`` is the read-back the kernel lacks: it validates a
payload and writes a canonical spec that compiles back to the same bytes.
The *effective table* (the filter's action for every one of the 2**32
function IDs, as maximal segments) is the common ground for ``diff`` and for
the migration digest; it is computed by a sweep over sorted breakpoints,
never per ID. Library code: nothing here prints or exits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import re
import struct
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any, Literal, get_args

import tomli_w

from hvcfilter import payload, smccc
from hvcfilter.checks import check_spec
from hvcfilter.diagnostics import Diagnostic, Location, Severity
from hvcfilter.errors import HvcFilterError, PayloadError, errno_name
from hvcfilter.model import (
    Action,
    FilterSpec,
    FunctionEntry,
    FunctionsEntry,
    LayoutName,
    OwnerEntry,
    RawEntry,
    ServiceEntry,
    VmConfig,
)
from hvcfilter.payload import ByteOrder, Record
from hvcfilter.profiles import KernelProfile, get_profile
from hvcfilter.ranges import cover
from hvcfilter.spec import INPUT_RULES, LoadResult, load, loads, locate

__all__ = [
    "DIGEST_TAG",
    "LAYOUTS",
    "Change",
    "CompileResult",
    "CompiledRecord",
    "CompiledTable",
    "DecompileResult",
    "DiffResult",
    "DryRunResult",
    "InstallStep",
    "Layout",
    "ReadResult",
    "Segment",
    "Source",
    "TableView",
    "compile_file",
    "compile_spec",
    "compile_text",
    "covered_calls",
    "decompile",
    "diff_files",
    "diff_segments",
    "digest",
    "dry_run",
    "dump_document",
    "effective_segments",
    "entry_label",
    "read_table",
]

Layout = LayoutName
LAYOUTS: tuple[Layout, ...] = get_args(Layout)

# --------------------------------------------------------------------------- compile


@dataclass(frozen=True, slots=True)
class Source:
    """A spec entry a record came from: ``range[2] function = "PSCI_CPU_ON_64"``.

    The label is built on demand: the binary formats never need it, and a
    large spec would otherwise format one label per entry for nothing.
    """

    entry: int
    spec_entry: Any = field(compare=False, repr=False)

    @property
    def label(self) -> str:
        """``range[2] function = "PSCI_CPU_ON_64"``."""
        return entry_label(self.entry, self.spec_entry)

    @property
    def comment(self) -> str | None:
        """The entry's ``comment``, if it has one."""
        comment: str | None = self.spec_entry.comment
        return comment

    def __str__(self) -> str:
        return f"{self.label} ({self.comment})" if self.comment else self.label


@dataclass(frozen=True, slots=True)
class CompiledRecord:
    """One record to install, and the spec entries whose ranges it holds."""

    record: Record
    sources: tuple[Source, ...]

    @property
    def action(self) -> Action:
        """The record's action (compiled records always carry a valid one)."""
        return Action(self.record.action)


@dataclass(frozen=True, slots=True)
class CompiledTable:
    """A compiled spec: records in install order, ready for every output format."""

    spec_path: str
    name: str | None
    description: str | None
    profile: KernelProfile
    layout: Layout
    records: tuple[CompiledRecord, ...]
    # The spec's [vm] table: what verify and dry runs configure before installing.
    vm: VmConfig = field(default_factory=VmConfig)

    @property
    def raw_records(self) -> list[Record]:
        """The bare records, in install order."""
        return [c.record for c in self.records]

    def encode(self, byte_order: ByteOrder = "little") -> bytes:
        """The payload bytes.

        Raises:
            PayloadError: unknown byte order.
        """
        return payload.encode(self.raw_records, byte_order)

    def segments(self) -> list[Segment]:
        """The effective table (see :func:`effective_segments`)."""
        return effective_segments(self.raw_records, self.profile)

    def digest(self) -> str:
        """The canonical digest of the effective table (see :func:`digest`)."""
        return digest(self.segments())


@dataclass(frozen=True, slots=True)
class CompileResult:
    """What compiling one spec file gave: a table, or the diagnostics that stopped it."""

    path: str
    table: CompiledTable | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def unreadable(self) -> bool:
        """The spec file itself could not be read (exit code 2)."""
        return any(d.code == "HVF001" for d in self.diagnostics)

    @property
    def has_errors(self) -> bool:
        """Some diagnostic is an error: the kernel would refuse the table."""
        return any(d.severity is Severity.ERROR for d in self.diagnostics)


def entry_label(index: int, entry: Any) -> str:
    """How a reader finds a spec entry: ``range[2] function = "PSCI_CPU_ON_64"``."""
    return f"range[{index}] {_selector_text(entry)}"


def _toml_value(value: int | str, *, hex_int: bool = True) -> str:
    if isinstance(value, int):
        return smccc.format_id(value) if hex_int else str(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _selector_text(entry: Any) -> str:
    if isinstance(entry, RawEntry):
        text = f"base = {smccc.format_id(entry.base)}"
        if entry.nr_functions is not None:
            text += f", nr_functions = {entry.nr_functions:#x}"
        if entry.end is not None:
            text += f", end = {smccc.format_id(entry.end)}"
        return text
    if isinstance(entry, FunctionEntry):
        return f"function = {_toml_value(entry.function)}"
    if isinstance(entry, FunctionsEntry):
        shown = [_toml_value(f) for f in entry.functions[:3]]
        if len(entry.functions) > 3:
            shown.append(f"... {len(entry.functions) - 3} more")
        return f"functions = [{', '.join(shown)}]"
    if isinstance(entry, ServiceEntry):
        text = f"service = {_toml_value(entry.service)}"
    elif isinstance(entry, OwnerEntry):
        text = f"owner = {_toml_value(entry.owner, hex_int=False)}"
        if entry.call is not None:
            text += f', call = "{entry.call}"'
    else:
        return type(entry).__name__
    if entry.convention is not None:
        text += f', convention = "{entry.convention}"'
    return text


def compile_spec(
    spec: FilterSpec, *, merge: bool = True, layout: Layout | None = None
) -> CompiledTable:
    """The records of a spec, in the order a VMM installs them.

    ``layout`` (default: the spec's ``[filter] layout``, else ``"merged"``):

    - ``"merged"``: sorted by base; adjacent ranges with the same action are
      merged into one record, across spec entries too.
    - ``"sorted"``: sorted by base, one record per resolved range.
    - ``"as-written"``: one record per resolved range, in spec order; the
      layout ``decompile`` uses to reproduce an arbitrary payload.

    ``merge=False`` (``--no-merge``) turns ``"merged"`` into ``"sorted"``.
    The result is not validated here; :func:`compile_file` does that.

    Raises:
        SpecError: the spec names an unknown layout.
    """
    chosen = layout or spec.layout
    if chosen == "merged" and not merge:
        chosen = "sorted"
    ranges = list(spec.ranges)
    if chosen != "as-written":
        # Stable: equal bases keep entry order, so overlaps are reported as written.
        ranges.sort(key=attrgetter("base"))
    # Mutable accumulators: a long merge must not rebuild a tuple per range.
    built: list[tuple[Record, list[int]]] = []
    for rng in ranges:
        rec = Record(rng.base, rng.nr_functions, int(rng.action))
        if chosen == "merged" and built and _mergeable(built[-1][0], rec):
            prev, entries = built[-1]
            built[-1] = (
                Record(prev.base, prev.nr_functions + rec.nr_functions, rec.action),
                entries,
            )
            entries.append(rng.entry)
        else:
            built.append((rec, [rng.entry]))
    entries_of = spec.entries
    records = [
        CompiledRecord(rec, tuple(Source(i, entries_of[i]) for i in dict.fromkeys(entries)))
        for rec, entries in built
    ]
    return CompiledTable(
        spec_path=spec.path,
        name=spec.name,
        description=spec.description,
        profile=spec.profile,
        layout=chosen,
        records=tuple(records),
        vm=spec.vm,
    )


def _mergeable(prev: Record, cur: Record) -> bool:
    # Only well-formed neighbours merge: a broken range must stay visible to validation,
    # and a merged count must still fit the u32 nr_functions.
    return (
        prev.action == cur.action
        and prev.is_well_formed
        and cur.is_well_formed
        and prev.base + prev.nr_functions == cur.base
        and prev.nr_functions + cur.nr_functions <= smccc.FUNCTION_ID_MAX
    )


def compile_file(
    path: str | Path, *, merge: bool = True, kernel: str | None = None, strict: bool = True
) -> CompileResult:
    """Load, lint and compile one spec file; a spec with errors compiles to nothing.

    ``kernel`` overrides the spec's ``[filter] kernel`` profile. After
    compiling, the records are installed into a model of the kernel's tree
    as a last line of defence: a table the kernel would refuse is never
    returned, whatever the linter missed. ``strict=False`` (for ``--dry-run``,
    which exists to show what fails) returns the table of any spec that could
    be understood, with the error diagnostics beside it.

    Raises:
        UnknownProfileError: ``kernel`` names no profile.
        SpecError: the spec names an unknown layout.
    """
    result = load(path)
    return _compile_loaded(result, merge=merge, kernel=kernel, strict=strict)


def compile_text(
    text: str, filename: str = "<string>", *, merge: bool = True, kernel: str | None = None
) -> CompileResult:
    """:func:`compile_file` for spec text.

    Raises:
        UnknownProfileError: ``kernel`` names no profile.
        SpecError: the spec names an unknown layout.
    """
    return _compile_loaded(loads(text, filename), merge=merge, kernel=kernel, strict=True)


def _compile_loaded(
    result: LoadResult, *, merge: bool, kernel: str | None, strict: bool
) -> CompileResult:
    spec = result.spec
    if spec is None:
        return CompileResult(result.path, None, result.diagnostics)
    if kernel is not None:
        spec = dataclasses.replace(spec, profile=get_profile(kernel))
    diags = [*result.diagnostics, *_lint(spec)]
    linted_ok = not any(d.severity is Severity.ERROR for d in diags)
    if strict and not linted_ok:
        return CompileResult(result.path, None, tuple(diags))
    table = compile_spec(spec, merge=merge)
    if linted_ok:
        problems = payload.record_problems(table.raw_records, profile=spec.profile)
        diags.extend(_problem_diag(spec, table, p) for p in problems)
        if strict and problems:
            return CompileResult(result.path, None, tuple(diags))
    return CompileResult(result.path, table, tuple(diags))


def _lint(spec: FilterSpec) -> list[Diagnostic]:
    """The cross-entry checks of ``hvcfilter check``, so compile stops where check fails."""
    return check_spec(spec)


def _problem_diag(
    spec: FilterSpec, table: CompiledTable, problem: payload.RecordProblem
) -> Diagnostic:
    compiled = table.records[problem.index]
    first = compiled.sources[0]
    rule = problem.rule
    names = ", ".join(s.label for s in compiled.sources)
    return Diagnostic(
        problem.code,
        rule.name,
        rule.severity,
        f"compiled {problem.message} (from {names})",
        locate(spec, ("range", first.entry)),
        problem.hint,
    )


# --------------------------------------------------------------------------- effective table


@dataclass(frozen=True, slots=True, order=True)
class Segment:
    """A maximal run of function IDs, ``first..last`` inclusive, that the filter treats alike."""

    first: int
    last: int
    action: Action

    @property
    def count(self) -> int:
        """How many IDs the segment holds."""
        return self.last - self.first + 1

    def __str__(self) -> str:
        return str(smccc.IdRange(self.first, self.last))


def effective_segments(
    records: Iterable[Record], profile: KernelProfile | None = None
) -> list[Segment]:
    """The filter's action for every function ID, as maximal segments covering 0..0xFFFFFFFF.

    Records are installed in order as the kernel installs them (a record that
    would fail is left out, as the kernel leaves it out); the reserved ranges
    and every ID without a range are HANDLE. Adjacent segments never share an
    action. Cost: a sort of the records, whatever the sizes of the ranges.
    """
    segments: list[Segment] = []

    def add(first: int, last: int, action: Action) -> None:
        if segments and segments[-1].action is action:
            segments[-1] = Segment(segments[-1].first, last, action)
        else:
            segments.append(Segment(first, last, action))

    for first, last, action in cover(payload.install(records, profile=profile)):
        add(first, last, Action.HANDLE if action is None else Action(action))
    return segments


DIGEST_TAG = b"hvcfilter-effective-table-v1\x00"
_DIGEST_SEGMENT = struct.Struct("<IIB")


def digest(segments: Sequence[Segment]) -> str:
    """The canonical digest of an effective table: ``sha256:`` and 64 lower-case hex digits.

    Canonical form, version 1, so that a VMM can recompute it in C or Rust:

    1. Take the effective action of every function ID 0..0xFFFFFFFF: the
       action of the installed record holding it, else HANDLE (0); the
       reserved ranges are HANDLE.
    2. Split 0..0xFFFFFFFF into maximal segments of one action, in ascending
       order: neighbouring segments always differ in action, the first starts
       at 0 and the last ends at 0xFFFFFFFF. An empty table is one segment
       ``(0, 0xFFFFFFFF, 0)``.
    3. Hash with SHA-256 the 28 ASCII bytes ``hvcfilter-effective-table-v1``
       and one NUL byte (29 bytes in all), then for each segment 9 bytes:
       ``first`` (u32 little-endian), ``last`` (u32 little-endian), ``action`` (u8).

    Tables that treat every ID alike get the same digest, however their
    records are split, merged or ordered, and whatever the payload byte order.
    """
    hasher = hashlib.sha256(DIGEST_TAG)
    for seg in segments:
        hasher.update(_DIGEST_SEGMENT.pack(seg.first, seg.last, int(seg.action)))
    return f"sha256:{hasher.hexdigest()}"


@dataclass(frozen=True, slots=True)
class Change:
    """IDs ``first..last`` whose effective action differs between two tables."""

    first: int
    last: int
    before: Action
    after: Action

    @property
    def count(self) -> int:
        """How many IDs change."""
        return self.last - self.first + 1

    def __str__(self) -> str:
        return str(smccc.IdRange(self.first, self.last))


def diff_segments(a: Sequence[Segment], b: Sequence[Segment]) -> list[Change]:
    """The ID ranges whose action differs between two effective tables.

    Both inputs must cover 0..0xFFFFFFFF (as :func:`effective_segments`
    returns them); the sweep walks both lists once. Neighbouring changes with
    the same before/after pair are merged.
    """
    changes: list[Change] = []
    i = j = 0
    cursor = 0
    while i < len(a) and j < len(b):
        last = min(a[i].last, b[j].last)
        if a[i].action is not b[j].action:
            prev = changes[-1] if changes else None
            if (
                prev is not None
                and prev.last + 1 == cursor
                and prev.before is a[i].action
                and prev.after is b[j].action
            ):
                changes[-1] = Change(prev.first, last, prev.before, prev.after)
            else:
                changes.append(Change(cursor, last, a[i].action, b[j].action))
        cursor = last + 1
        if a[i].last == last:
            i += 1
        if b[j].last == last:
            j += 1
    return changes


def covered_calls(first: int, last: int) -> list[str]:
    """The catalogue names of the well-known calls in ``first..last``, in ID order."""
    return [e.name for e in smccc.catalogue().in_range(first, last)]


# --------------------------------------------------------------------------- reading tables


@dataclass(frozen=True, slots=True)
class TableView:
    """One side of a diff: where it came from, its records and its effective table."""

    path: str
    kind: Literal["spec", "payload"]
    records: tuple[Record, ...]
    segments: tuple[Segment, ...]

    @property
    def digest(self) -> str:
        """The canonical digest of the effective table."""
        return digest(self.segments)


@dataclass(frozen=True, slots=True)
class ReadResult:
    """A spec or payload read for comparison: its table, or why it could not be used."""

    path: str
    table: TableView | None
    diagnostics: tuple[Diagnostic, ...]


def _looks_like_spec(path: str, data: bytes) -> bool:
    suffix = Path(path).suffix.lower()
    if suffix == ".toml":
        return True
    if suffix in (".bin", ".payload"):
        return False
    return _parses_as_toml(data)


def _parses_as_toml(data: bytes) -> bool:
    try:
        tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return False
    return True


def _not_utf8(path: str, data: bytes, exc: UnicodeDecodeError) -> Diagnostic:
    """The HVF001 diagnostic :func:`hvcfilter.spec.load` gives a spec file that is not UTF-8."""
    rule = next(r for r in INPUT_RULES if r.code == "HVF001")
    line_start = data.rfind(b"\n", 0, exc.start) + 1
    return Diagnostic(
        rule.code,
        rule.name,
        rule.severity,
        f"not UTF-8 text: byte {data[exc.start]:#04x} at offset {exc.start}",
        Location(path, data.count(b"\n", 0, exc.start) + 1, exc.start - line_start + 1),
        "save the spec as UTF-8",
    )


def read_table(
    path: str,
    data: bytes,
    *,
    kernel: str | None = None,
    byte_order: ByteOrder = "little",
    merge: bool = True,
) -> ReadResult:
    """Read a spec or a payload (told apart by suffix, else by content) as an effective table.

    A ``.toml`` file, or any other file that parses as TOML, is a spec and is
    compiled; anything else is a payload and is validated. Either way an
    input with error diagnostics yields no table. An empty file is the empty
    table either way.

    Raises:
        UnknownProfileError: ``kernel`` names no profile.
        PayloadError: unknown byte order.
    """
    profile = get_profile(kernel) if kernel is not None else None
    if _looks_like_spec(path, data):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            # Replacement characters would turn a broken spec into a valid, different one.
            return ReadResult(path, None, (_not_utf8(path, data, exc),))
        compiled = compile_text(text, path, merge=merge, kernel=kernel)
        if compiled.table is None:
            return ReadResult(path, None, compiled.diagnostics)
        records = tuple(compiled.table.raw_records)
        used = compiled.table.profile
        kind: Literal["spec", "payload"] = "spec"
        diags = compiled.diagnostics
    else:
        diags = tuple(payload.validate(data, path, profile=profile, byte_order=byte_order))
        if any(d.severity is Severity.ERROR for d in diags):
            return ReadResult(path, None, diags)
        records = tuple(payload.decode(data, byte_order))
        used = profile or get_profile(None)
        kind = "payload"
    segments = tuple(effective_segments(records, used))
    return ReadResult(path, TableView(path, kind, records, segments), diags)


@dataclass(frozen=True, slots=True)
class DiffResult:
    """Two tables compared: the changes, or the diagnostics that stopped the comparison."""

    a: ReadResult
    b: ReadResult
    changes: tuple[Change, ...] | None

    @property
    def equivalent(self) -> bool:
        """Both tables were read and every ID has the same effective action."""
        return self.changes is not None and not self.changes


def diff_files(
    a: tuple[str, bytes],
    b: tuple[str, bytes],
    *,
    kernel: str | None = None,
    byte_order: ByteOrder = "little",
) -> DiffResult:
    """Compare two specs or payloads, in any mix, by effective action per function ID.

    Each input is ``(name, content)``.

    Raises:
        UnknownProfileError: ``kernel`` names no profile.
        PayloadError: unknown byte order.
    """
    left = read_table(*a, kernel=kernel, byte_order=byte_order)
    right = read_table(*b, kernel=kernel, byte_order=byte_order)
    if left.table is None or right.table is None:
        return DiffResult(left, right, None)
    return DiffResult(left, right, tuple(diff_segments(left.table.segments, right.table.segments)))


# --------------------------------------------------------------------------- decompile


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
    mergeable = any(_mergeable(a, b) for a, b in itertools.pairwise(records))
    return "sorted" if mergeable else "merged"


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
    # Records hold NUL pad bytes, which TOML forbids: TOML text is never a payload,
    # and decoding a spec as records would give one bogus finding per 24 bytes.
    if data and _parses_as_toml(data):
        raise PayloadError(
            f"{filename} is a TOML spec, not a binary payload: compile it first "
            "(`hvcfilter compile SPEC -o PAYLOAD`)"
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


# Lines tomli-w writes for the integer ID fields. With multiline strings off
# (the default) every newline inside a string is escaped, so a line can only
# start with a key if it is a key line.
_INT_LINE = re.compile(r"^(base|end|nr_functions) = (\d+)$", re.MULTILINE)


def _flat_table(table: Mapping[str, Any]) -> str:
    if any(isinstance(v, Mapping) for v in table.values()):
        raise HvcFilterError("internal error: a spec table cannot hold a nested table")
    return tomli_w.dumps(table, multiline_strings=False)


def dump_document(document: Mapping[str, Any]) -> str:
    """Canonical TOML for a spec document, with function IDs and counts in hex.

    The spec shape is fixed: top-level tables (``[filter]``, ``[vm]``) and
    arrays of tables (``[[range]]``) of plain values. Each table's values
    are written by tomli-w (quoting and escaping), always in block form: a
    ``[[range]]`` header per entry, never an inline table, whatever the line
    length. Then the integer values of ``base``, ``end`` and ``nr_functions``
    lines are rewritten as ``0x84000000`` (IDs, eight digits) and ``0x20``
    (counts). The result is parsed back and compared with the input, so the
    rewrite can never change a value.

    Raises:
        HvcFilterError: the document does not have the spec shape.
    """
    blocks: list[str] = []
    try:
        for key, value in document.items():
            name = tomli_w.dumps({key: 0}).split(" = ")[0]  # quotes the key if it needs it
            if isinstance(value, Mapping):
                blocks.append(f"[{name}]\n{_flat_table(value)}")
            elif isinstance(value, list) and all(isinstance(v, Mapping) for v in value):
                blocks.extend(f"[[{name}]]\n{_flat_table(v)}" for v in value)
            else:
                raise HvcFilterError(f"internal error: top-level {key!r} is not a table")
    except (TypeError, ValueError) as exc:
        raise HvcFilterError(f"cannot write the spec as TOML: {exc}") from exc

    def to_hex(match: re.Match[str]) -> str:
        key, value = match.group(1), int(match.group(2))
        shown = f"0x{value:X}" if key == "nr_functions" else smccc.format_id(value)
        return f"{key} = {shown}"

    text = _INT_LINE.sub(to_hex, "\n".join(blocks))
    if tomllib.loads(text) != document:
        raise HvcFilterError("internal error: the hex rewrite changed the spec document")
    return text


# --------------------------------------------------------------------------- dry run


@dataclass(frozen=True, slots=True)
class InstallStep:
    """One ``KVM_SET_DEVICE_ATTR`` call of a dry run and the errno it returned (0: accepted)."""

    index: int
    compiled: CompiledRecord
    errno: int

    @property
    def errno_name(self) -> str:
        """``0``, ``EEXIST``, ``EINVAL``..."""
        return errno_name(self.errno)


@dataclass(frozen=True, slots=True)
class DryRunResult:
    """The outcome of installing a compiled table into the emulated kernel."""

    table: CompiledTable
    profile: KernelProfile
    steps: tuple[InstallStep, ...]

    @property
    def ok(self) -> bool:
        """Every record was accepted."""
        return all(step.errno == 0 for step in self.steps)


def dry_run(table: CompiledTable, *, kernel: str | None = None) -> DryRunResult:
    """Install every record, in order, into a fresh emulated VM and collect the errnos.

    The records go in as encoded little-endian bytes, as an arm64 VMM passes
    them, so the dry run exercises the encoder too.

    Raises:
        UnknownProfileError: ``kernel`` names no profile.
    """
    profile = get_profile(kernel) if kernel is not None else table.profile
    # Imported here: the emulator is a heavier layer that plain compiles do not need.
    from hvcfilter.kernel import KvmVm

    vm = KvmVm(kernel=profile)
    steps = []
    for index, compiled in enumerate(table.records):
        result = vm.set_filter_record(payload.encode([compiled.record], "little"))
        steps.append(InstallStep(index, compiled, int(result)))
    return DryRunResult(table, profile, tuple(steps))
