"""Loading: spec files and text in, a resolved :class:`~hvcfilter.model.FilterSpec` and findings.

``load()`` never raises for bad input: unreadable files, TOML syntax errors and
schema errors all become diagnostics with a line and column. Well-formed
documents go through the fast reader (:mod:`.reader`), the rest through the
schema (:mod:`.schema`) for its errors (:mod:`.schema_errors`); either way the
document is then resolved into records (:mod:`.resolve`).
"""

from __future__ import annotations

import os
import sys
from typing import Any, NamedTuple

from hvcfilter.diagnostics import Diagnostic, Location, Severity
from hvcfilter.inputs import read_failure, read_input
from hvcfilter.model import FilterSpec
from hvcfilter.spec.input_rules import diag
from hvcfilter.spec.reader import read_document
from hvcfilter.spec.resolve import resolve
from hvcfilter.spec.source import SourceMap, split_toml_error
from hvcfilter.spec.toml_subset import PlainLine
from hvcfilter.spec.toml_subset import parse as parse_plain_toml

__all__ = [
    "DEFAULT_SPEC",
    "LoadResult",
    "is_payload",
    "is_text",
    "is_toml",
    "load",
    "load_bytes",
    "loads",
]

DEFAULT_SPEC = "hvcfilter.toml"


class LoadResult(NamedTuple):
    """What loading one spec gave: the spec (None when it could not be understood) and findings."""

    path: str
    spec: FilterSpec | None
    diagnostics: tuple[Diagnostic, ...]
    # The file is a binary payload, not a spec: a command that also takes
    # payloads can say how to pass it (the loader knows no command's options).
    payload: bool = False

    @property
    def unreadable(self) -> bool:
        """The file itself could not be read (exit code 2 territory)."""
        return any(d.code == "HVF001" for d in self.diagnostics)

    def failure(self, subject: str | None = None) -> str:
        """Why no spec came out, in one line: ``cannot use SUBJECT: where: what``.

        ``subject`` says what the spec was for (default: its path). An HVF001
        without a line ("cannot read P: no such file", "P is a binary payload
        ...") names the file and says it all, so it stands alone, with its
        hint: for a payload, the way out (``decompile``).
        """
        # The errors are why; a warning that comes first in the file is not.
        errors = [d for d in self.diagnostics if d.severity is Severity.ERROR]
        if not errors:
            return f"cannot use {subject or self.path}: unknown problem"
        first = errors[0]
        if first.code == "HVF001" and first.location.line is None:
            return first.message + (f"; {first.hint}" if first.hint else "")
        where = str(first.location)
        where = "" if where == self.path else f"{where}: "  # the line, when there is one
        more = len(errors) - 1
        return f"cannot use {subject or self.path}: {where}{first.message}" + (
            f" (and {more} more)" if more else ""
        )


def load(path: str | os.PathLike[str], *, kernel: str | None = None) -> LoadResult:
    """Read and resolve one spec file (``-`` is stdin); never raises for bad input.

    ``kernel`` overrides the spec's ``[filter] kernel`` (see :func:`loads`).
    """
    source = str(path)
    name = "<stdin>" if source == "-" else source
    try:
        data = read_input(source)
    except FileNotFoundError:
        return _unreadable(name, "no such file", "check the path, or create the file")
    except IsADirectoryError:
        return _unreadable(name, "is a directory", "pass the path of a .toml spec file")
    except OSError as exc:
        return _unreadable(name, *read_failure(exc))
    return load_bytes(data, name, kernel=kernel)


