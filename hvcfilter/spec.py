"""Spec files: TOML text in, a resolved :class:`~hvcfilter.model.FilterSpec` plus diagnostics out.

``load()`` never raises for bad input: unreadable files, TOML syntax errors and
schema errors all become diagnostics with a line and column, recovered by a
small scan of the source (``tomllib`` reports no positions). The scan runs
only when a diagnostic needs a position, so a clean spec pays nothing for it.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, cast

from hvcfilter import smccc
from hvcfilter.diagnostics import Diagnostic, Location, Severity
from hvcfilter.model import (
    ENTRY_TYPES,
    SELECTOR_KEYS,
    Action,
    ActionName,
    FilterRange,
    FilterSpec,
    FilterTable,
    FunctionEntry,
    FunctionsEntry,
    OwnerEntry,
    RawEntry,
    ServiceEntry,
    SpecDocument,
    SpecEntry,
    VmConfig,
    VmTable,
    parse_psci_version,
)
from hvcfilter.profiles import KernelProfile, get_profile

__all__ = [
    "DEFAULT_SPEC",
    "INPUT_RULES",
    "InputRule",
    "KeyPath",
    "LoadResult",
    "format_key_path",
    "load",
    "loads",
    "locate",
    "resolve_function",
]

DEFAULT_SPEC = "hvcfilter.toml"

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class InputRule:
    """A diagnostic the loader emits; ``doc`` is what ``hvcfilter explain`` prints."""

    code: str
    name: str
    severity: Severity
    doc: str


INPUT_RULES: tuple[InputRule, ...] = (
    InputRule(
        "HVF001",
        "unreadable-file",
        Severity.ERROR,
        """The spec file cannot be read.

It is missing, unreadable, a directory, or not UTF-8 text. The command exits
with code 2.

Fail: ``hvcfilter check missing.toml``.
Pass: a readable UTF-8 file.""",
    ),
    InputRule(
        "HVF002",
        "toml-syntax",
        Severity.ERROR,
        """The file is not valid TOML.

The message gives tomllib's reason and the position.

Fail: ``base = 0x8400000G``.
Pass: ``base = 0x84000000``.""",
    ),
    InputRule(
        "HVF101",
        "invalid-value",
        Severity.ERROR,
        """A value has the wrong type or is not one of the allowed values.

Fail: ``action = "allow"`` or ``base = "0x84000000"`` (a string, not a number).
Pass: ``action = "deny"`` and ``base = 0x84000000``.""",
    ),
    InputRule(
        "HVF102",
        "unknown-key",
        Severity.ERROR,
        """A key or table the spec format does not define.

Typos would otherwise be ignored silently, so every unknown key is an error
with the closest known key as a suggestion.

Fail: ``nr_function = 32``.
Pass: ``nr_functions = 32``.""",
    ),
    InputRule(
        "HVF103",
        "selector",
        Severity.ERROR,
        """A ``[[range]]`` needs exactly one selector.

The selectors are ``base`` (with ``nr_functions`` or ``end``), ``function``,
``functions``, ``service`` and ``owner``.

Fail: a range with both ``base`` and ``function``, or with neither.
Pass: ``function = "PSCI_CPU_ON_64"``.""",
    ),
    InputRule(
        "HVF104",
        "unknown-name",
        Severity.ERROR,
        """A name that hvcfilter does not know.

Function names come from the SMCCC catalogue (case-insensitive), services,
owners, kernel profiles and firmware-bitmap features from their tables. The
message suggests the closest names.

Fail: ``function = "PSCI_CPU_ONN_64"``.
Pass: ``function = "PSCI_CPU_ON_64"``.""",
    ),
    InputRule(
        "HVF105",
        "value-out-of-range",
        Severity.ERROR,
        """A number outside what the kernel ABI can hold.

Function IDs, ``base``, ``nr_functions`` and ``end`` are u32 in
``struct kvm_smccc_filter``: 0..0xFFFFFFFF. KVM compares only W0, the low 32
bits of x0, so a 64-bit ID cannot be filtered as such.

