"""The spec model: the value types a filter spec is made of.

Two layers live here. ``SpecDocument`` and its parts (``FilterTable``,
``VmTable`` and the ``*Entry`` types) are what the TOML file says, each field
checked on its own; ``FilterRange`` and ``FilterSpec`` are the resolved form
every later stage works on, one ``FilterRange`` per record the kernel will
receive. The schema that checks the fields, and explains what is wrong with
them, is :mod:`hvcfilter.schema`. Checks that relate several fields or ranges
belong in ``checks.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Literal, NamedTuple

from hvcfilter import smccc
from hvcfilter.profiles import KernelProfile

__all__ = [
    "ENTRY_TYPES",
    "SELECTOR_KEYS",
    "Action",
    "ActionName",
    "FilterRange",
    "FilterSpec",
    "FilterTable",
    "FunctionEntry",
    "FunctionsEntry",
    "LayoutName",
    "OwnerEntry",
    "RawEntry",
    "ServiceEntry",
    "SpecDocument",
    "SpecEntry",
    "VmConfig",
    "VmTable",
]


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
ConventionName = Literal["smc32", "smc64"]
LayoutName = Literal["merged", "sorted", "as-written"]
CallName = Literal["fast", "yield"]

# The selector keys of a [[range]] and the entry kind each one makes.
SELECTOR_KEYS: dict[str, str] = {
    "base": "raw",
    "function": "function",
    "functions": "functions",
    "service": "service",
    "owner": "owner",
}


# Entries are named tuples, not dataclasses: large specs hold 100,000 of them,
# and they are built without pydantic on the common path (see spec.py).
class RawEntry(NamedTuple):
    """``base`` with ``nr_functions`` or an inclusive ``end``: a record as the kernel takes it."""

    action: ActionName
    base: int
    nr_functions: int | None = None
    end: int | None = None
    comment: str | None = None
    allow: tuple[str, ...] | None = None


class FunctionEntry(NamedTuple):
    """``function``: one ID, by catalogue name or number."""

    action: ActionName
    function: int | str
    comment: str | None = None
    allow: tuple[str, ...] | None = None


class FunctionsEntry(NamedTuple):
    """``functions``: several IDs, compiled into the fewest ranges."""

    action: ActionName
    functions: tuple[int | str, ...]
    comment: str | None = None
    allow: tuple[str, ...] | None = None


class ServiceEntry(NamedTuple):
    """``service``: a service family's function-number block, optionally one convention."""

    action: ActionName
    service: str
    convention: ConventionName | None = None
    comment: str | None = None
    allow: tuple[str, ...] | None = None


class OwnerEntry(NamedTuple):
    """``owner``: every ID of an owning entity, optionally one convention and call type."""

    action: ActionName
    owner: int | str
    convention: ConventionName | None = None
    call: CallName | None = None
    comment: str | None = None
    allow: tuple[str, ...] | None = None


SpecEntry = RawEntry | FunctionEntry | FunctionsEntry | ServiceEntry | OwnerEntry
ENTRY_TYPES: dict[str, type[SpecEntry]] = {
    "raw": RawEntry,
    "function": FunctionEntry,
    "functions": FunctionsEntry,
    "service": ServiceEntry,
    "owner": OwnerEntry,
}


@dataclass(frozen=True, slots=True)
class FilterTable:
    """The ``[filter]`` table: what the table is and which kernel it targets."""

    name: str | None = None
    description: str | None = None
    kernel: str | None = None
    allow: tuple[str, ...] | None = None
    # How compile lays out records: "merged" (default: sorted by base, adjacent
    # same-action ranges merged across entries), "sorted" (one record per
    # range, as --no-merge), "as-written" (one record per range in spec order,
    # so that decompile can reproduce any payload byte for byte).
    layout: LayoutName | None = None


@dataclass(frozen=True, slots=True)
class VmTable:
    """The ``[vm]`` table: how the emulated VM is configured for dry-runs."""

    psci_version: str | None = None
    std: tuple[str, ...] | None = None
    std_hyp: tuple[str, ...] | None = None
    vendor_hyp: tuple[str, ...] | None = None
    vendor_hyp_2: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class SpecDocument:
    """The whole TOML document, each field checked on its own, before resolution."""

    filter: FilterTable = FilterTable()
    vm: VmTable = VmTable()
    range: tuple[SpecEntry, ...] = ()


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
        return self.last & smccc.FUNCTION_ID_MAX

    @property
    def is_valid(self) -> bool:
        """The kernel's own test: the 32-bit end does not precede the base."""
        return self.end32 >= self.base

    def __str__(self) -> str:
        return str(smccc.IdRange(self.base, self.end32))


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
    entries: tuple[SpecEntry, ...]
    ranges: tuple[FilterRange, ...]
    vm: VmConfig
    # Recovers "file:line:column" for a key path; computed only when a diagnostic needs it.
    locate: Callable[[tuple[str | int, ...]], tuple[int, int] | None] = field(
        compare=False, repr=False
    )
    layout: LayoutName = "merged"
    # [filter] allow: warnings and notes accepted for the whole spec.
    allow: tuple[str, ...] = ()
