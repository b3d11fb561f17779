"""What each spec key means, for the JSON Schema that editors read (``hvcfilter schema``).

The pydantic models of :mod:`.schema` annotate every field with
:func:`field_doc`, so the JSON Schema generated from them
(:mod:`.json_schema`) carries a description and examples per key, and the
names the spec accepts (catalogue calls, services, owners, kernel profiles)
as suggestions: taplo and Even Better TOML turn them into completion and
hover text. The suggestions are computed only when a schema is generated,
never when a spec is validated. They suggest and never restrict: the
spec's own rules accept any case, ``_`` for ``-`` and aliases, so the
schema must too (it may never reject a spec that ``check`` accepts).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import Field
from pydantic.fields import FieldInfo

__all__ = ["field_doc", "suggest_names"]

_ACTION = (
    "What the kernel does with a matching call: `handle` (KVM answers it as it would with "
    "no filter), `deny` (the guest gets SMCCC_RET_NOT_SUPPORTED, -1) or `fwd_to_user` (the "
    "vCPU exits to the VMM with KVM_EXIT_HYPERCALL)."
)
_ALLOW = (
    "Findings a reviewer has accepted, by diagnostic code (HVF303) or rule "
    "name (forwards-kernel-call); `hvcfilter explain CODE` says what each one catches."
)

# key -> (description, examples)
_DOCS: dict[str, tuple[str, Sequence[Any]]] = {
    "filter": ("What the table is and which kernel it targets.", ()),
    "vm": ("How the emulated VM is configured for `compile --dry-run` and `simulate`.", ()),
    "range": (
        "The filter's entries. Each names its function IDs with exactly one selector: "
        "`base` (a raw range), `function`, `functions`, `service` or `owner`.",
        (),
    ),
    "name": ("A short name for the table, shown in reports.", ("lockdown",)),
    "description": ("What the table is for, in a sentence.", ("Deny SiP and OEM calls",)),
    "kernel": (
        "The Linux kernel profile the table targets: its reserved ranges and in-kernel "
        "services are checked. `6.12.95` and `linux-6.12` select `6.12`; absent means the "
        "newest profile.",
        ("6.12",),
    ),
    "filter.allow": ("For the whole table: " + _ALLOW, (["HVF303"],)),
    "layout": (
        "How compile lays out records: `merged` (default: sorted by base, adjacent "
        "same-action ranges merged), `sorted` (one record per range, as --no-merge) or "
        "`as-written` (one record per range in spec order, so decompile reproduces a payload "
        "byte for byte).",
        ("merged",),
    ),
    "psci_version": ("The PSCI version the VM's firmware reports, MAJOR.MINOR.", ("1.1",)),
    "std": (
        "Features of the KVM_REG_ARM_STD_BMAP firmware register the VM enables.",
        (["trng"],),
    ),
    "std_hyp": (
        "Features of the KVM_REG_ARM_STD_HYP_BMAP firmware register the VM enables.",
        (["pv-time"],),
    ),
    "vendor_hyp": (
        "Features of the KVM_REG_ARM_VENDOR_HYP_BMAP firmware register the VM enables.",
        (["func-feat", "ptp"],),
    ),
    "vendor_hyp_2": (
        "Features of the KVM_REG_ARM_VENDOR_HYP_BMAP_2 firmware register the VM enables.",
        ([],),
    ),
    "action": (_ACTION, ("deny",)),
    "comment": ("Why this entry exists; kept by decompile and shown in reports.", ()),
    "allow": (_ALLOW, (["forwards-kernel-call"],)),
    "base": (
        "The first function ID of a raw range (the W0 value, 0..0xFFFFFFFF), with "
        "`nr_functions` or an inclusive `end`.",
        (0xC2000000,),
    ),
    "nr_functions": ("How many IDs the range holds from `base`.", (0x100,)),
    "end": ("The last ID of the range, inclusive (instead of `nr_functions`).", (0xC20000FF,)),
    "function": (
        "One function ID: a catalogue name (PSCI_CPU_ON_64, any case), a number or a hex string.",
        ("PSCI_CPU_ON_64", 0x84000003),
    ),
    "functions": (
        "Several function IDs (catalogue names or numbers), compiled into the fewest ranges.",
        (["PSCI_CPU_ON_64", "PSCI_CPU_OFF"],),
    ),
    "service": (
        "A service family's function-number block, in both conventions unless `convention` "
        "says one.",
        ("trng",),
    ),
    "convention": ("Only the SMC32 or only the SMC64 IDs of the selector.", ("smc64",)),
    "owner": (
        "Every ID of an owning entity (bits 29:24 of W0): a name or a number 0..63.",
        ("sip", 2),
    ),
    "call": ("Only the fast or only the yielding calls of the owner.", ("fast",)),
}


# key -> value -> what it means, for the hover text of enum values.
_VALUE_DOCS: dict[str, dict[str, str]] = {
    "action": {
        "handle": "KVM answers the call as it would with no filter (KVM_SMCCC_FILTER_HANDLE).",
        "deny": "The guest gets SMCCC_RET_NOT_SUPPORTED (-1) (KVM_SMCCC_FILTER_DENY).",
        "fwd_to_user": "The vCPU exits to the VMM with KVM_EXIT_HYPERCALL "
        "(KVM_SMCCC_FILTER_FWD_TO_USER).",
    },
    "convention": {
        "smc32": "The SMC32/HVC32 IDs (bit 30 clear).",
        "smc64": "The SMC64/HVC64 IDs (bit 30 set).",
    },
    "call": {
        "fast": "Fast calls (bit 31 set).",
        "yield": "Yielding calls (bit 31 clear).",
    },
    "layout": {
        "merged": "Sorted by base, adjacent same-action ranges merged (the default).",
        "sorted": "One record per range, sorted by base (as compile --no-merge).",
        "as-written": "One record per range in spec order (decompile reproduces it).",
    },
}


def _catalogue_names() -> list[str]:
    from hvcfilter import smccc

    return sorted(entry.name for entry in smccc.catalogue().entries)


def _service_names() -> list[str]:
    from hvcfilter import smccc

    return list(smccc.SERVICES)


def _owner_names() -> list[str]:
    from hvcfilter import smccc

    return list(smccc.owner_numbers())


def _kernel_names() -> list[str]:
    from hvcfilter.kernel.profiles import PROFILES

    return list(PROFILES)


def _bitmap_features(register: str) -> Callable[[], list[str]]:
    def names() -> list[str]:
        from hvcfilter.kernel.profiles import PROFILES

        found: dict[str, None] = {}
        for profile in PROFILES.values():
            for reg in profile.bitmap_registers:
                if reg.name == register:
                    found.update(dict.fromkeys(reg.bits))
        return list(found)

    return names


_SUGGESTIONS: dict[str, Callable[[], list[str]]] = {
    "std": _bitmap_features("std"),
    "std_hyp": _bitmap_features("std_hyp"),
    "vendor_hyp": _bitmap_features("vendor_hyp"),
    "vendor_hyp_2": _bitmap_features("vendor_hyp_2"),
    "function": _catalogue_names,
    "functions": _catalogue_names,
    "service": _service_names,
    "owner": _owner_names,
    "kernel": _kernel_names,
}


def suggest_names(schema: dict[str, Any], names: Sequence[str]) -> None:
    """Offer ``names`` wherever ``schema`` takes a free string, without restricting it.

    A string becomes ``anyOf [one of the names, any string]``: editors
    complete and document the names, validators still accept other spellings.
    """
    if schema.get("type") == "string" and "enum" not in schema and "pattern" not in schema:
        rest = {k: v for k, v in schema.items() if k != "type"}
        schema.clear()
        schema.update(rest)
        schema["anyOf"] = [
            {"type": "string", "enum": list(names)},
            {"type": "string"},
        ]
        return
    for branch in schema.get("anyOf", ()):
        suggest_names(branch, names)
    if isinstance(schema.get("items"), dict):
        suggest_names(schema["items"], names)


def field_doc(key: str) -> FieldInfo:
    """The description, examples and name suggestions of one spec key, for ``Annotated``."""
    description, examples = _DOCS[key]
    names = _SUGGESTIONS.get(key)

    value_docs = _VALUE_DOCS.get(key)

    def extra(schema: dict[str, Any]) -> None:
        if names is not None:
            suggest_names(schema, names())
        if value_docs is not None:
            # taplo's extension: hover text per enum value, in the enum's order.
            schema["x-taplo"] = {"docs": {"enumValues": [value_docs[v] for v in schema["enum"]]}}

    info: FieldInfo = Field(
        description=description,
        examples=list(examples) if examples else None,
        json_schema_extra=extra if names is not None or value_docs is not None else None,
    )
    return info
