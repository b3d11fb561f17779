"""Cross-range checks of a loaded spec, the rule registry, and the ``lint``/``explain`` API.

Each check is a function ``(FilterSpec) -> Iterator[Diagnostic]`` registered
once in :data:`CHECKS`; its docstring is the user documentation that
``hvcfilter explain HVFnnn`` prints, with a failing and a passing example.
Only what makes the kernel's ``KVM_SET_DEVICE_ATTR`` fail is an error
(overlaps and reserved ranges: EEXIST; empty or wrapping ranges: EINVAL);
everything the kernel accepts is at most a warning. Checks share one sorted
view of a spec (:class:`_Analysis`, built once per spec), so linting stays
O(n log n) in the number of records: no per-record catalogue scans and no
pairwise comparisons. ``lint()`` loads files and runs the checks;
``explain()`` documents a rule or decodes a function ID against a spec.
"""

from __future__ import annotations

import bisect
import errno
import importlib
import inspect
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import accumulate, compress, count, islice, repeat
from pathlib import Path
from typing import Protocol

from hvcfilter import kvm_calls, smccc
from hvcfilter.diagnostics import Diagnostic, Location, Severity
from hvcfilter.errors import HvcFilterError, SpecError, errno_name
from hvcfilter.model import (
    Action,
    FilterRange,
    FilterSpec,
    FunctionEntry,
    FunctionsEntry,
    OwnerEntry,
    RawEntry,
    ServiceEntry,
    VmConfig,
)
from hvcfilter.profiles import KernelProfile, get_profile
from hvcfilter.ranges import RESERVED, RangeTree, install
from hvcfilter.smccc import format_id
from hvcfilter.spec import INPUT_RULES, LoadResult, load, loads, locate

__all__ = [
    "CHECKS",
    "RULE_PROVIDERS",
    "Check",
    "Coverage",
    "FileReport",
    "FunctionExplanation",
    "IdExplanation",
    "LintReport",
    "Rule",
    "RuleExplanation",
    "UnknownQueryError",
    "all_rules",
    "check_spec",
    "explain",
    "explain_id",
    "find_rule",
    "kernel_calls",
    "lint",
    "lint_file",
    "lint_result",
    "lint_text",
    "record_label",
    "register_rules",
]

_U32_END = 0x1_0000_0000
_CODE = re.compile(r"^HVF\d{3}$")
_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


# --------------------------------------------------------------------------- registry


