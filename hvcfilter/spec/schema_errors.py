"""Schema errors in our words: each pydantic error as one diagnostic with a position.

Only documents the fast reader declines reach the schema; when it rejects
them, :func:`schema_diagnostic` words each error as the spec format speaks
(keys, TOML types, hex IDs) with the closest known key or name, and
:func:`one_per_key` keeps the useful complaint where a union field fails
once per member type.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from hvcfilter import smccc
from hvcfilter.diagnostics import Diagnostic
from hvcfilter.model import ENTRY_TYPES, SELECTOR_KEYS, FilterTable, SpecDocument, VmTable
from hvcfilter.spec.input_rules import diag
from hvcfilter.spec.source import KeyPath, SourceMap, format_key_path, location

__all__ = ["one_per_key", "schema_diagnostic"]

_ALLOWED_KEYS: dict[str, Sequence[str]] = {
    "": SpecDocument._fields,
    "filter": FilterTable._fields,
    "vm": VmTable._fields,
    **{kind: cls._fields for kind, cls in ENTRY_TYPES.items()},
}
_TAGS = frozenset(SELECTOR_KEYS.values())
_SELECTOR = {tag: selector for selector, tag in SELECTOR_KEYS.items()}
# Labels pydantic gives union members in error locations; spec keys are snake_case words.
_UNION_MEMBER = re.compile(r"^(?:str|int|bool|float|constrained-\w+|function-\w+|.*\[.*\])$")


def schema_diagnostic(
    err: Any, raw: dict[str, Any], filename: str, source: SourceMap
) -> Diagnostic:
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
    where = location(filename, source, loc)
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        table = tag or (str(loc[0]) if len(loc) > 1 else "")
        allowed = _ALLOWED_KEYS.get(table, ())
        field = str(loc[-1])
        others = _forms_taking(field, tag) if tag else []
        if tag and others:
            # A key of another range form ("convention" beside "base"): no typo to guess.
            said = (
                f"; {field} goes with {_a(' or '.join(others))} range, not {_a(_SELECTOR[tag])} one"
            )
        else:
            close = smccc.suggest(field, list(allowed))
            said = f"; did you mean {close[0]!r}?" if close else ""
        return diag(
            "HVF102",
            f"unknown key {key!r}{said}",
            where,
            f"allowed here: {', '.join(allowed)}" if allowed else None,
        )
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        entry = _dig(raw, loc)
        found = [k for k in SELECTOR_KEYS if isinstance(entry, dict) and k in entry]
        if not isinstance(entry, dict):
            return diag("HVF101", f"{key} must be a table, not {type(entry).__name__}", where, None)
        give = "give exactly one of base, function, functions, service, owner"
        typo = _unknown_key(entry) if not found else None
        if typo is not None:
            # "functin = ..." is most likely the selector, misspelt: say that, where it is.
            unknown, meant = typo
            said = f": did you mean {meant!r}?" if meant else ""
            return diag(
                "HVF103",
                f"{key} has no selector; unknown key {unknown!r}{said}",
                location(filename, source, (*loc, unknown)),
                give,
            )
        return diag(
            "HVF103",
            f"{key} has {'no selector' if not found else 'several selectors: ' + ', '.join(found)}",
            where,
            give,
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
        return diag(
            "HVF105",
            f"{key} = {shown} is out of range: it must be {bound}",
            where,
            "u32 fields hold 0..0xFFFFFFFF; KVM compares W0 only"
            if loc[-1] != "owner"
            else "owner numbers are 0..63",
        )
    if kind == "value_error":
        message = str(err["ctx"]["error"]) if "ctx" in err else err["msg"]
        return diag("HVF104", f"{key}: {message}", where, None)
    if kind in ("model_type", "dict_type"):
        return diag(
            "HVF101",
            f"{key} must be a table, not {_toml_type(value)}",
            where,
            f"write it as a [{key}] table" if len(loc) == 1 else None,
        )
    if kind == "missing":
        return diag("HVF101", f"{key} is required", where, _missing_hint(str(loc[-1])))
    if kind == "too_short":
        return diag("HVF101", f"{key} must not be empty", where, _empty_hint(str(loc[-1])))
    field = str(loc[-1])
    hint = (_list_hint(field, value) if kind == "list_type" else None) or _missing_hint(field)
    return diag("HVF101", f"{key}: {_describe(err['msg'])} (got {_show(value)})", where, hint)


_RANGE_KEYS = frozenset(key for cls in ENTRY_TYPES.values() for key in cls._fields)


def _unknown_key(entry: dict[str, Any]) -> tuple[str, str | None] | None:
    """A range's unknown key and the selector it is a typo of (None: of none); None if no key is.

    A key whose nearest known key is a selector comes first: it is most likely
    the missing one. ``actions`` is nearest to ``action``, not to ``functions``.
    """
    unknown = [str(k) for k in entry if k not in _RANGE_KEYS]
    for name in unknown:
        close = smccc.suggest(name, sorted(_RANGE_KEYS))
        if close and close[0] in SELECTOR_KEYS:
            return name, close[0]
    return (unknown[0], None) if unknown else None


def _forms_taking(field: str, tag: str) -> list[str]:
    """The selectors of the other range forms that take ``field``: convention, service and owner."""
    return [
        selector
        for selector, other in SELECTOR_KEYS.items()
        if other != tag and field in ENTRY_TYPES[other]._fields
    ]


def _a(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def one_per_key(diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Keep one diagnostic per key: a union field fails once per member type.

    ``owner = 64`` fails both as a number (too big) and as a name (not a
    string); the specific complaint is the useful one, the type mismatch
    against the other member is noise.
    """
    best: dict[str | None, Diagnostic] = {}
    for finding in diags:
        key = finding.location.key
        kept = best.get(key)
        if kept is None or (kept.code == "HVF101" and finding.code != "HVF101"):
            best[key] = finding
    return list(best.values())


def _list_hint(key: str, value: object) -> str | None:
    """For a list written as one value: the same value as a list of one."""
    if key not in ("functions", "allow", "std", "std_hyp", "vendor_hyp", "vendor_hyp_2"):
        return None
    if isinstance(value, str) and len(value) <= 60:
        shown = _toml_string(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        shown = f"{value:#x}"
    else:
        shown = '"..."'
    return f"write a list, even of one: {key} = [{shown}]"


def _toml_string(text: str) -> str:
    """``text`` as a TOML basic string of printable ASCII: safe to print and to paste back.

    Characters past U+FFFF get TOML's ``\\U`` escape: JSON's surrogate pairs are
    no Unicode scalar values, and TOML refuses them.
    """
    out = ['"']
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04X}")
        else:
            out.append(f"\\U{code:08X}")
    out.append('"')
    return "".join(out)


def _empty_hint(key: str) -> str | None:
    return {
        "functions": 'name at least one ID: functions = ["PSCI_CPU_ON_64"], or drop the entry',
        "allow": "name at least one code, or drop allow",
    }.get(key)


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
        # A list where one ID goes: the plural key takes several.
        "function": 'function takes one ID or name (function = "PSCI_CPU_ON_64"); several '
        'go in functions = ["PSCI_CPU_ON_64", "PSCI_CPU_OFF_32"]',
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