Fail: ``base = 0x1_84000000``.
Pass: ``base = 0x84000000``.""",
    ),
    InputRule(
        "HVF106",
        "range-extent",
        Severity.ERROR,
        """A raw range needs exactly one of ``nr_functions`` and ``end``.

Fail: ``base = 0x84000000`` alone, or with both ``nr_functions`` and ``end``.
Pass: ``base = 0x84000000`` with ``nr_functions = 0x20`` or ``end = 0x8400001F``.""",
    ),
    InputRule(
        "HVF107",
        "vm-config",
        Severity.WARNING,
        """The ``[vm]`` table asks for something the kernel profile refuses.

A firmware-bitmap register the kernel does not have (``vendor_hyp_2`` before
Linux 6.15: ENOENT) or a PSCI version it does not accept (1.2 and 1.3 on 6.12:
EINVAL) makes a VMM's ``KVM_SET_ONE_REG`` fail. The filter table itself is
unaffected, so this is a warning; the emulated VM of ``simulate`` and
``explain --spec`` keeps the kernel's default for that setting.

Fail: ``[filter] kernel = "6.12"`` with ``[vm] psci_version = "1.3"``.
Pass: ``[filter] kernel = "7.2"`` with ``[vm] psci_version = "1.3"``.""",
    ),
    InputRule(
        "HVF108",
        "unknown-allow",
        Severity.WARNING,
        """An ``allow`` list names a finding that cannot be accepted.

``allow = ["HVF303"]`` in a ``[[range]]`` (or in ``[filter]`` for the whole
spec) accepts the warnings and notes a reviewer has judged, by code or by
name. A code or name no rule has is probably a typo, and an error cannot be
accepted at all: the kernel rejects the table whatever the spec says.

Fail: ``allow = ["HVF999"]`` or ``allow = ["HVF201"]``.
Pass: ``allow = ["forwards-kernel-call"]`` on a range that forwards PSCI CPU_ON.""",
    ),
)
_RULES = {rule.code: rule for rule in INPUT_RULES}


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What loading one spec gave: the spec (None when it could not be understood) and findings."""

    path: str
    spec: FilterSpec | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def unreadable(self) -> bool:
        """The file itself could not be read (exit code 2 territory)."""
        return any(d.code == "HVF001" for d in self.diagnostics)