def load_bytes(data: bytes, filename: str, *, kernel: str | None = None) -> LoadResult:
    """Decode and resolve the bytes of a spec file; never raises for bad input.

    Bytes that are not UTF-8 are HVF001 at the offending byte: replacement
    characters would turn a broken spec into a valid, different one.
    """
    if is_payload(data):
        return LoadResult(
            filename,
            None,
            (
                diag(
                    "HVF001",
                    f"{filename} is a binary payload of {len(data) // _RECORD_SIZE} "
                    "record(s), not a spec",
                    Location(filename),
                    f"`hvcfilter decompile {'-' if filename == '<stdin>' else filename}` turns "
                    "it into a spec",
                ),
            ),
            payload=True,
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        what = f"byte {data[exc.start]:#04x} at offset {exc.start}"
        return _not_utf8(data, exc.start, filename, what, "save the spec as UTF-8")
    nul = data.find(b"\0")
    if nul >= 0:
        # NUL is UTF-8 but never TOML. UTF-16 or UTF-32 text without a byte-order mark
        # decodes, and TOML would call its first NUL a syntax error, hinting at hex numbers.
        sample = data[:64]
        wide = sample.count(0) * 2 >= len(sample)  # a NUL beside every character
        what = f"a NUL byte at offset {nul}" + ("" if wide else ", which TOML does not allow")
        hint = (
            "save the spec as UTF-8: a NUL beside every character is UTF-16 or UTF-32"
            if wide
            else "remove the NUL bytes (a file cut short by a crash is padded with them)"
        )
        return _not_utf8(data, nul, filename, what, hint)
    return loads(text, filename, kernel=kernel)


def _not_utf8(data: bytes, offset: int, filename: str, what: str, hint: str) -> LoadResult:
    """HVF001 at the byte at ``offset``, which keeps ``data`` from being UTF-8 TOML text."""
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return LoadResult(
        filename,
        None,
        (diag("HVF001", f"not UTF-8 text: {what}", Location(filename, line, column), hint),),
    )


# struct kvm_smccc_filter (reference 1.1); the spec room does not import the table room.
_RECORD_SIZE = 24
_PAD = bytes(15)


def is_payload(data: bytes) -> bool:
    """Whole records with every pad byte zero: a payload, which no text is.

    TOML forbids NUL; UTF-16 or UTF-32 text has NULs too, but not fifteen in a
    row at every record's pad, so it stays "not UTF-8" and is told to be saved so.
    """
    if not data or len(data) % _RECORD_SIZE or b"\0" not in data:
        return False
    return all(data[i + 9 : i + _RECORD_SIZE] == _PAD for i in range(0, len(data), _RECORD_SIZE))


def is_text(data: bytes) -> bool:
    """Whether ``data`` is UTF-8 text without NUL bytes, which no payload is.

    Every record of a payload holds 15 pad bytes that must be zero, and TOML
    forbids NUL: text is a spec to report on, even one that does not parse.
    """
    if b"\0" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def is_toml(data: bytes) -> bool:
    """Whether ``data`` is UTF-8 TOML (a spec, as opposed to a binary payload)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not isinstance(_parse_toml(text, "<bytes>"), LoadResult)


def loads(text: str, filename: str = "<string>", *, kernel: str | None = None) -> LoadResult:
    """Parse and resolve spec text; never raises for bad input.

    ``kernel`` overrides ``[filter] kernel``, as ``--kernel`` does, so that the
    ``[vm]`` settings are judged by that kernel (HVF107) from the start.

    Raises:
        UnknownProfileError: ``kernel`` (a caller's choice, not the input) names no profile.
    """
    # Editors on Windows start UTF-8 files with a byte-order mark; TOML has no place for it.
    text = text.removeprefix("\ufeff")
    parsed = _parse_toml(text, filename)
    if isinstance(parsed, LoadResult):
        return parsed
    raw, plain_lines = parsed
    source = SourceMap(text, plain_lines)
    document = read_document(raw)
    if document is None:
        # The fast reader declined: let the schema of record find and word the errors.
        from pydantic import ValidationError

        from hvcfilter.spec import schema
        from hvcfilter.spec.schema_errors import one_per_key, schema_diagnostic

        try:
            document = schema.to_document(schema.SpecDocumentModel.model_validate(raw))
        except ValidationError as exc:
            errors = exc.errors()
            found = one_per_key(schema_diagnostic(err, raw, filename, source) for err in errors)
            return LoadResult(filename, None, tuple(sorted(found, key=Diagnostic.sort_key)))
    spec, diags = resolve(document, filename, source, kernel=kernel)
    return LoadResult(filename, spec, diags)


def _parse_toml(
    text: str, filename: str
) -> tuple[dict[str, Any], list[PlainLine] | None] | LoadResult:
    """The TOML document and, if it is plain TOML, its lines; or its syntax error as a result.

    Plain TOML, which is what specs are written in, is read by the fast
    subset parser; tomllib reads the rest and words every syntax error.
    """
    try:
        plain = parse_plain_toml(text)
    except ValueError:  # int() refuses a number of over 4,300 digits: tomllib words it below
        plain = None
    if plain is not None:
        return plain.document, plain.lines
    import tomllib  # only for TOML outside the plain subset

    try:
        return tomllib.loads(text), None
    except RecursionError:
        return LoadResult(
            filename,
            None,
            (
                diag(
                    "HVF002",
                    "TOML syntax error: arrays or tables nested too deeply",
                    Location(filename),
                    "a spec nests at most [[range]] tables and lists of names",
                ),
            ),
        )
    except tomllib.TOMLDecodeError as exc:
        message, line, column = split_toml_error(str(exc))
        return LoadResult(
            filename,
            None,
            (
                diag(
                    "HVF002",
                    f"TOML syntax error: {message}",
                    Location(filename, line, column),
                    "fix the TOML syntax; hex numbers are written 0x84000000",
                ),
            ),
        )
    except ValueError:  # after TOMLDecodeError, its subclass: int() refused a huge number
        import re

        # int() refuses decimal strings longer than sys.get_int_max_str_digits().
        limit = sys.get_int_max_str_digits()
        huge = re.compile(rf"\d[\d_]{{{limit}}}")
        line = next((n for n, row in enumerate(text.splitlines(), 1) if huge.search(row)), None)
        return LoadResult(
            filename,
            None,
            (
                diag(
                    "HVF002",
                    f"TOML value error: an integer of over {limit:,} digits",
                    Location(filename, line),
                    "function IDs and counts fit 32 bits: 0xFFFFFFFF at most",
                ),
            ),
        )


def _unreadable(name: str, reason: str, hint: str | None) -> LoadResult:
    return LoadResult(
        name, None, (diag("HVF001", f"cannot read {name}: {reason}", Location(name), hint),)
    )
