"""The spec model: what a filter spec says, validated field by field.

Two layers live here. The pydantic models (``*Entry``, ``FilterTable``,
``VmTable``, ``SpecDocument``) are the schema of the TOML file and check each
field on its own (types, 32-bit bounds, known names). The frozen dataclasses
(``FilterRange``, ``FilterSpec``) are the resolved form every later stage
works on: one ``FilterRange`` per record the kernel will receive. Checks that
relate several fields or ranges belong in ``checks.py``, not here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from hvcfilter import smccc
from hvcfilter.profiles import KernelProfile, get_profile

__all__ = [
    "SELECTOR_KEYS",
    "Action",
    "FilterRange",
    "FilterSpec",
    "FilterTable",
    "FunctionEntry",
    "FunctionsEntry",
    "LayoutName",
    "OwnerEntry",
    "RangeEntry",
    "RawEntry",
    "ServiceEntry",
    "SpecDocument",
    "VmConfig",
    "VmTable",
]

U32_MAX = 0xFFFF_FFFF


class Action(IntEnum):
    """``KVM_SMCCC_FILTER_*``: the action byte of a filter record (uapi kvm.h)."""

    HANDLE = 0
    DENY = 1
    FWD_TO_USER = 2

    @property
    def label(self) -> str:
        """The spelling used in specs and output: ``handle``, ``deny``, ``fwd_to_user``."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Action:
        """The action a spec spells ``text``.

        Raises:
            ValueError: not one of the three action names.
        """
        try:
            return _ACTIONS_BY_LABEL[text]
        except KeyError:
            raise ValueError(f"unknown action {text!r}") from None


_ACTIONS_BY_LABEL = {action.name.lower(): action for action in Action}


ActionName = Literal["handle", "deny", "fwd_to_user"]
U32 = Annotated[int, Field(ge=0, le=U32_MAX, strict=True)]
FunctionRef = Annotated[int, Field(ge=0, le=U32_MAX, strict=True)] | str
ConventionName = Literal["smc32", "smc64"]
LayoutName = Literal["merged", "sorted", "as-written"]
CallName = Literal["fast", "yield"]

_STRICT = ConfigDict(frozen=True, extra="forbid", strict=True)


# Findings a reviewer has accepted, by code (HVF303) or name (forwards-kernel-call).
AllowList = list[Annotated[str, Field(pattern=r"^(?:HVF\d{3}|[a-z0-9]+(?:-[a-z0-9]+)*)$")]]


class _EntryBase(BaseModel):
    model_config = _STRICT

    action: ActionName
    comment: str | None = None
    allow: AllowList | None = None


class RawEntry(_EntryBase):
    """``base`` with ``nr_functions`` or an inclusive ``end``: a record as the kernel takes it."""

    base: U32
    nr_functions: U32 | None = None
    end: U32 | None = None


class FunctionEntry(_EntryBase):
    """``function``: one ID, by catalogue name or number."""

    function: FunctionRef


class FunctionsEntry(_EntryBase):
    """``functions``: several IDs, compiled into the fewest ranges."""

    functions: Annotated[list[FunctionRef], Field(min_length=1)]


class ServiceEntry(_EntryBase):
    """``service``: a service family's function-number block, optionally one convention."""

    service: str
    convention: ConventionName | None = None

    @field_validator("service")
    @classmethod
    def _known_service(cls, value: str) -> str:
        smccc.parse_service(value)
        return value


class OwnerEntry(_EntryBase):
    """``owner``: every ID of an owning entity, optionally one convention and call type."""

    owner: Annotated[int, Field(ge=0, le=63, strict=True)] | str
    convention: ConventionName | None = None
    call: CallName | None = None

    @field_validator("owner")
    @classmethod
    def _known_owner(cls, value: int | str) -> int | str:
        smccc.parse_owner(value)
        return value


SELECTOR_KEYS: dict[str, str] = {
    "base": "raw",
    "function": "function",
    "functions": "functions",
    "service": "service",
    "owner": "owner",
}


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


