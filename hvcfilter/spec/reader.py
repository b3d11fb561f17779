"""The fast reader: well-formed spec documents to model values, without pydantic.

The schema of record is :mod:`hvcfilter.spec.schema` (pydantic). Importing
pydantic and building its models is most of a cold ``hvcfilter check``, so
well-formed documents are read here by plain Python that accepts a subset
of what the schema accepts and returns None for anything else, which then
goes to the schema for its errors. ``tests/property/test_schema_properties.py``
holds the two to the same answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

from hvcfilter import smccc
from hvcfilter.kernel.profiles import get_profile
from hvcfilter.model import (
    ENTRY_TYPES,
    SELECTOR_KEYS,
    VM_BITMAP_KEYS,
    ActionName,
    FilterTable,
    FunctionEntry,
    FunctionsEntry,
    OwnerEntry,
    RawEntry,
    ServiceEntry,
    SpecDocument,
    SpecEntry,
    VmTable,
    parse_psci_version,
)

__all__ = ["read_document"]

_U32_MAX = smccc.FUNCTION_ID_MAX
_ACTIONS = frozenset({"handle", "deny", "fwd_to_user"})
_CONVENTIONS = frozenset({"smc32", "smc64"})
_CALLS = frozenset({"fast", "yield"})
_LAYOUTS = frozenset({"merged", "sorted", "as-written"})
_ALLOW_ITEM = re.compile(r"(?:HVF\d{3}|[a-z0-9]+(?:-[a-z0-9]+)*)")
_TOP_KEYS = frozenset({"filter", "vm", "range"})
_FILTER_KEYS = frozenset(FilterTable._fields)
_VM_KEYS = frozenset(VmTable._fields)
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
    """The document of a well-formed spec, or None to leave it to :mod:`hvcfilter.spec.schema`.

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
                *(_optional(vm, name, _texts) for name in VM_BITMAP_KEYS),
            ),
            tuple(map(_entry, entries)),
        )
    except _Declined:
        return None