class RuleLike(Protocol):
    """Anything that documents a diagnostic code (``InputRule``, ``PayloadRule``...)."""

    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def severity(self) -> Severity: ...
    @property
    def doc(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Rule:
    """One diagnostic code as documentation: what ``explain`` prints and SARIF lists."""

    code: str
    name: str
    severity: Severity
    doc: str

    @property
    def summary(self) -> str:
        """The first line of the documentation."""
        return self.doc.strip().splitlines()[0] if self.doc.strip() else self.name

    @classmethod
    def of(cls, rule: RuleLike) -> Rule:
        """Copy any rule-shaped object into a :class:`Rule`."""
        return cls(rule.code, rule.name, rule.severity, inspect.cleandoc(rule.doc))


@dataclass(frozen=True, slots=True)
class Check:
    """A registered check: its stable code and name, its severity, and the function."""

    code: str
    name: str
    severity: Severity
    func: Callable[[FilterSpec], Iterator[Diagnostic]]

    @property
    def doc(self) -> str:
        """The function's docstring: the user documentation of the rule."""
        return inspect.cleandoc(self.func.__doc__ or "")

    @property
    def rule(self) -> Rule:
        """This check as a documentation :class:`Rule`."""
        return Rule(self.code, self.name, self.severity, self.doc)


# Modules that document more codes, as (module, attribute holding a sequence of rules).
# They are imported only when all_rules() is first called (explain, SARIF), so
# `check` does not pay for them; add a line here for a new group of codes.
RULE_PROVIDERS: list[tuple[str, str]] = [
    ("hvcfilter.payload", "PAYLOAD_RULES"),
    ("hvcfilter.replay", "REPLAY_RULES"),
    ("hvcfilter.trace", "TRACE_RULES"),
]
_REGISTERED: list[Rule] = []


def register_rules(rules: Iterable[RuleLike]) -> None:
    """Add documented codes to the registry (for modules outside :data:`RULE_PROVIDERS`).

    Raises:
        ValueError: a code or name is malformed, or a code is already registered
            with a different name (codes are never reused).
    """
    known = {rule.code: rule.name for rule in all_rules()}
    for rule in rules:
        _validate_rule(rule)
        if rule.code in known:
            if known[rule.code] != rule.name:
                raise ValueError(
                    f"{rule.code} is already registered as {known[rule.code]!r}, "
                    f"not {rule.name!r}: codes are never reused"
                )
            continue
        _REGISTERED.append(Rule.of(rule))
        known[rule.code] = rule.name


def _validate_rule(rule: RuleLike) -> None:
    if not _CODE.match(rule.code):
        raise ValueError(f"rule code {rule.code!r} does not match HVF + three digits")
    if not _NAME.match(rule.name):
        raise ValueError(f"rule name {rule.name!r} is not kebab-case")


def all_rules() -> tuple[Rule, ...]:
    """Every documented diagnostic code, sorted by code: input, check and provider rules.

    Raises:
        ImportError: a provider module exists but fails to import (a bug).
    """
    rules: dict[str, Rule] = {r.code: Rule.of(r) for r in INPUT_RULES}
    for check in CHECKS:
        rules[check.code] = check.rule
    for module_name, attribute in RULE_PROVIDERS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # that group of codes is not written yet
        for rule in getattr(module, attribute, ()):
            rules.setdefault(rule.code, Rule.of(rule))
    for registered in _REGISTERED:
        rules.setdefault(registered.code, registered)
    return tuple(sorted(rules.values(), key=lambda r: r.code))


def find_rule(query: str) -> Rule | None:
    """The rule with this code (``HVF201``, any case) or kebab-case name, if any."""
    key = query.strip()
    for rule in all_rules():
        if rule.code == key.upper() or rule.name == key.lower().replace("_", "-"):
            return rule
    return None


# --------------------------------------------------------------------------- kernel facts

# What a guest needs to boot and to power off or reboot (HVF302).
_BOOT_CALLS = (
    kvm_calls.PSCI_VERSION,
    kvm_calls.PSCI_CPU_ON,
    kvm_calls.PSCI_CPU_ON_64,
    kvm_calls.PSCI_SYSTEM_OFF,
    kvm_calls.PSCI_SYSTEM_RESET,
    kvm_calls.PSCI_FEATURES,
)


def _psci_version(profile: KernelProfile, vm: VmConfig) -> tuple[int, int]:
    return vm.psci_version if vm.psci_version is not None else profile.psci_version_default


def kernel_calls(profile: KernelProfile, vm: VmConfig | None = None) -> dict[int, str]:
    """The IDs KVM itself answers for a VM with no filter entry, with what it does.

    Takes the VM's PSCI version and firmware bitmaps into account: a call whose
    bitmap bit is cleared, or a PSCI call outside the VM's PSCI version, is not
    answered. ``SYSTEM_SUSPEND`` is left out: KVM serves it only when the VMM
    enables ``KVM_CAP_ARM_SYSTEM_SUSPEND``. The facts are
    :data:`hvcfilter.kvm_calls.KVM_CALLS`, which the emulator serves too.
    """
    vm = vm or VmConfig()
    psci = _psci_version(profile, vm)
    return {
        call.fid: call.answer
        for call in kvm_calls.KVM_CALLS
        if kvm_calls.serves(call, profile, psci, vm.bitmaps)
    }


# --------------------------------------------------------------------------- shared analysis

_SELECTOR_KEY: dict[type, str] = {
    RawEntry: "base",
    FunctionEntry: "function",
    FunctionsEntry: "functions",
    ServiceEntry: "service",
    OwnerEntry: "owner",
}


def _service_intervals() -> tuple[list[int], list[int], list[str]]:
    """Function-number blocks of the service families that share an owner, sorted."""
    spans = []
    for service in smccc.SERVICES.values():
        if service.first_number == 0 and service.last_number == smccc.FUNCTION_NUMBER_MASK:
            continue  # a family that owns the whole owner has no inner boundary
        for rng in smccc.service_ranges(service, service.conventions):
            spans.append((rng.first, rng.last, service.title))
    spans.sort()
    return [s[0] for s in spans], [s[1] for s in spans], [s[2] for s in spans]


_SVC_FIRST, _SVC_LAST, _SVC_TITLE = _service_intervals()
_SVC_BLOCKS = frozenset(first >> 24 for first in _SVC_FIRST)


class _Analysis:
    """One sorted, index-friendly view of a spec's records, shared by every check.

    ``valid`` holds the records that pass the kernel's validation (not empty,
    not wrapping; ``base=0, nr=0`` is left to HVF203), sorted by base the way
    the compiler emits them. ``installed`` is what the kernel keeps when they
    are installed in compiled order, or in spec order for
    ``layout = "as-written"`` (:func:`hvcfilter.ranges.install`): the
    effective table that lookups use, in ID order.
    """

    __slots__ = (
        "bases",
        "installed",
        "invalid",
        "kernel",
        "kernel_ids",
        "lasts",
        "overlapping",
        "reach",
        "reserved_hits",
        "spec",
        "valid",
    )

    def __init__(self, spec: FilterSpec) -> None:
        self.spec = spec
        ranges = spec.ranges
        valid = [r for r in ranges if r.nr_functions and r.base + r.nr_functions <= _U32_END]
        self.invalid: list[FilterRange] = (
            [r for r in ranges if not (r.nr_functions and r.base + r.nr_functions <= _U32_END)]
            if len(valid) != len(ranges)
            else []
        )
        bases = [r.base for r in valid]
        if not all(map(operator.le, bases, islice(bases, 1, None))):
            # Base alone is enough (ties keep entry order) and an int key sorts ~10x
            # faster than a (base, nr) tuple: 100k shuffled records in ~7 ms.
            valid.sort(key=operator.attrgetter("base"))
            bases = [r.base for r in valid]
        lasts = [r.base + r.nr_functions - 1 for r in valid]
        self.valid, self.bases, self.lasts = valid, bases, lasts
        # reach[i]: the highest last ID among valid[0..i]; a record overlaps an
        # earlier one exactly when its base is <= the reach before it.
        self.reach = list(accumulate(lasts, max))
        self.overlapping = list(
            compress(count(1), map(operator.le, islice(bases, 1, None), self.reach))
        )
        self.reserved_hits = self._reserved_hits(spec.profile)
        self.installed: RangeTree[FilterRange] = (
            # Disjoint and clear of the reserved ranges: every record stays, as sorted.
            RangeTree.from_sorted(bases, lasts, valid)
            if not self.overlapping and not self.reserved_hits
            else self._install()
        )
        self.kernel = kernel_calls(spec.profile, spec.vm)
        self.kernel_ids = sorted(self.kernel)

    def _reserved_hits(self, profile: KernelProfile) -> list[tuple[int, tuple[int, int]]]:
        hits = []
        bases, lasts, reach = self.bases, self.lasts, self.reach
        for first, last in profile.reserved_ranges:
            start = bisect.bisect_left(bases, first)
            stop = bisect.bisect_right(bases, last)
            # Records starting before the reserved range reach into it only if
            # the running maximum of last IDs does: usually none, found by bisect.
            earliest = bisect.bisect_left(reach, first, 0, start)
            for i in range(earliest, start):
                if lasts[i] >= first:
                    hits.append((i, (first, last)))
            hits.extend((i, (first, last)) for i in range(start, stop))
        hits.sort()
        return hits

    def _install(self) -> RangeTree[FilterRange]:
        """What the kernel keeps of the valid records, installed in payload order."""
        bases, lasts = self.bases, self.lasts
        if self.spec.layout == "as-written":
            order = sorted(range(len(self.valid)), key=lambda i: self.valid[i].entry)
            spans = zip(map(bases.__getitem__, order), map(lasts.__getitem__, order), strict=True)
            tree, _ = install(spans, self.spec.profile)
            kept = [order[n] for n in tree.values if n != RESERVED]
        else:
            # Compiled payloads are sorted by base: install in that order.
            tree, _ = install(zip(bases, lasts, strict=True), self.spec.profile)
            kept = [n for n in tree.values if n != RESERVED]
        return RangeTree.from_sorted(
            [self.bases[i] for i in kept],
            [self.lasts[i] for i in kept],
            [self.valid[i] for i in kept],
        )

    def lookup(self, fid: int) -> FilterRange | None:
        """The installed record that covers ``fid``, if any."""
        i = self.installed.find(fid)
        return self.installed.values[i] if i >= 0 else None

    def action_at(self, fid: int) -> tuple[Action | None, FilterRange | None]:
        """The effective filter action at ``fid`` (None: no entry or explicit handle)."""
        rec = self.lookup(fid)
        if rec is None or rec.action is Action.HANDLE:
            return None, rec
        return rec.action, rec

    def kernel_ids_in(self, first: int, last: int) -> list[int]:
        """The IDs KVM answers within ``first..last``."""
        ids = self.kernel_ids
        return ids[bisect.bisect_left(ids, first) : bisect.bisect_right(ids, last)]


_CACHE: dict[int, tuple[FilterSpec, _Analysis]] = {}
_CACHE_SIZE = 4


def _analysis(spec: FilterSpec) -> _Analysis:
    """The shared analysis of ``spec``, built once and reused by every check."""
    hit = _CACHE.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1]
    result = _Analysis(spec)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[id(spec)] = (spec, result)
    return result


