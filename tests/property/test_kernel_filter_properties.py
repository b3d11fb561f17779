"""Property tests for hvcfilter.kernel.filter: in-order installs against a brute-force model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hvcfilter.kernel.filter import RESERVED, install
from hvcfilter.kernel.profiles import PROFILES

pytestmark = pytest.mark.property

U32 = 0xFFFF_FFFF
_anchors = st.sampled_from([0, 0x7FFF_FFF0, 0x8000_FFF0, 0x8400_0000, 0xC000_FFF0, U32 - 0x40])


@st.composite
def _span(draw: st.DrawFn) -> tuple[int, int] | None:
    if draw(st.integers(0, 9)) == 0:
        return None
    first = min(U32, draw(_anchors) + draw(st.integers(0, 0x30)))
    last = min(U32, first + draw(st.sampled_from([0, 1, 0xF, 0x20, 0x1_0000])))
    return first, last


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(PROFILES)), st.lists(_span(), max_size=40), st.booleans())
def test_install_matches_a_linear_model(
    profile: str, spans: list[tuple[int, int] | None], sort: bool
) -> None:
    if sort:  # the sorted order compiled payloads arrive in
        spans = sorted(spans, key=lambda s: (-1, -1) if s is None else s)
    prof = PROFILES[profile]
    held: list[tuple[int, int, int]] = [(a, b, RESERVED) for a, b in prof.reserved_ranges]
    want_refused = {}
    for index, span in enumerate(spans):
        if span is None:
            continue
        hit = sorted((a, v) for a, b, v in held if a <= span[1] and span[0] <= b)
        if hit:
            want_refused[index] = hit[-1][1]  # the highest-starting range it meets
        else:
            held.append((*span, index))
    tree, refused = install(spans, prof)
    assert refused == want_refused
    assert list(tree.items()) == sorted(held)
    for i, fid in enumerate(tree.firsts):
        assert tree.find(fid) == i and tree.find(tree.lasts[i]) == i