def format_key_path(path: KeyPath) -> str:
    """``("range", 3, "base")`` -> ``"range[3].base"``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def load(path: str | Path) -> LoadResult:
    """Read and resolve one spec file (``-`` is stdin); never raises for bad input."""
    name = str(path)
    try:
        if name == "-":
            name, data = "<stdin>", sys.stdin.buffer.read()
        else:
            data = Path(path).read_bytes()
    except FileNotFoundError:
        return _unreadable(
            name, "no such file", f"create it, or pass a spec path (default {DEFAULT_SPEC})"
        )
    except IsADirectoryError:
        return _unreadable(name, "is a directory", "pass the path of a .toml spec file")
    except OSError as exc:
        return _unreadable(name, exc.strerror or str(exc), None)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return LoadResult(
            name,
            None,
            (
                _diag(
                    "HVF001",
                    f"not UTF-8 text: byte {data[exc.start]:#04x} at offset {exc.start}",
                    Location(name, line, exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1),
                    "save the spec as UTF-8",
                ),
            ),
        )
    return loads(text, name)


def loads(text: str, filename: str = "<string>") -> LoadResult:
    """Parse and resolve spec text; never raises for bad input."""
    # Editors on Windows start UTF-8 files with a byte-order mark; TOML has no place for it.
    text = text.removeprefix("\ufeff")
    source = _SourceMap(text)
    try:
        raw = tomllib.loads(text)
    except RecursionError:
        return LoadResult(
            filename,
            None,
            (
                _diag(
                    "HVF002",
                    "TOML syntax error: arrays or tables nested too deeply",
                    Location(filename),
                    "a spec nests at most [[range]] tables and lists of names",
                ),
            ),
        )
    except tomllib.TOMLDecodeError as exc:
        message, line, column = _split_toml_error(str(exc))
        return LoadResult(
            filename,
            None,
            (
                _diag(
                    "HVF002",
                    f"TOML syntax error: {message}",
                    Location(filename, line, column),
                    "fix the TOML syntax; hex numbers are written 0x84000000",
                ),
            ),
        )
    document = read_document(raw)
    if document is None:
        # The fast reader declined: let the schema of record find and word the errors.
        from pydantic import ValidationError

        from hvcfilter import schema

        try:
            document = schema.to_document(schema.SpecDocumentModel.model_validate(raw))
        except ValidationError as exc:
            errors = exc.errors()
            diags = _one_per_key(_schema_diag(err, raw, filename, source) for err in errors)
            return LoadResult(filename, None, tuple(sorted(diags, key=Diagnostic.sort_key)))
    return _resolve(document, filename, source)


# --------------------------------------------------------------------------- fast reader
#
# The schema of record is hvcfilter.schema (pydantic). Importing pydantic and
# building its models is most of a cold `hvcfilter check`, so well-formed
# documents are read here by plain Python that accepts a subset of what the
# schema accepts and returns None for anything else, which then goes to the
# schema for its errors. tests/property/test_schema_properties.py holds the
# two to the same answers.

_U32_MAX = smccc.FUNCTION_ID_MAX
_ACTIONS = frozenset({"handle", "deny", "fwd_to_user"})
_CONVENTIONS = frozenset({"smc32", "smc64"})
_CALLS = frozenset({"fast", "yield"})
_LAYOUTS = frozenset({"merged", "sorted", "as-written"})
_ALLOW_ITEM = re.compile(r"(?:HVF\d{3}|[a-z0-9]+(?:-[a-z0-9]+)*)")
_TOP_KEYS = frozenset({"filter", "vm", "range"})
_FILTER_KEYS = frozenset(f.name for f in fields(FilterTable))
_VM_KEYS = frozenset(f.name for f in fields(VmTable))
_ENTRY_KEYS = {kind: frozenset(cls._fields) for kind, cls in ENTRY_TYPES.items()}
_SELECTORS = frozenset(SELECTOR_KEYS)
_COMMON_RAW = frozenset({"action", "base", "nr_functions"})


class _Declined(Exception):
    """The fast reader leaves this document to the schema."""


def _u32(value: object) -> int:
    # type() rather than isinstance(): TOML booleans are ints to Python, not to the schema.
    if type(value) is int and 0 <= value <= _U32_MAX:
        return value
    raise _Declined


def _optional(table: dict[str, Any], key: str, check: Callable[[Any], Any]) -> Any:
    value = table.get(key)
    return None if value is None else check(value)


def _text(value: object) -> str:
    if type(value) is str:
        return value
    raise _Declined


def _texts(value: object) -> tuple[str, ...]:
    if type(value) is list and all(type(v) is str for v in value):
        return tuple(value)
    raise _Declined


def _allow(value: object) -> tuple[str, ...]:
    items = _texts(value)
    if all(_ALLOW_ITEM.fullmatch(item) for item in items):
        return items
    raise _Declined


def _one_of(choices: frozenset[str]) -> Callable[[object], str]:
    def check(value: object) -> str:
        if type(value) is str and value in choices:
            return value
        raise _Declined

    return check


def _action(value: object) -> ActionName:
    if type(value) is str and value in _ACTIONS:
        return cast("ActionName", value)
    raise _Declined


def _function_ref(value: object) -> int | str:
    return value if type(value) is str else _u32(value)


def _known(parse: Callable[[str], object]) -> Callable[[object], str]:
    def check(value: object) -> str:
        text = _text(value)
        try:
            parse(text)
        except ValueError:
            raise _Declined from None
        return text

    return check


def _owner(value: object) -> int | str:
    if type(value) is int and 0 <= value <= 63:
        return value
    return _known(smccc.parse_owner)(value)


def _entry(item: object) -> SpecEntry:
    if type(item) is not dict:
        raise _Declined
    keys = item.keys()
    action = _action(item.get("action"))
    if keys == _COMMON_RAW:  # the shape of big generated tables: keep it short
        return RawEntry(action, _u32(item["base"]), _u32(item["nr_functions"]))
    selector = keys & _SELECTORS
    if len(selector) != 1:
        raise _Declined
    kind = SELECTOR_KEYS[selector.pop()]
    if not keys <= _ENTRY_KEYS[kind]:
        raise _Declined
    comment = _optional(item, "comment", _text)
    allow = _optional(item, "allow", _allow)
    convention = _optional(item, "convention", _one_of(_CONVENTIONS))
    if kind == "raw":
        return RawEntry(
            action,
            _u32(item["base"]),
            _optional(item, "nr_functions", _u32),
            _optional(item, "end", _u32),
            comment,
            allow,
        )
    if kind == "function":
        return FunctionEntry(action, _function_ref(item["function"]), comment, allow)
    if kind == "functions":
        refs = item["functions"]
        if type(refs) is not list or not refs:
            raise _Declined
        return FunctionsEntry(action, tuple(map(_function_ref, refs)), comment, allow)
    if kind == "service":
        service = _known(smccc.parse_service)(item["service"])
        return ServiceEntry(action, service, convention, comment, allow)
    call = _optional(item, "call", _one_of(_CALLS))
    return OwnerEntry(action, _owner(item["owner"]), convention, call, comment, allow)


def _table(raw: dict[str, Any], key: str, allowed: frozenset[str]) -> dict[str, Any]:
    table = raw.get(key, {})
    if type(table) is not dict or not table.keys() <= allowed:
        raise _Declined
    return table


def read_document(raw: dict[str, Any]) -> SpecDocument | None:
    """The document of a well-formed spec, or None to leave it to :mod:`hvcfilter.schema`.

    Never wrong where it answers: every document it returns is the one the
    schema would return, and it declines everything it is not sure of.
    """
    try:
        if not raw.keys() <= _TOP_KEYS:
            raise _Declined
        head = _table(raw, "filter", _FILTER_KEYS)
        vm = _table(raw, "vm", _VM_KEYS)
        entries = raw.get("range", [])
        if type(entries) is not list:
            raise _Declined
        return SpecDocument(
            FilterTable(
                _optional(head, "name", _text),
                _optional(head, "description", _text),
                _optional(head, "kernel", _known(get_profile)),
                _optional(head, "allow", _allow),
                _optional(head, "layout", _one_of(_LAYOUTS)),
            ),
            VmTable(
                _optional(vm, "psci_version", _known(parse_psci_version)),
                *(_optional(vm, name, _texts) for name in _VM_FEATURE_TABLES),
            ),
            tuple(map(_entry, entries)),
        )
    except _Declined:
        return None


_VM_FEATURE_TABLES = ("std", "std_hyp", "vendor_hyp", "vendor_hyp_2")


def resolve_function(ref: int | str) -> int:
    """A function reference from a spec: a catalogue name, a number, or a hex string.

    Raises:
        KeyError: an unknown name (the message suggests close ones).
        ValueError: a number outside 0..0xFFFFFFFF.
    """
    if isinstance(ref, int):
        if not 0 <= ref <= smccc.FUNCTION_ID_MAX:
            raise ValueError(f"function ID {ref:#x} is outside 0..0xFFFFFFFF")
        return ref
    text = ref.strip()
    if text.lower().startswith("0x"):
        try:
            return resolve_function(int(text, 16))
        except ValueError:
            if not re.fullmatch(r"0[xX][0-9a-fA-F_]+", text):
                raise ValueError(f"{ref!r} is not a hex number") from None
            raise
    return smccc.catalogue().by_name(text).function_id


def _resolve(document: SpecDocument, filename: str, source: _SourceMap) -> LoadResult:
    profile = get_profile(document.filter.kernel)
    diags: list[Diagnostic] = []
    ranges: list[FilterRange] = []
    append = ranges.append
    for index, entry in enumerate(document.range):
        action = Action.parse(entry.action)
        # The common case of big generated tables, kept out of the generator below.
        if type(entry) is RawEntry and entry.end is None and entry.nr_functions is not None:
            append(FilterRange(entry.base, entry.nr_functions, action, index))
            continue
        try:
            for first, count in _entry_extents(entry):
                ranges.append(FilterRange(first, count, action, index))
        except _EntryProblem as problem:
            diags.append(
                _diag(
                    problem.code,
                    problem.message,
                    _location(filename, source, ("range", index, *problem.key)),
                    problem.hint,
                )
            )
    vm, vm_diags = _vm_config(document.vm, profile, filename, source)
    diags.extend(vm_diags)
    spec = FilterSpec(
        path=filename,
        profile=profile,
        name=document.filter.name,
        description=document.filter.description,
        entries=tuple(document.range),
        ranges=tuple(ranges),
        vm=vm,
        locate=source.locate,
        layout=document.filter.layout or "merged",
        allow=tuple(document.filter.allow or ()),
    )
    # Warnings (a [vm] setting the kernel refuses) leave a usable spec; errors do not.
    failed = any(d.severity is Severity.ERROR for d in diags)
    return LoadResult(filename, None if failed else spec, tuple(diags))


class _EntryProblem(Exception):
    def __init__(self, code: str, message: str, key: KeyPath, hint: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.key, self.hint = code, message, key, hint


def _entry_extents(
    entry: RawEntry | FunctionEntry | FunctionsEntry | ServiceEntry | OwnerEntry,
) -> Iterator[tuple[int, int]]:
    """(base, nr_functions) pairs for one entry, as raw u32 fields."""
    if isinstance(entry, RawEntry):
        if (entry.nr_functions is None) == (entry.end is None):
            both = entry.nr_functions is not None
            raise _EntryProblem(
                "HVF106",
                "both nr_functions and end are given" if both else "base needs nr_functions or end",
                ("nr_functions" if both else "base",),
                "give exactly one of nr_functions = COUNT and end = LAST_ID (inclusive)",
            )
        if entry.nr_functions is not None:
            yield entry.base, entry.nr_functions
        else:
            assert entry.end is not None
            # Keep the kernel's 32-bit view: an end below base becomes a wrapping count.
            yield entry.base, (entry.end - entry.base + 1) & smccc.FUNCTION_ID_MAX
    elif isinstance(entry, FunctionEntry):
        fid = _function(entry.function, ("function",))
        yield fid, 1
    elif isinstance(entry, FunctionsEntry):
        ids = sorted({_function(ref, ("functions", i)) for i, ref in enumerate(entry.functions)})
        for rng in smccc.merge_ranges([smccc.IdRange(i, i) for i in ids]):
            yield rng.first, rng.count
    elif isinstance(entry, ServiceEntry):
        service = smccc.parse_service(entry.service)
        for rng in smccc.service_ranges(service, _conventions(entry.convention)):
            yield rng.first, rng.count
    else:
        owners = smccc.parse_owner(entry.owner)
        calls = (
            [smccc.CallType(entry.call)]
            if entry.call
            else [smccc.CallType.FAST, smccc.CallType.YIELD]
        )
        for rng in smccc.owner_ranges(owners, _conventions(entry.convention), calls):
            yield rng.first, rng.count


def _conventions(name: str | None) -> list[smccc.Convention]:
    return [smccc.Convention(name)] if name else [smccc.Convention.SMC32, smccc.Convention.SMC64]


def _function(ref: int | str, key: KeyPath) -> int:
    try:
        return resolve_function(ref)
    except KeyError as exc:
        raise _EntryProblem(
            "HVF104",
            str(exc.args[0]),
            key,
            "use a name from `hvcfilter explain NAME` or the numeric ID",
        ) from None
    except ValueError as exc:
        raise _EntryProblem("HVF105", str(exc), key, "function IDs are 32-bit (W0)") from None


def _vm_config(
    table: VmTable, profile: KernelProfile, filename: str, source: _SourceMap
) -> tuple[VmConfig, list[Diagnostic]]:
    diags: list[Diagnostic] = []
    psci = None
    if table.psci_version is not None:
        psci = parse_psci_version(table.psci_version)
        if psci not in profile.psci_versions_accepted:
            accepted = ", ".join(f"{a}.{b}" for a, b in profile.psci_versions_accepted)
            diags.append(
                _diag(
                    "HVF107",
                    f"kernel {profile.name} refuses PSCI version {table.psci_version} (EINVAL); "
                    "the emulated VM keeps the default",
                    _location(filename, source, ("vm", "psci_version")),
                    f"kernel {profile.name} accepts {accepted}",
                )
            )
            psci = None
    bitmaps: dict[int, int] = {}
    for reg_name in _VM_FEATURE_TABLES:
        features: list[str] | None = getattr(table, reg_name)
        if features is None:
            continue
        register = profile.register_by_name(reg_name)
        if register is None:
            diags.append(
                _diag(
                    "HVF107",
                    f"kernel {profile.name} has no {reg_name} firmware bitmap register (ENOENT); "
                    "the emulated VM ignores it",
                    _location(filename, source, ("vm", reg_name)),
                    "remove it, or target a kernel that has it ([filter] kernel)",
                )
            )
            continue
        value = 0
        for i, feature in enumerate(features):
            bit = register.bits.get(feature.strip().lower().replace("_", "-"))
            if bit is None:
                close = smccc.suggest(feature, list(register.bits))
                diags.append(
                    _diag(
                        "HVF104",
                        f"unknown {reg_name} feature {feature!r}"
                        + (f"; did you mean {close[0]!r}?" if close else ""),
                        _location(filename, source, ("vm", reg_name, i)),
                        f"{reg_name} features: {', '.join(register.bits)}",
                    )
                )
                continue
            value |= 1 << bit
        bitmaps[register.index] = value
    return VmConfig(psci, bitmaps), diags


_ALLOWED_KEYS: dict[str, Sequence[str]] = {
    "": tuple(f.name for f in fields(SpecDocument)),
    "filter": tuple(f.name for f in fields(FilterTable)),
    "vm": tuple(f.name for f in fields(VmTable)),
    **{kind: cls._fields for kind, cls in ENTRY_TYPES.items()},
}
_TAGS = frozenset(SELECTOR_KEYS.values())
# Labels pydantic gives union members in error locations; spec keys are snake_case words.
_UNION_MEMBER = re.compile(r"^(?:str|int|bool|float|constrained-\w+|function-\w+|.*\[.*\])$")


def _schema_diag(err: Any, raw: dict[str, Any], filename: str, source: _SourceMap) -> Diagnostic:
    """Turn one pydantic error into a diagnostic with our words and a position."""
    loc: tuple[str | int, ...] = tuple(err["loc"])
    tag = None
    # Drop the union tag pydantic puts after "range", N: it is our type, not a key.
    if len(loc) >= 3 and loc[0] == "range" and loc[2] in _TAGS:
        tag = str(loc[2])
        loc = loc[:2] + loc[3:]
    # ... and the member-type labels of union fields ("owner.constrained-int").
    loc = tuple(part for part in loc if not (isinstance(part, str) and _UNION_MEMBER.match(part)))
    key = format_key_path(loc)
    where = _location(filename, source, loc)
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        table = tag or (str(loc[0]) if len(loc) > 1 else "")
        allowed = _ALLOWED_KEYS.get(table, ())
        close = smccc.suggest(str(loc[-1]), list(allowed))
        return _diag(
            "HVF102",
            f"unknown key {key!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
            where,
            f"allowed here: {', '.join(allowed)}" if allowed else None,
        )
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        entry = _dig(raw, loc)
        found = [k for k in SELECTOR_KEYS if isinstance(entry, dict) and k in entry]
        if not isinstance(entry, dict):
            return _diag(
                "HVF101", f"{key} must be a table, not {type(entry).__name__}", where, None
            )
        return _diag(
            "HVF103",
            f"{key} has {'no selector' if not found else 'several selectors: ' + ', '.join(found)}",
            where,
            "give exactly one of base, function, functions, service, owner",
        )
    if kind in ("less_than_equal", "greater_than_equal", "too_long"):
        # Owner numbers are small and documented in decimal; IDs and counts in hex.
        number = "{}" if loc[-1] == "owner" else "{:#x}"
        shown = number.format(value) if isinstance(value, int) else repr(value)
        ctx = err.get("ctx", {})
        bound = (
            "at most " + number.format(ctx["le"])
            if "le" in ctx
            else "at least " + number.format(ctx["ge"])
            if "ge" in ctx
            else _describe(err["msg"])
        )
        return _diag(
            "HVF105",
            f"{key} = {shown} is out of range: it must be {bound}",
            where,
            "u32 fields hold 0..0xFFFFFFFF; KVM compares W0 only"
            if loc[-1] != "owner"
            else "owner numbers are 0..63",
        )
    if kind == "value_error":
        message = str(err["ctx"]["error"]) if "ctx" in err else err["msg"]
        return _diag("HVF104", f"{key}: {message}", where, None)
    if kind in ("model_type", "dict_type"):
        return _diag(
            "HVF101",
            f"{key} must be a table, not {_toml_type(value)}",
            where,
            f"write it as a [{key}] table" if len(loc) == 1 else None,
        )
    if kind == "missing":
        return _diag("HVF101", f"{key} is required", where, _missing_hint(str(loc[-1])))
    if kind == "too_short":
        return _diag("HVF101", f"{key} must not be empty", where, None)
    return _diag(
        "HVF101",
        f"{key}: {_describe(err['msg'])} (got {_show(value)})",
        where,
        _missing_hint(str(loc[-1])),
    )


def _one_per_key(diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Keep one diagnostic per key: a union field fails once per member type.

    ``owner = 64`` fails both as a number (too big) and as a name (not a
    string); the specific complaint is the useful one, the type mismatch
    against the other member is noise.
    """
    best: dict[str | None, Diagnostic] = {}
    for diag in diags:
        key = diag.location.key
        kept = best.get(key)
        if kept is None or (kept.code == "HVF101" and diag.code != "HVF101"):
            best[key] = diag
    return list(best.values())