# --------------------------------------------------------------------------- wording helpers


def _span(first: int, last: int) -> str:
    """``0x84000003 PSCI_CPU_ON_32`` or ``0x84000000-0x8400001F``."""
    if first == last:
        return smccc.catalogue().label(first)
    return str(smccc.IdRange(first, last))


def _span_names(first: int, last: int, limit: int = 3) -> str:
    """A span, with up to ``limit`` catalogue names it contains."""
    if first == last:
        return _span(first, last)
    names = [e.name for e in islice(smccc.catalogue().in_range(first, last), limit + 1)]
    text = _span(first, last)
    if not names:
        return text
    shown = ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")
    return f"{text} ({shown})"


def record_label(rec: FilterRange) -> str:
    """How messages name a record: ``range[5] (fwd_to_user 0x84000003 PSCI_CPU_ON_32)``."""
    return f"range[{rec.entry}] ({rec.action.label} {_span(rec.base, rec.last)})"


def _entry_label(records: Sequence[FilterRange]) -> str:
    """A record label naming every involved record of one entry: ``range[2] (deny A, B)``."""
    if len(records) == 1:
        return record_label(records[0])
    spans = [_span(r.base, r.last) for r in records[:3]]
    more = ", ..." if len(records) > 3 else ""
    return f"range[{records[0].entry}] ({records[0].action.label} {', '.join(spans)}{more})"


class _Groups:
    """Findings collected per spec entry, in the order entries were first met."""

    def __init__(self) -> None:
        self.items: dict[int, tuple[list[FilterRange], list[str]]] = {}

    def add(self, rec: FilterRange, item: str) -> None:
        records, items = self.items.setdefault(rec.entry, ([], []))
        if not any(r is rec for r in records):
            records.append(rec)
        items.append(item)

    def __iter__(self) -> Iterator[tuple[int, str, list[str]]]:
        for entry, (records, items) in sorted(self.items.items()):
            yield entry, _entry_label(sorted(records, key=lambda r: r.base)), items


