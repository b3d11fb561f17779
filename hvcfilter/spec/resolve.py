"""Resolution: a spec document's entries into the records the kernel will receive.

Every selector (raw ranges, catalogue names, services, owners) becomes
``(base, nr_functions)`` records in the kernel's own 32-bit terms, and the
``[vm]`` table becomes the VM's firmware setup, checked against the kernel
profile. Problems are diagnostics with the key path of the entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from hvcfilter import smccc
from hvcfilter.diagnostics import Diagnostic, Severity
from hvcfilter.kernel.profiles import KernelProfile, get_profile
from hvcfilter.model import (
    VM_BITMAP_KEYS,
    Action,
    FilterRange,
    FilterSpec,
    FunctionEntry,
    FunctionsEntry,
    OwnerEntry,
    RawEntry,
    ServiceEntry,
    SpecDocument,
    VmConfig,
    VmTable,
    parse_psci_version,
)
from hvcfilter.spec.input_rules import diag
from hvcfilter.spec.source import KeyPath, SourceMap, location

__all__ = ["resolve", "resolve_function"]


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


def resolve(
    document: SpecDocument, filename: str, source: SourceMap, *, kernel: str | None = None
) -> tuple[FilterSpec | None, tuple[Diagnostic, ...]]:
    """The resolved spec of a document (None when an error stops it) and the findings.

    ``kernel`` overrides ``[filter] kernel`` (``--kernel``): the ``[vm]`` settings
    are judged by the kernel the table is meant for.

    Raises:
        UnknownProfileError: ``kernel`` names no profile.
    """
    profile = get_profile(kernel if kernel is not None else document.filter.kernel)
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
                diag(
                    problem.code,
                    problem.message,
                    location(filename, source, ("range", index, *problem.key)),
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
    return None if failed else spec, tuple(diags)


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
            yield rng.first, rng.size
    elif isinstance(entry, ServiceEntry):
        service = smccc.parse_service(entry.service)
        for rng in smccc.service_ranges(service, _conventions(entry.convention)):
            yield rng.first, rng.size
    else:
        owners = smccc.parse_owner(entry.owner)
        calls = (
            [smccc.CallType(entry.call)]
            if entry.call
            else [smccc.CallType.FAST, smccc.CallType.YIELD]
        )
        for rng in smccc.owner_ranges(owners, _conventions(entry.convention), calls):
            yield rng.first, rng.size


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
    table: VmTable, profile: KernelProfile, filename: str, source: SourceMap
) -> tuple[VmConfig, list[Diagnostic]]:
    diags: list[Diagnostic] = []
    psci = None
    if table.psci_version is not None:
        psci = parse_psci_version(table.psci_version)
        if psci not in profile.psci_versions_accepted:
            accepted = ", ".join(f"{a}.{b}" for a, b in profile.psci_versions_accepted)
            diags.append(
                diag(
                    "HVF107",
                    f"kernel {profile.name} refuses PSCI version {table.psci_version} (EINVAL); "
                    "the emulated VM keeps the default",
                    location(filename, source, ("vm", "psci_version")),
                    f"kernel {profile.name} accepts {accepted}",
                )
            )
            psci = None
    bitmaps: dict[int, int] = {}
    for reg_name in VM_BITMAP_KEYS:
        features: list[str] | None = getattr(table, reg_name)
        if features is None:
            continue
        register = profile.register_by_name(reg_name)
        if register is None:
            diags.append(
                diag(
                    "HVF107",
                    f"kernel {profile.name} has no {reg_name} firmware bitmap register (ENOENT); "
                    "the emulated VM ignores it",
                    location(filename, source, ("vm", reg_name)),
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
                    diag(
                        "HVF104",
                        f"unknown {reg_name} feature {feature!r}"
                        + (f"; did you mean {close[0]!r}?" if close else ""),
                        location(filename, source, ("vm", reg_name, i)),
                        f"{reg_name} features: {', '.join(register.bits)}",
                    )
                )
                continue
            value |= 1 << bit
        bitmaps[register.number] = value
    return VmConfig(psci, bitmaps), diags
