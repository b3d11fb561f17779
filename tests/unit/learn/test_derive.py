"""Deriving records: granularity, overrides, the reserved ranges, the fewest records."""

from __future__ import annotations

import itertools

import pytest

from hvcfilter.learn import Granularity, LearnError, Tally, parse_override
from hvcfilter.learn.derive import derive
from hvcfilter.learn.tally import CallCount


def _tally(*ids: int, outcome: str = "kernel") -> Tally:
    return Tally("7.2", ("t",), {(f, "hvc", outcome): CallCount(2, 1) for f in ids})  # type: ignore[misc]


def _open(tally: Tally, granularity: Granularity, *overrides: str) -> list[tuple[int, int, str]]:
    parsed = [parse_override(o, "fwd_to_user") for o in overrides]
    return [(s.first, s.last, s.action) for s in derive(tally, granularity, parsed).spans]


def _covered(spans: list[tuple[int, int, str]]) -> int:
    return sum(b - a + 1 for a, b, _ in spans)


def test_function_granularity_keeps_only_the_seen_ids() -> None:
    spans = _open(_tally(0x84000000, 0xC4000003), Granularity.FUNCTION)
    kept = [(a, b) for a, b, act in spans if act == "handle"]
    assert kept == [(0x84000000, 0x84000000), (0xC4000003, 0xC4000003)]
    # Everything but the two reserved ranges is covered, exactly once.
    assert _covered(spans) == (1 << 32) - 2 * 0x10000
    # Fewest records: no two deny records touch.
    denies = [(a, b) for a, b, act in spans if act == "deny"]
    assert all(b + 1 < c for (_, b), (c, _) in itertools.pairwise(denies))


def test_service_and_owner_granularity() -> None:
    service = _open(_tally(0x84000000), Granularity.SERVICE)
    assert (0x84000000, 0x8400001F, "handle") in service
    owner = _open(_tally(0x84000000), Granularity.OWNER)
    assert (0x84000000, 0x84FFFFFF, "handle") in owner
    # An ID in no catalogue service opens only itself at service granularity.
    assert (0x12345678, 0x12345678, "handle") in _open(_tally(0x12345678), Granularity.SERVICE)


def test_reserved_ids_open_nothing_and_get_no_record() -> None:
    spans = _open(_tally(0x80000000, 0x84000000), Granularity.OWNER)
    assert all(not (a <= 0x80000000 <= b) for a, b, _ in spans)
    assert (0x80010000, 0x80FFFFFF, "deny") not in spans and spans[1][2] == "deny"


def test_forward_overrides_by_id_name_and_service() -> None:
    spans = _open(_tally(0x84000000), Granularity.SERVICE, "0x84000001", "TRNG_RND64", "pv-time")
    assert (0x84000001, 0x84000001, "fwd_to_user") in spans  # splits the open PSCI block
    assert (0xC4000053, 0xC4000053, "fwd_to_user") in spans
    assert (0xC5000020, 0xC5000021, "fwd_to_user") in spans
    assert (0x85000020, 0x85000021, "fwd_to_user") in spans


def test_forwarded_outcome_is_kept() -> None:
    spans = _open(_tally(0xC2000005, outcome="forwarded"), Granularity.OWNER)
    assert (0xC2000005, 0xC2000005, "fwd_to_user") in spans


def test_forwarding_a_reserved_id_is_refused() -> None:
    with pytest.raises(LearnError, match="cannot forward SMCCC_ARCH_SOC_ID"):
        _open(_tally(0x84000000), Granularity.FUNCTION, "SMCCC_ARCH_SOC_ID")


def test_unknown_override_and_empty_tally() -> None:
    with pytest.raises(LearnError, match="neither a function ID"):
        parse_override("NO_SUCH_CALL", "handle")
    with pytest.raises(LearnError, match="neither a function ID"):
        parse_override("0x\uff18\uff14000000", "handle")  # full-width digits
    with pytest.raises(LearnError, match="no calls with a function ID"):
        derive(Tally("7.2", ("empty.txt",)))


def test_a_kernel_without_the_filter_has_no_table_to_learn_and_says_so() -> None:
    # 6.1 refuses every filter record (EINVAL): not an internal error, a plain refusal.
    tally = Tally("6.1", ("t",), {(0xC2000000, "hvc", "kernel"): CallCount(2, 1)})
    with pytest.raises(LearnError, match=r"kernel 6\.1 has no SMCCC filter") as info:
        derive(tally)
    assert "internal error" not in str(info.value)


_PROBES = (0x84000000, 0x84000001, 0x84000003, 0x8400001F)


def _actions(tally: Tally, overrides: list[tuple[str, str]]) -> dict[int, str]:
    parsed = [parse_override(text, action) for text, action in overrides]  # type: ignore[arg-type]
    spans = derive(tally, Granularity.FUNCTION, parsed).spans
    return {f: next(s.action for s in spans if s.first <= f <= s.last) for f in _PROBES}


@pytest.mark.parametrize("reverse", [False, True], ids=["as-given", "reversed"])
def test_the_narrower_override_wins_where_forward_and_handle_overlap(reverse: bool) -> None:
    tally = _tally(0x84000003)

    def given(*overrides: tuple[str, str]) -> list[tuple[str, str]]:
        return list(reversed(overrides)) if reverse else list(overrides)

    # Forward every PSCI call but PSCI_VERSION, which stays with KVM.
    got = _actions(tally, given(("psci", "fwd_to_user"), ("PSCI_VERSION_32", "handle")))
    assert got == {
        0x84000000: "handle",
        0x84000001: "fwd_to_user",
        0x84000003: "fwd_to_user",
        0x8400001F: "fwd_to_user",
    }
    # The other way round: keep PSCI in the kernel, forward CPU_ON alone.
    flipped = _actions(tally, given(("PSCI_CPU_ON_32", "fwd_to_user"), ("psci", "handle")))
    assert flipped == {
        0x84000000: "handle",
        0x84000001: "handle",
        0x84000003: "fwd_to_user",
        0x8400001F: "handle",
    }


def test_forward_and_handle_of_the_same_ids_are_refused() -> None:
    tally = _tally(0x84000003)
    with pytest.raises(LearnError, match=r"--forward 0x84000000 and --handle PSCI_VERSION_32 "):
        _actions(tally, [("0x84000000", "fwd_to_user"), ("PSCI_VERSION_32", "handle")])
    with pytest.raises(LearnError, match="neither is narrower"):
        _actions(tally, [("trng", "handle"), ("trng", "fwd_to_user")])
