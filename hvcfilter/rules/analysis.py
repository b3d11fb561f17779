"""The shared analysis of a spec: one sorted, index-friendly view that every rule reads.

Rules share one view of a spec (:class:`Analysis`, built once per spec by
:func:`analyse`), so linting stays O(n log n) in the number of records: no
per-record catalogue scans and no pairwise comparisons. Beside it, the
kernel facts rules need about a VM (:func:`kernel_calls`) and the SMCCC
owner and service boundaries (:func:`crossing`).
"""

from __future__ import annotations

import bisect
import operator
from itertools import accumulate, compress, count, islice

from hvcfilter import smccc
from hvcfilter.kernel import calls as kvm_calls
from hvcfilter.kernel.filter import RESERVED, RangeTree, install
from hvcfilter.kernel.profiles import KernelProfile
from hvcfilter.model import Action, FilterRange, FilterSpec, VmConfig
from hvcfilter.rules.wording import block_text
from hvcfilter.smccc import format_id

__all__ = [
    "SERVICE_BLOCKS",
    "U32_END",
    "Analysis",
    "analyse",
    "crossing",
    "family_at",
    "forget",
    "kernel_calls",
    "psci_version_of",
    "service_spans",
]

U32_END = 0x1_0000_0000


def psci_version_of(profile: KernelProfile, vm: VmConfig) -> tuple[int, int]:
    """The VM's PSCI version: its ``[vm]`` setting, else the kernel's default."""
    return vm.psci_version if vm.psci_version is not None else profile.psci_version_default


def kernel_calls(profile: KernelProfile, vm: VmConfig | None = None) -> dict[int, str]:
    """The IDs KVM itself answers for a VM with no filter entry, with what it does.

    Takes the VM's PSCI version and firmware bitmaps into account: a call whose
    bitmap bit is cleared, or a PSCI call outside the VM's PSCI version, is not
    answered. ``SYSTEM_SUSPEND`` is left out: KVM serves it only when the VMM
    enables ``KVM_CAP_ARM_SYSTEM_SUSPEND``. The facts are
    :data:`hvcfilter.kernel.calls.KVM_CALLS`, which the emulator serves too.
    """
    vm = vm or VmConfig()
    psci = psci_version_of(profile, vm)
    return {
        call.fid: call.answer
        for call in kvm_calls.KVM_CALLS
        if kvm_calls.serves(call, profile, psci, vm.bitmaps)
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
SERVICE_BLOCKS = frozenset(first >> 24 for first in _SVC_FIRST)


class Analysis:
    """One sorted, index-friendly view of a spec's records, shared by every check.

    ``valid`` holds the records that pass the kernel's validation (not empty,
    not wrapping; ``base=0, nr=0`` is left to HVF203), sorted by base the way
    the compiler emits them. ``installed`` is what the kernel keeps when they
    are installed in compiled order, or in spec order for
    ``layout = "as-written"`` (:func:`hvcfilter.kernel.filter.install`): the
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
        valid = [r for r in ranges if r.nr_functions and r.base + r.nr_functions <= U32_END]
        self.invalid: list[FilterRange] = (
            [r for r in ranges if not (r.nr_functions and r.base + r.nr_functions <= U32_END)]
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


_CACHE: dict[int, tuple[FilterSpec, Analysis]] = {}
_CACHE_SIZE = 4


def analyse(spec: FilterSpec) -> Analysis:
    """The shared analysis of ``spec``, built once and reused by every check."""
    hit = _CACHE.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1]
    result = Analysis(spec)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[id(spec)] = (spec, result)
    return result


def forget(spec: FilterSpec) -> None:
    """Drop the analysis of ``spec`` once every check has used it."""
    _CACHE.pop(id(spec), None)


def service_spans() -> list[tuple[int, int, str]]:
    """The service families' blocks inside shared owners: ``(first, last, title)``, sorted."""
    return list(zip(_SVC_FIRST, _SVC_LAST, _SVC_TITLE, strict=True))


def crossing(base: int, last: int) -> str | None:
    """Why ``base..last`` crosses an owner, convention or service boundary, if it does."""
    if (base ^ last) >> 24 and (base >> 31 or last >> 31):
        # Whole function-number blocks are fine ("deny everything above X");
        # starting or ending inside one while spilling into the next is not.
        starts_inside = 0 < (base & smccc.OWNER_SPAN) <= smccc.FUNCTION_NUMBER_MASK
        ends_inside = (last & smccc.OWNER_SPAN) < smccc.FUNCTION_NUMBER_MASK
        if starts_inside or ends_inside:
            edge = ((base >> 24) + 1) << 24
            return f"crosses from {block_text(base)} into {block_text(edge)} at {format_id(edge)}"
    if (base >> 24) in SERVICE_BLOCKS or (last >> 24) in SERVICE_BLOCKS:
        i = bisect.bisect_right(_SVC_FIRST, base) - 1
        if i >= 0 and _SVC_FIRST[i] < base <= _SVC_LAST[i] < last:
            return (
                f"starts inside {_SVC_TITLE[i]} ({smccc.IdRange(_SVC_FIRST[i], _SVC_LAST[i])}) "
                f"and runs past its end into {family_at(_SVC_LAST[i] + 1)}"
            )
        j = bisect.bisect_right(_SVC_FIRST, last) - 1
        if j >= 0 and base < _SVC_FIRST[j] <= last < _SVC_LAST[j]:
            return (
                f"ends inside {_SVC_TITLE[j]} ({smccc.IdRange(_SVC_FIRST[j], _SVC_LAST[j])}) "
                f"after starting in {family_at(_SVC_FIRST[j] - 1)}"
            )
    return None


def family_at(fid: int) -> str:
    """``PSCI at 0x84000010``: the service family (or gap) ``fid`` lies in."""
    i = bisect.bisect_right(_SVC_FIRST, fid) - 1
    if i >= 0 and fid <= _SVC_LAST[i]:
        return f"{_SVC_TITLE[i]} at {format_id(fid)}"
    return f"unassigned function numbers at {format_id(fid)}"
