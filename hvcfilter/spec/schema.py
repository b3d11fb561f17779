"""The spec schema of record, as pydantic models: the full check of every field, with its errors.

:func:`hvcfilter.spec.loads` reads well-formed documents with a small
hand-written reader (:mod:`.reader`) and comes here only when that reader
declines, so that the common case never imports pydantic (it is most of a
cold start). These models define what a spec may say;
``tests/property/test_schema_properties.py`` holds the fast reader to them.
Their errors become diagnostics in :mod:`.schema_errors`; :func:`to_document`
converts a valid document
to the plain value types of :mod:`hvcfilter.model`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from hvcfilter import smccc
from hvcfilter.kernel.profiles import get_profile
from hvcfilter.model import (
    ENTRY_TYPES,
    SELECTOR_KEYS,
    FilterTable,
    SpecDocument,
    SpecEntry,
    VmTable,
    parse_psci_version,
)
from hvcfilter.spec.schema_docs import field_doc as _doc

__all__ = [
    "ALLOW_PATTERN",
    "EntryModel",
    "FilterTableModel",
    "SpecDocumentModel",
    "VmTableModel",
    "to_document",
]

U32_MAX = 0xFFFF_FFFF
# An allow item: a diagnostic code (HVF303) or a rule name (forwards-kernel-call).
ALLOW_PATTERN = r"^(?:HVF\d{3}|[a-z0-9]+(?:-[a-z0-9]+)*)$"

ActionName = Literal["handle", "deny", "fwd_to_user"]
U32 = Annotated[int, Field(ge=0, le=U32_MAX, strict=True)]
FunctionRef = Annotated[int, Field(ge=0, le=U32_MAX, strict=True)] | str
ConventionName = Literal["smc32", "smc64"]
LayoutName = Literal["merged", "sorted", "as-written"]
CallName = Literal["fast", "yield"]

_STRICT = ConfigDict(frozen=True, extra="forbid", strict=True)


# Findings a reviewer has accepted, by code (HVF303) or name (forwards-kernel-call).
AllowList = list[Annotated[str, Field(pattern=ALLOW_PATTERN)]]


class _EntryBase(BaseModel):
    model_config = _STRICT

    def to_entry(self) -> SpecEntry:
        """The plain :mod:`hvcfilter.model` entry with the same fields."""
        kind = ENTRY_KINDS[type(self)]
        values = {k: _frozen(v) for k, v in self}
        return ENTRY_TYPES[kind](**values)

    action: Annotated[ActionName, _doc("action")]
    comment: Annotated[str | None, _doc("comment")] = None
    allow: Annotated[AllowList | None, _doc("allow")] = None


class RawEntryModel(_EntryBase):
    """``base`` with ``nr_functions`` or an inclusive ``end``: a record as the kernel takes it."""

    base: Annotated[U32, _doc("base")]
    nr_functions: Annotated[U32 | None, _doc("nr_functions")] = None
    end: Annotated[U32 | None, _doc("end")] = None


class FunctionEntryModel(_EntryBase):
    """``function``: one ID, by catalogue name or number."""

    function: Annotated[FunctionRef, _doc("function")]


class FunctionsEntryModel(_EntryBase):
    """``functions``: several IDs, compiled into the fewest ranges."""

    functions: Annotated[list[FunctionRef], Field(min_length=1), _doc("functions")]


class ServiceEntryModel(_EntryBase):
    """``service``: a service family's function-number block, optionally one convention."""

    service: Annotated[str, _doc("service")]
    convention: Annotated[ConventionName | None, _doc("convention")] = None

    @field_validator("service")
    @classmethod
    def _known_service(cls, value: str) -> str:
        smccc.parse_service(value)
        return value


class OwnerEntryModel(_EntryBase):
    """``owner``: every ID of an owning entity, optionally one convention and call type."""

    owner: Annotated[Annotated[int, Field(ge=0, le=63, strict=True)] | str, _doc("owner")]
    convention: Annotated[ConventionName | None, _doc("convention")] = None
    call: Annotated[CallName | None, _doc("call")] = None

    @field_validator("owner")
    @classmethod
    def _known_owner(cls, value: int | str) -> int | str:
        smccc.parse_owner(value)
        return value


_SELECTOR_SET = frozenset(SELECTOR_KEYS)


def _selector_tag(value: Any) -> str | None:
    """Pick the entry type by the one selector key present (None: let pydantic complain)."""
    if not isinstance(value, dict):
        return None
    # A C-level set intersection: this runs once per [[range]], 100,000 times in big specs.
    present = value.keys() & _SELECTOR_SET
    if len(present) != 1:
        return None
    return SELECTOR_KEYS[present.pop()]


EntryModel = Annotated[
    Annotated[RawEntryModel, Tag("raw")]
    | Annotated[FunctionEntryModel, Tag("function")]
    | Annotated[FunctionsEntryModel, Tag("functions")]
    | Annotated[ServiceEntryModel, Tag("service")]
    | Annotated[OwnerEntryModel, Tag("owner")],
    Discriminator(_selector_tag),
]


class FilterTableModel(BaseModel):
    """The ``[filter]`` table: what the table is and which kernel it targets."""

    model_config = _STRICT

    name: Annotated[str | None, _doc("name")] = None
    description: Annotated[str | None, _doc("description")] = None
    kernel: Annotated[str | None, _doc("kernel")] = None
    allow: Annotated[AllowList | None, _doc("filter.allow")] = None
    # How compile lays out records: "merged" (default: sorted by base, adjacent
    # same-action ranges merged across entries), "sorted" (one record per
    # range, as --no-merge), "as-written" (one record per range in spec order,
    # so that decompile can reproduce any payload byte for byte).
    layout: Annotated[LayoutName | None, _doc("layout")] = None

    @field_validator("kernel")
    @classmethod
    def _known_kernel(cls, value: str | None) -> str | None:
        get_profile(value)
        return value


class VmTableModel(BaseModel):
    """The ``[vm]`` table: how the emulated VM is configured for dry-runs."""

    model_config = _STRICT

    psci_version: Annotated[str | None, _doc("psci_version")] = None
    std: Annotated[list[str] | None, _doc("std")] = None
    std_hyp: Annotated[list[str] | None, _doc("std_hyp")] = None
    vendor_hyp: Annotated[list[str] | None, _doc("vendor_hyp")] = None
    vendor_hyp_2: Annotated[list[str] | None, _doc("vendor_hyp_2")] = None

    @field_validator("psci_version")
    @classmethod
    def _version_shape(cls, value: str | None) -> str | None:
        if value is not None:
            parse_psci_version(value)
        return value


class SpecDocumentModel(BaseModel):
    """The whole TOML document."""

    model_config = _STRICT

    filter: Annotated[FilterTableModel, _doc("filter")] = FilterTableModel()
    vm: Annotated[VmTableModel, _doc("vm")] = VmTableModel()
    range: Annotated[list[EntryModel], _doc("range")] = []


ENTRY_KINDS: dict[type[_EntryBase], str] = {
    RawEntryModel: "raw",
    FunctionEntryModel: "function",
    FunctionsEntryModel: "functions",
    ServiceEntryModel: "service",
    OwnerEntryModel: "owner",
}


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def to_document(model: SpecDocumentModel) -> SpecDocument:
    """The plain :class:`~hvcfilter.model.SpecDocument` of a validated document."""
    return SpecDocument(
        filter=FilterTable(**{k: _frozen(v) for k, v in model.filter}),
        vm=VmTable(**{k: _frozen(v) for k, v in model.vm}),
        range=tuple(entry.to_entry() for entry in model.range),
    )
