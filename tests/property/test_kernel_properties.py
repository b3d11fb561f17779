"""Property tests for hvcfilter.kernel: installs and lookups against a model of intervals."""

from __future__ import annotations

import errno
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hvcfilter.kernel import KvmVm
from hvcfilter.kernel.profiles import PROFILES
from hvcfilter.model import Action

pytestmark = pytest.mark.property

U32 = 0xFFFF_FFFF
# IDs near the interesting edges, so random ranges collide often.
_anchors = st.sampled_from(
    [
        0,
        1,
        0x7FFF_FFFF,
        0x8000_0000,
        0x8000_FFFF,
        0x8001_0000,
        0x8400_0000,
        0xC000_0000,
        0xC000_FFFF,
        0xC200_0000,
        U32,
    ]
)
_ids = st.one_of(
    st.integers(0, U32), st.builds(lambda a, d: (a + d) & U32, _anchors, st.integers(-0x40, 0x40))
)
_records = st.tuples(_ids, st.one_of(st.integers(0, 0x80), st.integers(0, U32)), st.integers(0, 4))


class _Model:
    """The reference: a plain list of disjoint inclusive intervals, scanned linearly."""

    def __init__(self, profile: str) -> None:
        self.profile = PROFILES[profile]
        self.ranges: list[tuple[int, int, int]] = [
            (a, b, 0) for a, b in self.profile.reserved_ranges
        ]
        self.ran = False

    def install(self, base: int, nr: int, action: int) -> int:
        if self.profile.no_filter_errno is not None:
            return self.profile.no_filter_errno  # no filter at all (before 6.4)
        end = (base + nr - 1) & U32
        if end < base or action >= 3:
            return errno.EINVAL
        if base == 0 and nr == 0 and self.profile.zero_zero_is_validation:
            return errno.EINVAL
        if self.ran:
            return errno.EBUSY
        if any(a <= end and base <= b for a, b, _ in self.ranges):
            return errno.EEXIST
        self.ranges.append((base, end, action))
        return 0

    def lookup(self, fid: int) -> int | None:
        for a, b, action in self.ranges:
            if a <= fid <= b:
                return action
        return None


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(PROFILES)),
    st.lists(_records, max_size=40),
    st.lists(_ids, max_size=40),
    st.integers(0, 40),
)
def test_installs_and_lookups_match_linear_model(
    profile: str, records: list[tuple[int, int, int]], probes: list[int], run_at: int
) -> None:
    vm, model = KvmVm(profile), _Model(profile)
    for i, (base, nr, action) in enumerate(records):
        if i == run_at:
            vm.run()
            model.ran = True
        assert vm.set_filter(base, nr, action) == model.install(base, nr, action)
    edges = [x for a, b, _ in model.ranges for x in (a, b, (a - 1) & U32, (b + 1) & U32)]
    for fid in probes + edges:
        want = model.lookup(fid)
        assert vm.lookup(fid) == (None if want is None else Action(want))
    segments = list(vm.effective_segments())
    assert segments[0].first == 0 and segments[-1].last == U32
    for left, right in itertools.pairwise(segments):
        assert left.last + 1 == right.first
    installed = {(s.first, s.last, int(s.action or 0)) for s in vm.installed_ranges()}
    assert installed == {
        r for r in model.ranges if (r[0], r[1]) not in set(model.profile.reserved_ranges)
    }


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_records, max_size=20),
    st.lists(
        st.tuples(
            st.one_of(st.integers(0, (1 << 64) - 1), _ids),
            st.sampled_from(["hvc", "smc"]),
            st.sampled_from([0, 0, 0, 5]),
            st.sampled_from(["a64", "a32", "t32"]),
        ),
        max_size=30,
    ),
)
def test_call_outcome_follows_lookup(
    records: list[tuple[int, int, int]], calls: list[tuple[int, str, int, str]]
) -> None:
    """DENY and FWD from the table always win; batch results equal single calls."""
    vm = KvmVm()
    for base, nr, action in records:
        vm.set_filter(base, nr, action)
    # Probe every range's first ID on both conduits, so forwarded and denied calls occur.
    calls = calls + [
        (b, c, 0, m) for b, _, _ in records for c in ("hvc", "smc") for m in ("a64", "a32")
    ]
    results = vm.call_batch(calls)  # type: ignore[arg-type]
    for (x0, conduit, imm, mode), result in zip(calls, results, strict=True):
        fid = x0 & U32
        if conduit == "hvc" and fid in (0x80008000, 0x80007FFF, 0x80003FFF):
            assert result.action is None
            continue
        if conduit == "smc" and mode == "a64" and imm:
            assert result.outcome == "rejected"
            continue
        entry = vm.lookup(fid)
        if entry is Action.DENY:
            assert result.outcome == "not_supported"
        elif entry is Action.FWD_TO_USER:
            assert (result.outcome, result.nr) == ("forwarded", fid)
            assert result.flags == (1 if conduit == "smc" else 0)
        else:
            assert result.outcome in ("handled", "not_supported")
        width = U32 if mode != "a64" else (1 << 64) - 1
        for reg in (result.x0, result.x1, result.x2, result.x3):
            assert reg is None or 0 <= reg <= width