def _missing_hint(key: str) -> str | None:
    return {
        "action": 'action is one of "handle", "deny", "fwd_to_user"',
        "base": "write IDs as TOML integers: base = 0x84000000",
        "nr_functions": "write counts as TOML integers: nr_functions = 0x20",
        "end": "write IDs as TOML integers: end = 0x8400001F",
        "convention": 'convention is "smc32" or "smc64"',
        "call": 'call is "fast" or "yield"',
        "kernel": 'write the kernel profile as a string: kernel = "6.12"',
        "psci_version": 'write the version as a string: psci_version = "1.1"',
        "name": 'write it as a string: name = "my-vmm"',
        "description": "write it as a string",
        "comment": "write it as a string",
        "layout": 'layout is "merged", "sorted" or "as-written"',
        "range": "write each entry as a [[range]] table",
    }.get(key)


def _toml_type(value: object) -> str:
    """How TOML calls a value's type, for messages: table, array, string, integer..."""
    if isinstance(value, bool):
        return "a boolean"
    return {dict: "a table", list: "an array", str: "a string", int: "an integer"}.get(
        type(value), f"a {type(value).__name__}"
    )


def _describe(msg: str) -> str:
    return msg[0].lower() + msg[1:] if msg else msg


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _dig(raw: Any, loc: KeyPath) -> Any:
    node = raw
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _diag(code: str, message: str, location: Location, hint: str | None) -> Diagnostic:
    rule = _RULES[code]
    return Diagnostic(code, rule.name, rule.severity, message, location, hint)


