"""Tables from files: a spec or a payload, read as the table a command works on.

Two readers, for two kinds of work. :func:`read_table` reads a spec or a
payload (told apart by suffix, else by content) as an effective table, for
``diff``; an input with errors gives no table. :func:`load_table` and
:func:`load_baseline` read one as a :class:`Table`, the encoded records the
kernel receives, for replays: specs are compiled without the linter (the
emulated kernel judges them), payloads need only be whole records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, NamedTuple

from hvcfilter.diagnostics import Diagnostic, Severity
from hvcfilter.errors import PayloadError, SpecError
from hvcfilter.inputs import read_input, unreadable
from hvcfilter.kernel.profiles import get_profile
from hvcfilter.model import VmConfig
from hvcfilter.spec import DEFAULT_SPEC, LoadResult, is_payload, is_text, load, load_bytes
from hvcfilter.table import payload
from hvcfilter.table.compiler import compile_loaded
from hvcfilter.table.effective import Change, Segment, diff_segments, digest, effective_segments
from hvcfilter.table.payload import ByteOrder, Record

__all__ = [
    "DiffResult",
    "ReadResult",
    "Table",
    "TableView",
    "diff_files",
    "load_baseline",
    "load_table",
    "read_table",
]


class TableView(NamedTuple):
    """One side of a diff: where it came from, its records and its effective table."""

    path: str
    kind: Literal["spec", "payload"]
    records: tuple[Record, ...]
    segments: tuple[Segment, ...]

    @property
    def digest(self) -> str:
        """The canonical digest of the effective table."""
        return digest(self.segments)


class ReadResult(NamedTuple):
    """A spec or payload read for comparison: its table, or why it could not be used."""

    path: str
    table: TableView | None
    diagnostics: tuple[Diagnostic, ...]


def _looks_like_spec(path: str, data: bytes) -> bool:
    if is_payload(data):
        return False  # whole records with zero padding, which no text has: whatever its name
    suffix = Path(path).suffix.lower()
    if suffix == ".toml":
        return True
    if suffix in (".bin", ".payload"):
        return False
    # Text, even TOML that does not parse, is a spec, so that its errors are what is shown.
    return is_text(data)


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
    data = payload.from_hex_text(data) or data  # compile --format hex, read back
    if _looks_like_spec(path, data):
        compiled = compile_loaded(load_bytes(data, path, kernel=kernel), merge=merge, kernel=kernel)
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


class DiffResult(NamedTuple):
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


TableKind = Literal["spec", "payload", "none"]


# Named tuples, not dataclasses: importing dataclasses (and inspect) costs every
# simulate start more than the rest of a small replay.
class Table(NamedTuple):
    """A filter table as the kernel receives it: encoded records and where each came from."""

    kind: TableKind
    path: str | None
    records: tuple[bytes, ...]
    origins: tuple[str, ...]
    kernel: str | None = None
    vm: VmConfig = VmConfig()  # immutable: one shared default is safe

    @property
    def label(self) -> str:
        """How output names the table: ``spec hvcfilter.toml``, ``payload f.bin``, ``no filter``."""
        if self.kind == "none":
            return "no filter (the kernel's default behaviour)"
        return f"{self.kind} {self.path}"


def load_table(
    spec: str | Path | None = None,
    payload_path: str | Path | None = None,
    *,
    kernel: str | None = None,
    cwd: str | Path = ".",
    payload_hint: str | None = None,
) -> Table:
    """The table to replay: a spec, a payload, else ``hvcfilter.toml`` in ``cwd``, else none.

    ``payload_hint`` ends the error for a payload given as the spec: how the
    caller takes a payload instead (simulate: ``--payload``).

    Raises:
        SpecError: the spec cannot be read or understood.
        PayloadError: the payload cannot be read or is not whole records.
        UnknownProfileError: ``kernel`` names no profile.
    """
    if spec is not None and payload_path is not None:
        raise SpecError("give a spec or a payload, not both")
    if payload_path is not None:
        return _payload_table(Path(payload_path))
    if spec is not None:
        return _spec_table(Path(spec), kernel, payload_hint=payload_hint)
    default = Path(cwd) / DEFAULT_SPEC
    # Anything there, even a dangling link or a directory, is a spec to read (and to
    # report as unreadable): replaying with no table instead could pass a CI gate.
    if default.exists() or default.is_symlink():
        return _spec_table(default, kernel, shown=DEFAULT_SPEC, payload_hint=payload_hint)
    return Table("none", None, (), ())


def load_baseline(path: str | Path, *, kernel: str | None = None) -> Table:
    """A baseline table: a spec (a ``.toml`` file, or any text), else a payload of whole records.

    ``-`` reads it from standard input.

    Raises:
        SpecError: the spec cannot be read or understood.
        PayloadError: the payload cannot be read or is not whole records.
    """
    name = str(path)
    shown, data = _read_input(name, "baseline")
    # Told apart as diff and decompile tell them: a spec need not end in .toml.
    if _looks_like_spec(name, data):
        loaded = load_bytes(data, shown, kernel=kernel)
        return _spec_table_of(loaded, kernel, shown, role="baseline")
    return _payload_table_of(data, shown)


def _read_input(name: str, what: str) -> tuple[str, bytes]:
    """The name to show and the bytes of an input file, ``-`` being standard input.

    A payload in the hex form ``compile --format hex`` writes comes back as its bytes.
    """
    try:
        data = read_input(name)
        return ("<stdin>" if name == "-" else name), payload.from_hex_text(data) or data
    except OSError as exc:
        shown = "<stdin>" if name == "-" else name
        raise PayloadError(f"cannot read {what} {shown}: {unreadable(exc)}") from exc


def _spec_table(
    path: Path, kernel: str | None, *, shown: str | None = None, payload_hint: str | None = None
) -> Table:
    loaded = load(path, kernel=kernel)
    return _spec_table_of(loaded, kernel, shown or str(path), payload_hint=payload_hint)


def _spec_table_of(
    loaded: LoadResult,
    kernel: str | None,
    shown: str,
    *,
    role: str = "spec",
    payload_hint: str | None = None,
) -> Table:
    # Imported here: the compiler pulls in the linter, which jsonl-only runs never need.
    from hvcfilter.table.compiler import compile_spec

    if loaded.spec is None:
        why = loaded.failure(f"{role} {loaded.path}")
        raise SpecError(f"{why}; {payload_hint}" if loaded.payload and payload_hint else why)
    spec = loaded.spec
    if kernel is not None:
        spec = spec._replace(profile=get_profile(kernel))
    compiled = compile_spec(spec)
    records = tuple(payload.encode([c.record]) for c in compiled.records)
    origins = tuple(", ".join(str(s) for s in c.sources) for c in compiled.records)
    return Table("spec", shown, records, origins, spec.profile.name, spec.vm)


def _payload_table(path: Path) -> Table:
    shown, data = _read_input(str(path), "payload")
    return _payload_table_of(data, shown)


def _payload_table_of(data: bytes, shown: str) -> Table:
    # The kernel (emulated) judges the fields; only the framing must be whole records.
    try:
        records = payload.decode(data, strict=False)
    except PayloadError as exc:
        if shown.lower().endswith(".toml"):
            hint = "it is a TOML spec, not a binary payload: pass it with --spec"
        elif is_text(data):  # no payload is text (its pad bytes are zero): a spec, or neither
            hint = "it is text, not a binary payload: a spec goes with --spec"
        else:
            # A payload read from stdin is named <stdin>, which a shell takes as a redirection.
            shown_cmd = "-" if shown == "<stdin>" else shown
            hint = f"`hvcfilter decompile {shown_cmd}` lists every problem"
        raise PayloadError(f"cannot use payload {shown}: {exc}; {hint}") from exc
    encoded = tuple(payload.encode([r]) for r in records)
    origins = tuple(f"record {i} @ {i * payload.RECORD_SIZE:#x}" for i in range(len(records)))
    return Table("payload", shown, encoded, origins)