RangeEntry = Annotated[
    Annotated[RawEntry, Tag("raw")]
    | Annotated[FunctionEntry, Tag("function")]
    | Annotated[FunctionsEntry, Tag("functions")]
    | Annotated[ServiceEntry, Tag("service")]
    | Annotated[OwnerEntry, Tag("owner")],
    Discriminator(_selector_tag),
]


class FilterTable(BaseModel):
    """The ``[filter]`` table: what the table is and which kernel it targets."""

    model_config = _STRICT

    name: str | None = None
    description: str | None = None
    kernel: str | None = None
    allow: AllowList | None = None
    # How compile lays out records: "merged" (default: sorted by base, adjacent
    # same-action ranges merged across entries), "sorted" (one record per
    # range, as --no-merge), "as-written" (one record per range in spec order,
    # so that decompile can reproduce any payload byte for byte).
    layout: LayoutName | None = None

    @field_validator("kernel")
    @classmethod
    def _known_kernel(cls, value: str | None) -> str | None:
        get_profile(value)
        return value


class VmTable(BaseModel):
    """The ``[vm]`` table: how the emulated VM is configured for dry-runs."""

    model_config = _STRICT

    psci_version: str | None = None
    std: list[str] | None = None
    std_hyp: list[str] | None = None
    vendor_hyp: list[str] | None = None
    vendor_hyp_2: list[str] | None = None

    @field_validator("psci_version")
    @classmethod
    def _version_shape(cls, value: str | None) -> str | None:
        if value is not None:
            parse_psci_version(value)
        return value


class SpecDocument(BaseModel):
    """The whole TOML document."""

    model_config = _STRICT

    filter: FilterTable = FilterTable()
    vm: VmTable = VmTable()
    range: list[RangeEntry] = []


def parse_psci_version(text: str) -> tuple[int, int]:
    """``"1.1"`` -> ``(1, 1)``.

    Raises:
        ValueError: not ``MAJOR.MINOR`` with small numbers.
    """
    parts = text.strip().split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f'PSCI version {text!r} is not MAJOR.MINOR, e.g. "1.1"')
    major, minor = int(parts[0]), int(parts[1])
    if major > 0x7FFF or minor > 0xFFFF:
        raise ValueError(f"PSCI version {text!r} is out of range")
    return major, minor


class FilterRange(NamedTuple):
    """One record the kernel will receive: ``[base, base + nr_functions)`` in 32-bit arithmetic.

    ``entry`` is the index of the spec's ``[[range]]`` it came from. A named
    tuple rather than a frozen dataclass: specs hold up to hundreds of
    thousands of these, and tuple construction is several times cheaper.
    """

    base: int
    nr_functions: int
    action: Action
    entry: int

    @property
    def last(self) -> int:
        """The last ID, without 32-bit wrap (may exceed 0xFFFFFFFF, or be base-1 for nr=0)."""
        return self.base + self.nr_functions - 1

    @property
    def end32(self) -> int:
        """The last ID as the kernel computes it, modulo 2**32."""
        return self.last & U32_MAX

    @property
    def is_valid(self) -> bool:
        """The kernel's own test: the 32-bit end does not precede the base."""
        return self.end32 >= self.base

    def __str__(self) -> str:
        if self.nr_functions == 1:
            return smccc.format_id(self.base)
        return f"{smccc.format_id(self.base)}-{smccc.format_id(self.end32)}"


@dataclass(frozen=True, slots=True)
class VmConfig:
    """The emulated VM's firmware setup: PSCI version and bitmap values by register index."""

    psci_version: tuple[int, int] | None = None
    bitmaps: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FilterSpec:
    """A spec after loading: its entries and the records they resolve to, sorted by entry order."""

    path: str
    profile: KernelProfile
    name: str | None
    description: str | None
    entries: tuple[RawEntry | FunctionEntry | FunctionsEntry | ServiceEntry | OwnerEntry, ...]
    ranges: tuple[FilterRange, ...]
    vm: VmConfig
    # Recovers "file:line:column" for a key path; computed only when a diagnostic needs it.
    locate: Callable[[tuple[str | int, ...]], tuple[int, int] | None] = field(
        compare=False, repr=False
    )
    layout: LayoutName = "merged"
    # [filter] allow: warnings and notes accepted for the whole spec.
    allow: tuple[str, ...] = ()
