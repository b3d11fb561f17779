"""The explain API (``hvcfilter explain``): a rule's documentation, or all about a function ID.

A code or rule name gives its :class:`~hvcfilter.rules.Rule`; a function
ID, catalogue name or service gives each ID decoded (owner, convention,
hint bits), what KVM does with it on the kernel profile, and, with a spec,
which record covers it and what the guest gets.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hvcfilter import smccc
from hvcfilter.diagnostics import Location
from hvcfilter.errors import HvcFilterError, SpecError, errno_name
from hvcfilter.kernel import calls as kvm_calls
from hvcfilter.kernel.profiles import KernelProfile, get_profile
from hvcfilter.model import Action, FilterRange, FilterSpec, VmConfig
from hvcfilter.rules import Rule, all_rules, find_rule, kernel_calls
from hvcfilter.rules.analysis import U32_END, analyse
from hvcfilter.rules.wording import record_label, reserved_text, where
from hvcfilter.spec import load

__all__ = [
    "Coverage",
    "FunctionExplanation",
    "IdExplanation",
    "RuleExplanation",
    "UnknownQueryError",
    "completions",
    "explain",
    "explain_id",
]

_CODE = re.compile(r"^HVF\d{3}$")


class UnknownQueryError(HvcFilterError):
    """``explain`` was given something that is neither a code, a rule name nor a function."""


@dataclass(frozen=True, slots=True)
class RuleExplanation:
    """``explain HVF201``: the rule and its documentation."""

    rule: Rule


@dataclass(frozen=True, slots=True)
class Coverage:
    """A spec record that covers the explained ID, and whether the kernel keeps it."""

    record: FilterRange
    location: Location
    installed: bool


@dataclass(frozen=True, slots=True)
class IdExplanation:
    """Everything hvcfilter knows about one function ID, optionally against a spec."""

    fid: int
    decoded: smccc.DecodedId
    name: str | None
    origin: str | None
    twins: tuple[smccc.CatalogueEntry, ...]
    family: str | None
    problems: tuple[str, ...]
    notes: tuple[str, ...]
    profile: KernelProfile
    reserved: tuple[int, int] | None
    kernel_default: str
    spec_path: str | None = None
    covering: tuple[Coverage, ...] = ()
    outcome: str | None = None


@dataclass(frozen=True, slots=True)
class FunctionExplanation:
    """``explain 0x84000003`` or ``explain PSCI_CPU_ON``: one or more decoded IDs."""

    query: str
    functions: tuple[IdExplanation, ...]


def _kernel_default(
    fid: int, profile: KernelProfile, vm: VmConfig
) -> tuple[str, tuple[int, int] | None]:
    reserved = next((r for r in profile.reserved_ranges if r[0] <= fid <= r[1]), None)
    calls = kernel_calls(profile, vm)
    if reserved is not None:
        answer = calls.get(fid, "answers NOT_SUPPORTED (-1)")
        return (
            f"always handled by KVM (reserved {reserved_text(*reserved)}; any range over it "
            f"fails with EEXIST): KVM {answer}",
            reserved,
        )
    if fid in calls:
        return f"handled by KVM, which {calls[fid]}", None
    call = kvm_calls.KVM_CALLS_BY_ID.get(fid)
    gate = None if call is None else call.gate
    if call is not None and isinstance(gate, kvm_calls.PsciVersion) and gate.capability:
        return (
            f"reaches KVM's PSCI code: {call.name.removesuffix('_64')} exits to the VMM only "
            f"if it enabled {gate.capability}, otherwise NOT_SUPPORTED (-1)",
            None,
        )
    if kvm_calls.in_psci_block(fid):
        return "reaches KVM's PSCI code, which answers NOT_SUPPORTED (-1) for it", None
    if fid in kvm_calls.LEGACY_PSCI:
        return "KVM answers NOT_SUPPORTED (-1): its legacy PSCI IDs serve only PSCI 0.1 VMs", None
    return "KVM does not implement it: the guest gets NOT_SUPPORTED (-1)", None


def explain_id(fid: int, spec: FilterSpec | None = None) -> IdExplanation:
    """Decode one function ID and say what KVM, and the spec's table if given, do with it.

    Raises:
        ValueError: ``fid`` is outside 0..0xFFFFFFFF.
    """
    decoded = smccc.decode(fid)
    cat = smccc.catalogue()
    entry = cat.by_id(fid)
    profile = spec.profile if spec is not None else get_profile(None)
    vm = spec.vm if spec is not None else VmConfig()
    default, reserved = _kernel_default(fid, profile, vm)
    family = next(
        (
            s.title
            for s in smccc.SERVICES.values()
            if any(fid in r for r in smccc.service_ranges(s, s.conventions))
        ),
        None,
    )
    notes: list[str] = []
    # Owners 8-47 have no SMCCC calls to be a hinted form of (KVM's legacy PSCI IDs
    # live there), as in HVF304.
    if (
        decoded.call_type is smccc.CallType.FAST
        and (fid >> 16) & 0xFF
        and not 8 <= decoded.owner <= 47
    ):
        plain = fid & ~0x00FF_0000
        notes.append(
            f"bits 23:16 are set; KVM does not strip them, so this is not {cat.label(plain)}"
        )
    if fid in kvm_calls.HVC_FAST_PATH:
        notes.append(
            "by HVC it is answered at EL2 (x0 = 0) before the filter or the host sees it; "
            "by SMC it takes the normal path"
        )
    if fid in kvm_calls.LEGACY_PSCI:
        notes.append("a KVM-private PSCI 0.1 ID, not an SMCCC function ID")
    if not profile.smc_via_smccc:
        notes.append(
            f"by SMC the guest gets NOT_SUPPORTED (-1) whatever the ID: kernel {profile.name} "
            "answers every guest SMC so (SMCs reach KVM's SMCCC handler from Linux 6.4)"
        )
    covering: list[Coverage] = []
    outcome = None
    if spec is not None:
        # Without the filter every record's SET fails, so none is installed.
        installed = analyse(spec).lookup(fid) if profile.has_filter else None
        for rec in spec.ranges:
            if rec.nr_functions and rec.base <= fid <= rec.last and rec.last < U32_END:
                covering.append(Coverage(rec, where(spec, rec.entry), rec is installed))
        if not profile.has_filter:
            err = errno_name(profile.no_filter_errno or 0)
            outcome = (
                f"kernel {profile.name} has no SMCCC filter, so no range is installed (each "
                f"KVM_SET_DEVICE_ATTR fails with {err}): {default}"
            )
        elif installed is None or installed.action is Action.HANDLE:
            outcome = f"no deny or fwd_to_user range applies: {default}"
        elif installed.action is Action.DENY:
            outcome = f"{record_label(installed)} denies it: the guest gets NOT_SUPPORTED (-1)"
        else:
            outcome = (
                f"{record_label(installed)} forwards it: KVM exits to the VMM with "
                "KVM_EXIT_HYPERCALL (nr = W0)"
            )
    return IdExplanation(
        fid=fid,
        decoded=decoded,
        name=entry.name if entry else None,
        origin=entry.origin if entry else None,
        twins=tuple(cat.twins(entry)) if entry else (),
        family=family,
        problems=tuple(decoded.problems()),
        notes=tuple(notes),
        profile=profile,
        reserved=reserved,
        kernel_default=default,
        spec_path=spec.path if spec is not None else None,
        covering=tuple(covering),
        outcome=outcome,
    )


def _parse_number(text: str) -> int | None:
    if not text.isascii():  # int() takes full-width and Arabic-Indic digits too
        return None
    try:
        value = int(text, 0)
    except ValueError:
        return None
    return value


def _load_for_explain(path: str | Path) -> FilterSpec:
    result = load(path)
    if result.spec is None:
        raise SpecError(result.failure(f"{result.path} for explain"))
    return result.spec


def explain(
    query: str, spec_path: str | Path | None = None
) -> RuleExplanation | FunctionExplanation:
    """Explain a diagnostic code or rule name, or decode a function ID, catalogue name or service.

    With ``spec_path``, function explanations say which record and action apply.

    Raises:
        UnknownQueryError: the query matches nothing (the message suggests close matches),
            or a number is outside 0..0xFFFFFFFF.
        SpecError: the spec cannot be loaded.
    """
    text = query.strip()
    rule = find_rule(text)
    if rule is not None:
        return RuleExplanation(rule)
    if _CODE.match(text.upper()):
        codes = [r.code for r in all_rules()]
        raise UnknownQueryError(
            f"unknown diagnostic code {text!r}"
            + _suggestion(text.upper(), codes)
            + "; `hvcfilter explain` knows "
            + ", ".join(codes)
        )
    number = _parse_number(text)
    cat = smccc.catalogue()
    fids: list[int]
    if number is not None:
        if not 0 <= number <= smccc.FUNCTION_ID_MAX:
            raise UnknownQueryError(
                f"{_shown(text)} is not a 32-bit function ID: KVM compares W0, 0..0xFFFFFFFF"
            )
        fids = [number]
    else:
        try:
            fids = [cat.by_name(text).function_id]
        except KeyError:
            stem = text.upper()
            fids = (
                [e.function_id for e in cat.entries if e.stem == stem]
                or _service_ids(text)
                or _owner_ids(text)
            )
            if not fids:
                names = [r.name for r in all_rules()] + [e.name for e in cat.entries]
                raise UnknownQueryError(
                    f"{_shown(text)!r} is not a diagnostic code, rule name, function ID or "
                    f"known function name{_suggestion(text, names)}"
                ) from None
    spec = _load_for_explain(spec_path) if spec_path is not None else None
    return FunctionExplanation(text, tuple(explain_id(fid, spec) for fid in fids))


def _service_ids(name: str) -> list[int]:
    """The catalogue's IDs in a service family's blocks (``explain trng``), if it is one."""
    try:
        service = smccc.parse_service(name)
    except ValueError:
        return []
    ids: list[int] = []
    for block in smccc.service_ranges(service, service.conventions):
        ids += [e.function_id for e in smccc.catalogue().in_range(block.first, block.last)]
    return ids


def _owner_ids(name: str) -> list[int]:
    """An owner's catalogue IDs (``explain sip``), else the first ID of each of its blocks."""
    try:
        owners = smccc.parse_owner(name)
    except ValueError:
        return []
    blocks = smccc.owner_ranges(owners)
    ids: list[int] = []
    for block in blocks:
        ids += [e.function_id for e in smccc.catalogue().in_range(block.first, block.last)]
    return ids or [block.first for block in blocks]


def completions(incomplete: str) -> list[str]:
    """What ``explain`` accepts that starts with ``incomplete``, for shell completion.

    Diagnostic codes, rule names, catalogue names, services and owners, in
    that order, compared without case.
    """
    words = [r.code for r in all_rules()] + [r.name for r in all_rules()]
    words += [e.name for e in smccc.catalogue().entries]
    words += list(smccc.SERVICES) + list(smccc.owner_numbers())
    prefix = incomplete.casefold()
    seen: set[str] = set()
    out = []
    for word in words:
        if word.casefold().startswith(prefix) and word not in seen:
            seen.add(word)
            out.append(word)
    return out


def _shown(text: str) -> str:
    """The query as an error quotes it: a pasted page is cut, not echoed whole."""
    return text if len(text) <= _SHOWN_MAX else f"{text[: _SHOWN_MAX - 3]}..."


_SHOWN_MAX = 60


def _suggestion(word: str, candidates: Sequence[str]) -> str:
    close = smccc.suggest(word, candidates) or smccc.suggest(word.upper(), candidates)
    return f"; did you mean {' or '.join(close)}?" if close else ""
