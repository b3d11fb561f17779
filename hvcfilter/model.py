"""The spec model: the value types a filter spec is made of.

Two layers live here. ``SpecDocument`` and its parts (``FilterTable``,
``VmTable`` and the ``*Entry`` types) are what the TOML file says, each field
checked on its own; ``FilterRange`` and ``FilterSpec`` are the resolved form
every later stage works on, one ``FilterRange`` per record the kernel will
receive. The schema that checks the fields, and explains what is wrong with
them, is :mod:`hvcfilter.spec.schema`. Checks that relate several fields or
ranges belong in :mod:`hvcfilter.rules`. ``Action`` (the record's action
byte) and ``VmConfig`` (the VM's firmware setup) are the kernel's own types,
re-exported here because every spec speaks of them.
"""

# No `from __future__ import annotations`: NamedTuple compiles string annotations at start.

from collections.abc import Callable
from typing import Literal, NamedTuple

from hvcfilter import smccc
from hvcfilter.kernel.abi import Action
from hvcfilter.kernel.firmware import VmConfig, parse_psci_version
from hvcfilter.kernel.profiles import KernelProfile

__all__ = [
    "ENTRY_TYPES",
    "SELECTOR_KEYS",
    "VM_BITMAP_KEYS",
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
    "parse_psci_version",
]


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


class FilterTable(NamedTuple):
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


class VmTable(NamedTuple):
    """The ``[vm]`` table: how the emulated VM is configured for dry-runs."""

    psci_version: str | None = None
    std: tuple[str, ...] | None = None
    std_hyp: tuple[str, ...] | None = None
    vendor_hyp: tuple[str, ...] | None = None
    vendor_hyp_2: tuple[str, ...] | None = None


# The [vm] keys that list firmware-bitmap features, by register name.
VM_BITMAP_KEYS = ("std", "std_hyp", "vendor_hyp", "vendor_hyp_2")


class SpecDocument(NamedTuple):
    """The whole TOML document, each field checked on its own, before resolution."""

    filter: FilterTable = FilterTable()
    vm: VmTable = VmTable()
    range: tuple[SpecEntry, ...] = ()


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
        return smccc.format_record_span(self.base, self.nr_functions)


class FilterSpec(NamedTuple):
    """A spec after loading: its entries and the records they resolve to, sorted by entry order.

    A named tuple like the rest of the model (``spec._replace(profile=...)``
    makes a variant), so that loading a spec does not import ``dataclasses``.
    """

    path: str
    profile: KernelProfile
    name: str | None
    description: str | None
    entries: tuple[SpecEntry, ...]
    ranges: tuple[FilterRange, ...]
    vm: VmConfig
    # Recovers "file:line:column" for a key path; computed only when a diagnostic needs it.
    locate: Callable[[tuple[str | int, ...]], tuple[int, int] | None]
    layout: LayoutName = "merged"
    # [filter] allow: warnings and notes accepted for the whole spec.
    allow: tuple[str, ...] = ()
