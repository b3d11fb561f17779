"""Compiling: a loaded spec into the exact ``KVM_SET_DEVICE_ATTR`` records, in install order.

:func:`compile_spec` turns a :class:`~hvcfilter.model.FilterSpec` into the
records a VMM installs, each with the spec entries it came from, merging
adjacent same-action ranges where the layout allows. :func:`compile_file`
loads, lints and compiles, and installs the result into a model of the
kernel's tree as a last line of defence: a table the kernel would refuse is
never returned. Library code: nothing here prints or exits.
"""

from __future__ import annotations

from operator import attrgetter
from pathlib import Path
from typing import Any, NamedTuple, get_args

from hvcfilter import smccc
from hvcfilter.diagnostics import Diagnostic, Severity
from hvcfilter.kernel.profiles import KernelProfile, get_profile
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
from hvcfilter.rules import check_spec
from hvcfilter.spec import LoadResult, load, loads, locate
from hvcfilter.table import payload
from hvcfilter.table.effective import Segment, digest, effective_segments
from hvcfilter.table.payload import ByteOrder, Record

__all__ = [
    "LAYOUTS",
    "CompileResult",
    "CompiledRecord",
    "CompiledTable",
    "Layout",
    "Source",
    "compile_file",
    "compile_loaded",
    "compile_spec",
    "compile_text",
    "entry_label",
    "mergeable",
]

Layout = LayoutName
LAYOUTS: tuple[Layout, ...] = get_args(Layout)


# Named tuples, not dataclasses: importing dataclasses (and inspect) costs every
# simulate start more than the rest of a small replay.
class Source(NamedTuple):
    """A spec entry a record came from: ``range[2] function = "PSCI_CPU_ON_64"``.

    The label is built on demand: the binary formats never need it, and a
    large spec would otherwise format one label per entry for nothing.
    """

    entry: int
    spec_entry: Any

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


class CompiledRecord(NamedTuple):
    """One record to install, and the spec entries whose ranges it holds."""

    record: Record
    sources: tuple[Source, ...]

    @property
    def action(self) -> Action:
        """The record's action (compiled records always carry a valid one)."""
        return Action(self.record.action)


class CompiledTable(NamedTuple):
    """A compiled spec: records in install order, ready for every output format."""

    spec_path: str
    name: str | None
    description: str | None
    profile: KernelProfile
    layout: Layout
    records: tuple[CompiledRecord, ...]
    # The spec's [vm] table: what verify and dry runs configure before installing.
    vm: VmConfig = VmConfig()  # immutable: one shared default is safe

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
        """The effective table (see :func:`hvcfilter.table.effective.effective_segments`)."""
        return effective_segments(self.raw_records, self.profile)

    def digest(self) -> str:
        """The effective table's canonical digest (:func:`hvcfilter.table.effective.digest`)."""
        return digest(self.segments())


class CompileResult(NamedTuple):
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
        if chosen == "merged" and built and mergeable(built[-1][0], rec):
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


def mergeable(prev: Record, cur: Record) -> bool:
    """Whether ``cur`` extends ``prev`` into one record: same action, adjacent, well formed."""
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
    return compile_loaded(load(path, kernel=kernel), merge=merge, kernel=kernel, strict=strict)


def compile_text(
    text: str, filename: str = "<string>", *, merge: bool = True, kernel: str | None = None
) -> CompileResult:
    """:func:`compile_file` for spec text.

    Raises:
        UnknownProfileError: ``kernel`` names no profile.
        SpecError: the spec names an unknown layout.
    """
    return compile_loaded(
        loads(text, filename, kernel=kernel), merge=merge, kernel=kernel, strict=True
    )


def compile_loaded(
    result: LoadResult, *, merge: bool = True, kernel: str | None = None, strict: bool = True
) -> CompileResult:
    """:func:`compile_file` for a spec already loaded (see :func:`hvcfilter.spec.load`).

    Raises:
        UnknownProfileError: ``kernel`` names no profile.
    """
    spec = result.spec
    if spec is None:
        return CompileResult(result.path, None, result.diagnostics)
    if kernel is not None:
        spec = spec._replace(profile=get_profile(kernel))
    # The rules of `hvcfilter check`, so that compile stops where check fails.
    diags = check_spec(spec, result.diagnostics)
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
