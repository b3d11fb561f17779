"""Unit tests of hvcfilter.rules.owners beyond the rule cases: the SMC32/SMC64 twin table."""

from __future__ import annotations

from hvcfilter import smccc
from hvcfilter.rules import (
    owners,
)


def test_twin_pairs_include_name_pairs_with_different_stems() -> None:
    pairs = {(t.one, t.other) for t in owners._twin_pairs()}
    assert (0x8400_0003, 0xC400_0003) in pairs
    assert (0x8400_0053, 0xC400_0053) in pairs  # TRNG_RND32 / TRNG_RND64
    assert (0x8600_0000, 0xC600_0000) not in pairs  # unrelated calls that share bits
    for one, other in pairs:
        assert one ^ other == smccc.CONVENTION_BIT