def _unreadable(name: str, reason: str, hint: str | None) -> LoadResult:
    return LoadResult(
        name, None, (_diag("HVF001", f"cannot read {name}: {reason}", Location(name), hint),)
    )


def _location(filename: str, source: _SourceMap, path: KeyPath) -> Location:
    found = source.locate(path)
    key = format_key_path(path) or None
    if found is None:
        return Location(filename, key=key)
    return Location(filename, found[0], found[1], key)


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def _split_toml_error(message: str) -> tuple[str, int | None, int | None]:
    match = _TOML_POSITION.search(message)
    if not match:
        return message, None, None
    return message[: match.start()], int(match.group(1)), int(match.group(2))


_HEADER = re.compile(r"\s*(\[\[?)\s*([A-Za-z0-9_\-\"'. ]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"\s*([A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*')\s*=")


class _SourceMap:
    """Positions of tables and keys in TOML source, found by a line scan on first use.

    tomllib reports no positions, and a full position-keeping parser would
    slow every load; this scan understands just enough TOML (table headers,
    arrays of tables, ``key =`` lines, multi-line strings) to point at a line.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._index: dict[KeyPath, tuple[int, int]] | None = None

    def locate(self, path: KeyPath) -> tuple[int, int] | None:
        """The (line, column) of the longest known prefix of ``path``."""
        index = self._index if self._index is not None else self._build()
        for end in range(len(path), 0, -1):
            found = index.get(path[:end])
            if found is not None:
                return found
        return None

    def _build(self) -> dict[KeyPath, tuple[int, int]]:
        index: dict[KeyPath, tuple[int, int]] = {}
        counts: dict[str, int] = {}
        table: KeyPath = ()
        in_string: str | None = None
        for number, line in enumerate(self._text.splitlines(), start=1):
            if in_string:
                if line.count(in_string) % 2 == 1:
                    in_string = None
                continue
            stripped = line.lstrip()
            if not stripped or stripped.startswith("#"):
                continue
            column = len(line) - len(stripped) + 1
            header = _HEADER.match(line) if stripped.startswith("[") else None
            if header:
                name = header.group(2).strip().strip("\"'")
                if header.group(1) == "[[":
                    position = counts.get(name, 0)
                    counts[name] = position + 1
                    table = (name, position)
                else:
                    table = tuple(name.split("."))
                index.setdefault(table, (number, column))
                continue
            key = _KEY.match(line)
            if key:
                index.setdefault((*table, key.group(1).strip("\"'")), (number, column))
            # The character scan is slow; most lines have no triple quote at all.
            if '"""' in line or "'''" in line:
                in_string = _open_multiline(line)
        self._index = index
        return index


def _open_multiline(line: str) -> str | None:
    """The delimiter of a multi-line string that ``line`` opens and leaves open, if any.

    Triple quotes inside one-line literal strings and comments do not count.
    """
    i = 0
    while i < len(line):
        char = line[i]
        if char == "#":
            return None
        delimiter = line[i : i + 3]
        if delimiter in ('"""', "'''"):
            end = line.find(delimiter, i + 3)
            if end < 0:
                return delimiter
            i = end + 3
        elif char in "\"'":
            i += 1
            while i < len(line) and line[i] != char:
                i += 2 if char == '"' and line[i] == "\\" else 1
            i += 1
        else:
            i += 1
    return None


def locate(spec: FilterSpec, path: KeyPath) -> Location:
    """The :class:`Location` of a key path in a loaded spec, e.g. ``("range", 3, "base")``."""
    found = spec.locate(path)
    key = format_key_path(path) or None
    if found is None:
        return Location(spec.path, key=key)
    return Location(spec.path, found[0], found[1], key)