def _join(items: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    if len(items) > limit:
        shown += f" and {len(items) - limit} more"
    return shown


def _labels(fids: Sequence[int], limit: int = 6) -> str:
    cat = smccc.catalogue()
    return _join([cat.label(f) for f in fids], limit)


def _where(spec: FilterSpec, entry: int, key: str | None = None) -> Location:
    selector = key or _SELECTOR_KEY.get(type(spec.entries[entry]), "action")
    return locate(spec, ("range", entry, selector))


def _diag(
    check: str,
    spec: FilterSpec,
    entry: int,
    message: str,
    hint: str | None,
    *,
    key: str | None = None,
) -> Diagnostic:
    code, name, severity = _META[check]
    return Diagnostic(code, name, severity, message, _where(spec, entry, key), hint)


def _block_text(fid: int) -> str:
    d = smccc.decode(fid)
    return f"{d.call_type.value} {d.convention.value.upper()} owner {d.owner} ({d.owner_display})"


def _reserved_text(first: int, last: int) -> str:
    d = smccc.decode(first)
    return f"{d.owner_display} {d.convention.value.upper()} range {smccc.IdRange(first, last)}"


# --------------------------------------------------------------------------- the checks


def check_overlaps(spec: FilterSpec) -> Iterator[Diagnostic]:
    """Two records share function IDs: the kernel rejects the second with EEXIST.

    KVM keeps one action per function ID. ``KVM_SET_DEVICE_ATTR`` fails with
    EEXIST for a range that touches any ID already in the filter, whatever
    the order the VMM installs them in and even when the actions agree
    (overlapping by one ID at either end is enough). A VMM that stops at the
    first failure is left with a partly installed table: discard that VM.

    Fail: ``base = 0x84000000, nr_functions = 0x20, action = "deny"`` beside
    ``function = "PSCI_CPU_ON_32", action = "fwd_to_user"`` (they share 0x84000003).
    Pass: ``base = 0x84000000, nr_functions = 3`` beside ``base = 0x84000003,
    nr_functions = 0x1D``: adjacent ranges are fine.
    """
    a = _analysis(spec)
    if not a.overlapping:
        return
    # Which earlier record holds the reach; computed only when something overlaps.
    holder: list[int] = []
    best = -1
    for i, last in enumerate(a.lasts):
        if best < 0 or last > a.lasts[best]:
            best = i
        holder.append(best)
    for i in a.overlapping:
        first_rec, second = a.valid[holder[i - 1]], a.valid[i]
        shared = _span_names(second.base, min(second.last, first_rec.last))
        same = " (the same entry)" if first_rec.entry == second.entry else ""
        yield _diag(
            "overlap",
            spec,
            second.entry,
            f"{record_label(first_rec)} overlaps {record_label(second)}{same} at {shared}: "
            "the kernel rejects whichever it receives second with EEXIST",
            "make the ranges disjoint: each function ID can have only one action",
        )


def check_reserved(spec: FilterSpec) -> Iterator[Diagnostic]:
    """A range touches an Arm Architecture range that KVM reserves: EEXIST.

    KVM holds ``0x80000000-0x8000FFFF`` (SMC32) and ``0xC0000000-0xC000FFFF``
    (SMC64) as fixed ``handle`` ranges so that userspace cannot misreport the
    Spectre mitigations (SMCCC_ARCH_WORKAROUND_*) to the guest. Any range that
    touches them fails with EEXIST, whatever its action, even ``handle``; so
    does forwarding SMCCC_ARCH_SOC_ID (0x80000002), which KVM answers with
    NOT_SUPPORTED. Arch IDs with bits 23:16 set (``0x80010000`` and up) and
    yielding arch IDs (``0x00000000-0x0000FFFF``) are not reserved.

    Fail: ``base = 0x80000000, nr_functions = 0x10, action = "deny"``, or
    ``function = "SMCCC_ARCH_SOC_ID", action = "fwd_to_user"``.
    Pass: ``base = 0x80010000, nr_functions = 0x3FFF0000, action = "deny"``.
    """
    a = _analysis(spec)
    profile = spec.profile
    for i, (first, last) in a.reserved_hits:
        rec = a.valid[i]
        lo, hi = max(rec.base, first), min(rec.last, last)
        hint = (
            "KVM always handles these IDs itself; start the range after the reserved one "
            f"({format_id(last + 1)}) or leave the Arm Architecture calls out"
        )
        if rec.action is Action.FWD_TO_USER and lo <= 0x8000_0002 <= hi:
            hint = (
                "SMCCC_ARCH_SOC_ID (0x80000002) is reserved: it cannot be forwarded or "
                "denied, and KVM answers it with NOT_SUPPORTED"
            )
        yield _diag(
            "reserved",
            spec,
            rec.entry,
            f"{record_label(rec)} touches the KVM-reserved {_reserved_text(first, last)} at "
            f"{_span_names(lo, hi)}: kernel {profile.name} rejects it with EEXIST",
            hint,
        )


def check_empty_or_wrapping(spec: FilterSpec) -> Iterator[Diagnostic]:
    """A record with no IDs, or one that wraps past 0xFFFFFFFF: EINVAL.

    The kernel computes ``end = base + nr_functions - 1`` in 32 bits and rejects
    the record when ``end < base``: ``nr_functions = 0`` and any range that runs
    past 0xFFFFFFFF. ``base = 0, nr_functions = 0`` is the exception whose errno
    depends on the kernel: its 32-bit end wraps to 0xFFFFFFFF, so Linux 6.12
    lets it through validation and answers EEXIST (it overlaps the reserved
    ranges), while 7.2 answers EINVAL. ``base = 0, end = 0xFFFFFFFF`` becomes
    that record, because 2**32 IDs do not fit in the u32 ``nr_functions``.

    Fail: ``base = 0x84000000, nr_functions = 0`` or ``base = 0xFFFFFFF0,
    nr_functions = 0x20``.
    Pass: ``base = 0xFFFFFFF0, nr_functions = 0x10`` (ends exactly at 0xFFFFFFFF).
    """
    a = _analysis(spec)
    profile = spec.profile
    for rec in a.invalid:
        entry = spec.entries[rec.entry]
        uses_end = isinstance(entry, RawEntry) and entry.end is not None
        key = "end" if uses_end else "nr_functions"
        if rec.base == 0 and rec.nr_functions == 0:
            what = (
                "base 0x00000000 with end 0xFFFFFFFF needs 2**32 IDs, which nr_functions "
                "(u32) cannot hold: the record becomes base = 0, nr_functions = 0"
                if uses_end
                else "base = 0, nr_functions = 0 is empty"
            )
            reason = (
                "its 32-bit end wraps to 0xFFFFFFFF and the full range meets the reserved ranges"
                if profile.zero_zero_errno == errno.EEXIST
                else "the kernel validates it as empty"
            )
            yield _diag(
                "empty",
                spec,
                rec.entry,
                f"range[{rec.entry}] ({rec.action.label}): {what}; kernel {profile.name} "
                f"rejects it with {errno_name(profile.zero_zero_errno)} ({reason})",
                "to cover everything except the reserved ranges use 0x00000000+0x80000000, "
                "0x80010000+0x3FFF0000 and 0xC0010000+0x3FFF0000",
                key=key,
            )
        elif isinstance(entry, RawEntry) and entry.end is not None and entry.end < entry.base:
            yield _diag(
                "empty",
                spec,
                rec.entry,
                f"range[{rec.entry}] ({rec.action.label}) has end {format_id(entry.end)} below "
                f"base {format_id(rec.base)}: as a record nr_functions becomes "
                f"{rec.nr_functions:#x}, which is empty or wraps past 0xFFFFFFFF; kernel "
                f"{profile.name} rejects it with EINVAL",
                "end is the last ID (inclusive) and must not be below base",
                key=key,
            )
        elif rec.nr_functions == 0:
            yield _diag(
                "empty",
                spec,
                rec.entry,
                f"range[{rec.entry}] ({rec.action.label} at {format_id(rec.base)}) has "
                f"nr_functions = 0: kernel {profile.name} rejects the empty range with EINVAL",
                "nr_functions counts IDs: use 1 for a single function",
                key=key,
            )
        else:
            room = _U32_END - rec.base
            yield _diag(
                "empty",
                spec,
                rec.entry,
                f"range[{rec.entry}] ({rec.action.label} {format_id(rec.base)} + "
                f"{rec.nr_functions:#x}) wraps past 0xFFFFFFFF (its 32-bit end "
                f"{format_id(rec.end32)} is below the base): kernel {profile.name} rejects it "
                "with EINVAL",
                f"the last ID is 0xFFFFFFFF: use at most nr_functions = {room:#x}",
                key=key,
            )


def check_handle_ranges(spec: FilterSpec) -> Iterator[Diagnostic]:
    """An explicit ``handle`` range: it changes nothing, but blocks later ranges.

    ``handle`` means "no opinion": KVM already handles every ID that no range
    covers. An explicit handle range still occupies its IDs, so a later
    ``deny`` or ``fwd_to_user`` range over them fails with EEXIST; the kernel
    documentation advises against writing them. Nor can ``handle`` enable a
    call KVM does not implement: the guest still gets NOT_SUPPORTED (-1).

    Fail: ``owner = "vendor-hyp", action = "handle"``.
    Pass: leave the IDs out of the table.
    """
    a = _analysis(spec)
    by_entry: dict[int, list[FilterRange]] = {}
    for rec in a.valid:
        if rec.action is Action.HANDLE:
            by_entry.setdefault(rec.entry, []).append(rec)
    for entry, records in sorted(by_entry.items()):
        implemented = any(a.kernel_ids_in(r.base, r.last) for r in records)
        extra = (
            ""
            if implemented
            else "; KVM implements none of its IDs, so the guest gets NOT_SUPPORTED (-1) "
            "there whatever the table says"
        )
        yield _diag(
            "handle",
            spec,
            entry,
            f"{_entry_label(records)} is an explicit handle range: KVM handles unfiltered IDs "
            "anyway, so it changes nothing, but it occupies its IDs and any deny or "
            f"fwd_to_user range over them fails with EEXIST{extra}",
            "remove it; a table needs only its deny and fwd_to_user ranges",
        )


def _crossing(base: int, last: int) -> str | None:
    """Why ``base..last`` crosses an owner, convention or service boundary, if it does."""
    if (base ^ last) >> 24 and (base >> 31 or last >> 31):
        # Whole function-number blocks are fine ("deny everything above X");
        # starting or ending inside one while spilling into the next is not.
        starts_inside = 0 < (base & smccc.OWNER_SPAN) <= smccc.FUNCTION_NUMBER_MASK
        ends_inside = (last & smccc.OWNER_SPAN) < smccc.FUNCTION_NUMBER_MASK
        if starts_inside or ends_inside:
            edge = ((base >> 24) + 1) << 24
            return f"crosses from {_block_text(base)} into {_block_text(edge)} at {format_id(edge)}"
    if (base >> 24) in _SVC_BLOCKS or (last >> 24) in _SVC_BLOCKS:
        i = bisect.bisect_right(_SVC_FIRST, base) - 1
        if i >= 0 and _SVC_FIRST[i] < base <= _SVC_LAST[i] < last:
            return (
                f"starts inside {_SVC_TITLE[i]} ({smccc.IdRange(_SVC_FIRST[i], _SVC_LAST[i])}) "
                f"and runs past its end into {_family_at(_SVC_LAST[i] + 1)}"
            )
        j = bisect.bisect_right(_SVC_FIRST, last) - 1
        if j >= 0 and base < _SVC_FIRST[j] <= last < _SVC_LAST[j]:
            return (
                f"ends inside {_SVC_TITLE[j]} ({smccc.IdRange(_SVC_FIRST[j], _SVC_LAST[j])}) "
                f"after starting in {_family_at(_SVC_FIRST[j] - 1)}"
            )
    return None


def _family_at(fid: int) -> str:
    i = bisect.bisect_right(_SVC_FIRST, fid) - 1
    if i >= 0 and fid <= _SVC_LAST[i]:
        return f"{_SVC_TITLE[i]} at {format_id(fid)}"
    return f"unassigned function numbers at {format_id(fid)}"


def check_boundaries(spec: FilterSpec) -> Iterator[Diagnostic]:
    """A range spills across an SMCCC owner, convention or service-family boundary.

    Function IDs are grouped by call type and convention (bits 31:30), owner
    (bits 29:24) and, within the Standard Secure and Standard Hypervisor
    owners, service families: PSCI 0x00-0x1F, SDEI 0x20-0x3F, TRNG 0x50-0x5F,
    FF-A 0x60-0xFF, RMI, RSI, general queries 0xFF00-0xFFFF and PV time. A range
    that starts or ends inside one of these blocks and runs into the next is
    usually an off-by-one or a PSCI/SDEI mix-up. Ranges made of whole blocks
    (``0x80010000-0xBFFFFFFF``) are fine.

    Fail: ``base = 0x84000010, end = 0x8400002F`` (half PSCI, half SDEI).
    Pass: ``service = "psci"``, or ``base = 0x84000000, end = 0x8400003F``
    (all of PSCI and SDEI).
    """
    a = _analysis(spec)
    bases, lasts = a.bases, a.lasts
    crosses_block = compress(
        count(), map(operator.rshift, map(operator.xor, bases, lasts), repeat(24))
    )
    in_services = compress(
        count(), map(_SVC_BLOCKS.__contains__, map(operator.rshift, bases, repeat(24)))
    )
    for i in sorted(set(crosses_block).union(in_services)):
        reason = _crossing(bases[i], lasts[i])
        if reason:
            rec = a.valid[i]
            yield _diag(
                "boundary",
                spec,
                rec.entry,
                f"{record_label(rec)} {reason}",
                "split the range at the boundary, or select whole families with "
                'service = "..." or owner = "..."',
            )


def check_mergeable(spec: FilterSpec) -> Iterator[Diagnostic]:
    """Adjacent ranges of separate entries with the same action could be one range.

    The compiler already merges the records of one entry (and, with the
    default ``layout = "merged"``, adjacent records across entries); this note
    is about separate ``[[range]]`` entries that touch end to start with the
    same action: one entry says the same more simply, and with
    ``layout = "sorted"`` or ``"as-written"`` it also saves a
    ``KVM_SET_DEVICE_ATTR`` call. Ranges are not suggested for merging across
    an owner or service boundary, named ``service``/``owner`` selectors are
    left alone, and ``handle`` ranges are left to HVF204.

    Fail: ``base = 0xC2000000, nr_functions = 0x10`` and
    ``base = 0xC2000010, nr_functions = 0x10``, both ``fwd_to_user``.
    Pass: one range ``base = 0xC2000000, nr_functions = 0x20``, or the same two
    with different actions.
    """
    a = _analysis(spec)
    acc, bases, lasts = a.installed.values, a.installed.firsts, a.installed.lasts
    touching = compress(
        count(1),
        map(operator.eq, islice(bases, 1, None), map(operator.add, lasts, repeat(1))),
    )
    run_start: int | None = None
    run_end = -2

    def report(start: int, end: int) -> Diagnostic:
        first, last = acc[start], acc[end]
        if end == start + 1:
            who = f"{record_label(first)} and {record_label(last)} are"
        else:
            who = (
                f"{record_label(first)} and the next {end - start} ranges "
                f"(range[{acc[start + 1].entry}] ... range[{last.entry}]) are"
            )
        return _diag(
            "mergeable",
            spec,
            first.entry,
            f"{who} adjacent with the same action: one {first.action.label} range "
            f"{_span(first.base, last.last)} would do",
            f"merge them into one [[range]] with base = {format_id(first.base)} and "
            f"end = {format_id(last.last)}",
        )

    named = (ServiceEntry, OwnerEntry)
    for i in touching:
        prev, cur = acc[i - 1], acc[i]
        extending = run_start is not None and run_end == i - 1
        start = run_start if extending and run_start is not None else i - 1
        joinable = (
            prev.action is cur.action
            and cur.action is not Action.HANDLE
            and prev.entry != cur.entry
            # Service and owner selectors name their IDs on purpose; a raw range is no better.
            and not isinstance(spec.entries[prev.entry], named)
            and not isinstance(spec.entries[cur.entry], named)
            and _crossing(bases[start], lasts[i]) is None
        )
        if joinable and extending:
            run_end = i
            continue
        if run_start is not None:
            yield report(run_start, run_end)
            run_start = None
        if joinable:
            run_start, run_end = i - 1, i
    if run_start is not None:
        yield report(run_start, run_end)


@dataclass(frozen=True, slots=True)
class _Twin:
    one: int
    other: int


@cache
def _twin_pairs() -> tuple[_Twin, ...]:
    """Catalogue calls defined in both widths: same stem, or names differing in 32/64."""
    cat = smccc.catalogue()
    pairs: dict[tuple[int, int], _Twin] = {}
    for entry in cat.entries:
        partners = list(cat.twins(entry))
        flipped = cat.by_id(entry.function_id ^ smccc.CONVENTION_BIT)
        if flipped is not None and flipped.name.replace("64", "32") == entry.name.replace(
            "64", "32"
        ):
            partners.append(flipped)
        for partner in partners:
            a, b = sorted((entry.function_id, partner.function_id))
            pairs[(a, b)] = _Twin(a, b)
    return tuple(sorted(pairs.values(), key=lambda t: (t.one, t.other)))


def check_twin_gaps(spec: FilterSpec) -> Iterator[Diagnostic]:
    """A call is filtered in one width but its SMC32/SMC64 twin is treated differently.

    Many calls exist as an SMC32 and an SMC64 ID (``PSCI_CPU_ON_32``
    0x84000003 and ``PSCI_CPU_ON_64`` 0xC4000003). The filter matches exact
    IDs, so a policy written for one width does not cover the other: a guest
    that uses the other ID reaches KVM instead. This is how a public VMM patch
    series forwarded only the 64-bit CPU_ON and left the 32-bit one in the
    kernel. Warned when the twins get different filter actions, or when one is
    filtered and KVM still answers the other. (Denying one width of a call
    KVM does not implement is not reported: the guest gets NOT_SUPPORTED for
    both.)

    Fail: ``function = "PSCI_CPU_ON_64", action = "fwd_to_user"`` alone.
    Pass: ``functions = ["PSCI_CPU_ON_32", "PSCI_CPU_ON_64"], action = "fwd_to_user"``.
    """
    a = _analysis(spec)
    cat = smccc.catalogue()
    groups = _Groups()
    for twin in _twin_pairs():
        act_one, rec_one = a.action_at(twin.one)
        act_other, rec_other = a.action_at(twin.other)
        if act_one is act_other:
            continue  # both unfiltered, or filtered alike
        if act_one is not None and act_other is not None and rec_one is not None:
            verb = "forwarded" if act_other is Action.FWD_TO_USER else "denied"
            entry = rec_other.entry if rec_other is not None else "?"
            status = f"{verb} by range[{entry}]"
            fid, ofid, rec = twin.one, twin.other, rec_one
        else:
            act: Action | None
            if act_one is not None:
                fid, ofid, act, rec_f = twin.one, twin.other, act_one, rec_one
            else:
                fid, ofid, act, rec_f = twin.other, twin.one, act_other, rec_other
            if rec_f is None:
                continue
            rec = rec_f
            if ofid in a.kernel:
                status = "answered by KVM, so a guest using it bypasses the filter"
            elif act is Action.DENY:
                continue  # NOT_SUPPORTED either way
            else:
                status = "not forwarded, so the guest gets NOT_SUPPORTED for it"
        groups.add(rec, f"{cat.label(fid)}, whose twin {cat.label(ofid)} is {status}")
    for entry, label, items in groups:
        action = spec.entries[entry].action
        verb = "forwards" if action == Action.FWD_TO_USER.label else "denies"
        shown = "; ".join(items[:4]) + (f"; and {len(items) - 4} more" if len(items) > 4 else "")
        yield _diag(
            "twin",
            spec,
            entry,
            f"{label} {verb} {shown}",
            'filter both widths alike, e.g. functions = ["PSCI_CPU_ON_32", '
            '"PSCI_CPU_ON_64"], or a service/owner entry without a convention',
        )


def check_boot_calls(spec: FilterSpec) -> Iterator[Diagnostic]:
    """A ``deny`` covers calls a guest needs to boot, power off or reboot.

    Linux probes PSCI with PSCI_VERSION and PSCI_FEATURES, starts secondary
    CPUs with CPU_ON (either width), and powers off and reboots with
    SYSTEM_OFF and SYSTEM_RESET. Denied, the guest runs on one CPU and cannot
    shut down cleanly. A VM on PSCI 0.1 uses KVM's legacy CPU_ON 0x95C1BA60
    instead. To take these calls over, forward them and implement them in the
    VMM.

    Fail: ``service = "psci", action = "deny"``.
    Pass: ``function = "PSCI_MIGRATE_32", action = "deny"``, or the PSCI
    service with ``action = "fwd_to_user"``.
    """
    a = _analysis(spec)
    boot = list(_BOOT_CALLS)
    if _psci_version(spec.profile, spec.vm) == (0, 1):
        boot.append(kvm_calls.KVM_PSCI_FN_CPU_ON)
    cat = smccc.catalogue()
    groups = _Groups()
    for fid in boot:
        act, rec = a.action_at(fid)
        if act is Action.DENY and rec is not None:
            groups.add(rec, cat.label(fid))
    for entry, label, items in groups:
        yield _diag(
            "boot",
            spec,
            entry,
            f"{label} denies calls a guest needs to boot or power off: "
            f"{_join(items)}; the guest cannot probe PSCI, start secondary CPUs, "
            "or power off and reboot",
            "leave them to KVM, or forward them (fwd_to_user) to a VMM that implements them",
        )


def check_forwarded_kernel_calls(spec: FilterSpec) -> Iterator[Diagnostic]:
    """A ``fwd_to_user`` range takes over calls KVM would answer itself.

    Forwarded calls exit to the VMM, which must now implement them: PSCI
    (CPU_ON, SYSTEM_OFF...), TRNG, PV time or the KVM vendor calls that KVM
    answers for this VM (its PSCI version and firmware bitmaps are taken into
    account). That can be the intent (a VMM that implements PSCI itself), so
    this is a warning that names every call taken over.

    Fail: ``base = 0x84000000, nr_functions = 0x20, action = "fwd_to_user"``.
    Pass: ``owner = "sip", action = "fwd_to_user"`` (KVM implements no SiP calls).
    """
    a = _analysis(spec)
    cat = smccc.catalogue()
    groups = _Groups()
    for fid in a.kernel_ids:
        act, rec = a.action_at(fid)
        if act is Action.FWD_TO_USER and rec is not None:
            groups.add(rec, cat.label(fid))
    for entry, label, items in groups:
        count_text = "a call" if len(items) == 1 else f"{len(items)} calls"
        yield _diag(
            "forward",
            spec,
            entry,
            f"{label} forwards {count_text} that KVM would answer itself: "
            f"{_join(items)}; the VMM must now implement {'it' if len(items) == 1 else 'them'}",
            "narrow the range to the calls the VMM implements, or make sure it implements these",
        )


def check_hinted_ids(spec: FilterSpec) -> Iterator[Diagnostic]:
    """A fast-call range covers only IDs with the SVE hint or reserved bits set.

    Bits 23:17 of a fast-call ID are reserved (zero) and bit 16 is the SMCCC
    1.3 SVE hint. KVM compares all 32 bits of W0 and does not strip the hint,
    so ``0x84010000`` is not PSCI_VERSION: a range there does not filter the
    plain calls, and a range on the plain IDs does not catch hinted ones.
    Ranges that merely extend into that space (whole-owner selectors, "deny
    everything" tables) are not reported.

    Fail: ``base = 0x84010000, nr_functions = 0x20, action = "deny"``.
    Pass: ``base = 0x84000000, nr_functions = 0x20, action = "deny"``.
    """
    a = _analysis(spec)
    bases, lasts = a.bases, a.lasts
    candidates = compress(
        count(), map(operator.and_, map(operator.rshift, bases, repeat(16)), repeat(0xFF))
    )
    for i in candidates:
        base, last = bases[i], lasts[i]
        if not base >> 31 or (base ^ last) >> 24 or not (last >> 16) & 0xFF:
            continue
        owner = (base >> 24) & 0x3F
        if 8 <= owner <= 47:
            continue  # no SMCCC owner: not a hinted call (KVM's legacy PSCI IDs live here)
        rec = a.valid[i]
        plain_first, plain_last = base & ~0x00FF_0000, last & ~0x00FF_0000
        if (base >> 16) & 0xFF == 1 and (last >> 16) & 0xFF == 1:
            what = "the SVE hint bit (16) set"
        else:
            what = "reserved bits 23:17 set (malformed fast calls)"
        yield _diag(
            "hint",
            spec,
            rec.entry,
            f"{record_label(rec)} covers only IDs with {what}: they are not "
            f"{_span_names(plain_first, plain_last)}, and KVM does not strip these bits",
            f"to filter the plain calls use base = {format_id(plain_first)}",
        )


def check_legacy_psci(spec: FilterSpec) -> Iterator[Diagnostic]:
    """A PSCI 0.1 VM filters the standard PSCI IDs but not KVM's legacy ones.

    With ``[vm] psci_version = "0.1"`` KVM serves only its private PSCI 0.1
    IDs 0x95C1BA5E-0x95C1BA61 (CPU_SUSPEND, CPU_OFF, CPU_ON, MIGRATE) and
    answers the standard 0x84000000 block with NOT_SUPPORTED. Such a guest
    calls the legacy IDs, so a policy on the standard PSCI IDs does not reach
    it.

    Fail: ``[vm] psci_version = "0.1"`` with ``service = "psci", action = "fwd_to_user"``.
    Pass: the same plus ``base = 0x95C1BA5E, nr_functions = 4, action = "fwd_to_user"``.
    """
    if _psci_version(spec.profile, spec.vm) != (0, 1):
        return
    a = _analysis(spec)
    filtered = None
    block = range(kvm_calls.PSCI_FUNCTION_NUMBER_MAX + 1)
    for fid in (*(0x8400_0000 + n for n in block), *(0xC400_0000 + n for n in block)):
        act, rec = a.action_at(fid)
        if act is not None and rec is not None:
            filtered = rec
            break
    if filtered is None:
        return
    first, last = kvm_calls.LEGACY_PSCI.first, kvm_calls.LEGACY_PSCI.last
    open_ids = [fid for fid in range(first, last + 1) if a.action_at(fid)[0] is None]
    if not open_ids:
        return
    yield _diag(
        "legacy",
        spec,
        filtered.entry,
        f"{record_label(filtered)} filters standard PSCI IDs, but the VM uses PSCI 0.1 "
        f"([vm] psci_version), whose guests call KVM's legacy IDs: {_labels(open_ids)} "
        "are left to KVM",
        f"filter {smccc.IdRange(first, last)} as well, or raise the VM's PSCI version",
    )


CHECKS: tuple[Check, ...] = (
    Check("HVF201", "overlapping-ranges", Severity.ERROR, check_overlaps),
    Check("HVF202", "reserved-range", Severity.ERROR, check_reserved),
    Check("HVF203", "empty-or-wrapping-range", Severity.ERROR, check_empty_or_wrapping),
    Check("HVF204", "explicit-handle", Severity.WARNING, check_handle_ranges),
    Check("HVF205", "mergeable-ranges", Severity.NOTE, check_mergeable),
    Check("HVF206", "crosses-boundary", Severity.WARNING, check_boundaries),
    Check("HVF301", "twin-gap", Severity.WARNING, check_twin_gaps),
    Check("HVF302", "denies-boot-call", Severity.WARNING, check_boot_calls),
    Check("HVF303", "forwards-kernel-call", Severity.WARNING, check_forwarded_kernel_calls),
    Check("HVF304", "hinted-or-malformed-id", Severity.WARNING, check_hinted_ids),
    Check("HVF305", "legacy-psci-gap", Severity.WARNING, check_legacy_psci),
)
_KIND = {
    "overlap": "HVF201",
    "reserved": "HVF202",
    "empty": "HVF203",
    "handle": "HVF204",
    "mergeable": "HVF205",
    "boundary": "HVF206",
    "twin": "HVF301",
    "boot": "HVF302",
    "forward": "HVF303",
    "hint": "HVF304",
    "legacy": "HVF305",
}
_META: dict[str, tuple[str, str, Severity]] = {
    kind: next((c.code, c.name, c.severity) for c in CHECKS if c.code == code)
    for kind, code in _KIND.items()
}


# --------------------------------------------------------------------------- lint API


@dataclass(frozen=True, slots=True)
class FileReport:
    """The findings for one spec file, sorted by position."""

    path: str
    diagnostics: tuple[Diagnostic, ...]
    spec: FilterSpec | None = field(default=None, compare=False, repr=False)

    @property
    def unreadable(self) -> bool:
        """The file could not be read at all (HVF001)."""
        return any(d.code == "HVF001" for d in self.diagnostics)

    def count(self, severity: Severity) -> int:
        """How many findings have this severity."""
        return sum(1 for d in self.diagnostics if d.severity is severity)


@dataclass(frozen=True, slots=True)
class LintReport:
    """The findings for every file linted, in the order the files were given."""

    files: tuple[FileReport, ...]

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        """Every finding of every file."""
        return tuple(d for f in self.files for d in f.diagnostics)

    @property
    def unreadable(self) -> bool:
        """At least one file could not be read (the CLI exits 2)."""
        return any(f.unreadable for f in self.files)

    def count(self, severity: Severity) -> int:
        """How many findings across all files have this severity."""
        return sum(f.count(severity) for f in self.files)

    def failed(self, *, strict: bool = False) -> bool:
        """Errors were found, or (``strict``) warnings."""
        worst = Severity.WARNING if strict else Severity.ERROR
        return any(d.severity >= worst for d in self.diagnostics)


def check_spec(spec: FilterSpec) -> list[Diagnostic]:
    """Run every registered check on a loaded spec; findings sorted by position.

    Raises:
        Exception: only on a bug in a check (the CLI reports it as an internal error).
    """
    found: list[Diagnostic] = []
    for check in CHECKS:
        found.extend(check.func(spec))
    _CACHE.pop(id(spec), None)
    found = _apply_allow(spec, found)
    found.sort(key=Diagnostic.sort_key)
    return found


_ENTRY_KEY = re.compile(r"^range\[(\d+)\]")


def _apply_allow(spec: FilterSpec, found: list[Diagnostic]) -> list[Diagnostic]:
    """Drop the warnings and notes a spec's ``allow`` lists accept; flag bad ``allow`` items.

    A finding belongs to the ``[[range]]`` its location key names. Errors are
    never dropped: the kernel rejects the table whatever the spec says.
    """
    scopes: list[tuple[tuple[str | int, ...], Sequence[str]]] = [(("filter",), spec.allow)]
    scopes += [(("range", i), e.allow) for i, e in enumerate(spec.entries) if e.allow]
    if len(scopes) == 1 and not spec.allow:
        return found
    # Only findings about a spec can be accepted in it: not payload or replay rules.
    spec_rules: list[RuleLike] = [*INPUT_RULES, *CHECKS]
    rules = {r.code: r for r in spec_rules}
    by_name = {r.name: r for r in rules.values()}
    accepted_everywhere: set[str] = set()
    accepted: dict[int, set[str]] = {}
    problems: list[Diagnostic] = []
    for scope, items in scopes:
        codes = (
            accepted_everywhere
            if scope == ("filter",)
            else accepted.setdefault(int(scope[1]), set())
        )
        for position, item in enumerate(items):
            rule = rules.get(item) or by_name.get(item)
            where = locate(spec, (*scope, "allow", position))
            if rule is None:
                close = smccc.suggest(item, [*rules, *by_name])
                problems.append(
                    _input_diag(
                        f"allow names no rule about specs: {item!r}"
                        + (f"; did you mean {close[0]!r}?" if close else ""),
                        where,
                        "use a code or name from `hvcfilter explain`",
                    )
                )
            elif rule.severity is Severity.ERROR:
                problems.append(
                    _input_diag(
                        f"allow cannot accept {rule.code} {rule.name}: it is an error, and the "
                        "kernel rejects the table whatever the spec says",
                        where,
                        "fix the range instead",
                    )
                )
            else:
                codes.add(rule.code)
    if not accepted_everywhere and not accepted:
        return found + problems
    kept = []
    for diag in found:
        if diag.severity is not Severity.ERROR:
            if diag.code in accepted_everywhere:
                continue
            match = _ENTRY_KEY.match(diag.location.key or "")
            if match and diag.code in accepted.get(int(match.group(1)), ()):
                continue
        kept.append(diag)
    return kept + problems


def _input_diag(message: str, where: Location, hint: str) -> Diagnostic:
    rule = next(r for r in INPUT_RULES if r.code == "HVF108")
    return Diagnostic(rule.code, rule.name, rule.severity, message, where, hint)


def lint_result(result: LoadResult) -> FileReport:
    """Check what :func:`hvcfilter.spec.load` returned: its own findings plus the checks'."""
    found = list(result.diagnostics)
    if result.spec is not None:
        found.extend(check_spec(result.spec))
        found.sort(key=Diagnostic.sort_key)
    return FileReport(result.path, tuple(found), result.spec)


def lint_text(text: str, filename: str = "<string>") -> FileReport:
    """Lint spec text (tests and editors); never raises for bad input."""
    return lint_result(loads(text, filename))


def lint_file(path: str | Path) -> FileReport:
    """Lint one spec file; never raises for bad input (unreadable files give HVF001)."""
    return lint_result(load(path))


def lint(paths: Iterable[str | Path]) -> LintReport:
    """Lint every file, even after one fails; reports keep the order of ``paths``."""
    return LintReport(tuple(lint_file(p) for p in paths))


# --------------------------------------------------------------------------- explain API


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
            f"always handled by KVM (reserved {_reserved_text(*reserved)}; any range over it "
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
    covering: list[Coverage] = []
    outcome = None
    if spec is not None:
        a = _analysis(spec)
        installed = a.lookup(fid)
        for rec in spec.ranges:
            if rec.nr_functions and rec.base <= fid <= rec.last and rec.last < _U32_END:
                covering.append(Coverage(rec, _where(spec, rec.entry), rec is installed))
        if installed is None or installed.action is Action.HANDLE:
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
    try:
        value = int(text, 0)
    except ValueError:
        return None
    return value


def _load_for_explain(path: str | Path) -> FilterSpec:
    result = load(path)
    if result.spec is None:
        worst = result.diagnostics[0]
        raise SpecError(
            f"cannot use {result.path} for explain: {worst.location}: {worst.message}"
            + (f" (and {len(result.diagnostics) - 1} more)" if len(result.diagnostics) > 1 else "")
        )
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
                f"{text} is not a 32-bit function ID: KVM compares W0, 0..0xFFFFFFFF"
            )
        fids = [number]
    else:
        try:
            fids = [cat.by_name(text).function_id]
        except KeyError:
            stem = text.upper()
            fids = [e.function_id for e in cat.entries if e.stem == stem] or _service_ids(text)
            if not fids:
                names = [r.name for r in all_rules()] + [e.name for e in cat.entries]
                raise UnknownQueryError(
                    f"{text!r} is not a diagnostic code, rule name, function ID or known "
                    f"function name{_suggestion(text, names)}"
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


def _suggestion(word: str, candidates: Sequence[str]) -> str:
    close = smccc.suggest(word, candidates) or smccc.suggest(word.upper(), candidates)
    return f"; did you mean {' or '.join(close)}?" if close else ""
