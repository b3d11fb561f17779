"""Tallies: canonical JSON, the schema, merging in any order or tree, and refusing bad input."""

from __future__ import annotations

import json
import random
from importlib import resources

import jsonschema
import pytest

from hvcfilter.learn import TALLY_VERSION, LearnError, Tally, dumps, loads, merge
from hvcfilter.learn.tally import CallCount


def _tally(name: str, ids: dict[int, int], kernel: str = "7.2") -> Tally:
    return Tally(kernel, (name,), {(f, "hvc", "kernel"): CallCount(n, 1) for f, n in ids.items()})


PARTS = [
    _tally("a", {0x84000000: 3, 0xC4000003: 1}),
    _tally("b", {0x84000000: 2, 0x86000000: 5}),
    _tally("c", {0x12345678: 1}),
    _tally("d", {0x84000000: 7, 0x12345678: 4}),
]


def test_round_trip_and_schema() -> None:
    tally = merge(PARTS)
    text = dumps(tally)
    assert loads(text) == tally
    schema = json.loads(resources.files("hvcfilter").joinpath("data/tally.schema.json").read_text())
    jsonschema.validate(json.loads(text), schema)
    assert json.loads(text)["version"] == TALLY_VERSION


def test_merge_adds_counts_and_traces() -> None:
    tally = merge(PARTS)
    assert tally.calls[(0x84000000, "hvc", "kernel")] == CallCount(12, 3)
    assert tally.traces == ("a", "b", "c", "d")
    assert tally.call_count == 23


def test_merge_order_and_tree_give_the_same_bytes() -> None:
    flat = dumps(merge(PARTS))
    shuffled = PARTS[:]
    random.Random(4).shuffle(shuffled)
    assert dumps(merge(shuffled)) == flat
    assert merge(shuffled) == merge(PARTS)
    tree = merge([merge([PARTS[3], PARTS[0]]), merge([merge([PARTS[2]]), PARTS[1]])])
    assert dumps(tree) == flat
    # Through the file form too: a host's tally read back merges the same.
    assert dumps(merge(loads(dumps(p)) for p in reversed(PARTS))) == flat


def test_mixed_kernels_are_refused() -> None:
    with pytest.raises(LearnError, match=r"kernel 7\.2 and kernel 6\.12"):
        merge([PARTS[0], _tally("x", {1: 1}, kernel="6.12")])


def test_other_version_is_refused() -> None:
    doc = json.loads(dumps(PARTS[0]))
    doc["version"] = 2
    with pytest.raises(
        LearnError, match=r"t\.json: tally version 2, but this hvcfilter reads version 1"
    ):
        loads(json.dumps(doc), "t.json")


@pytest.mark.parametrize("version", [True, 1.0, "1"])
def test_a_version_that_only_equals_1_in_python_is_refused(version: object) -> None:
    doc = json.loads(dumps(PARTS[0]))
    doc["version"] = version
    with pytest.raises(LearnError, match=r"tally version .*, but this hvcfilter reads version 1"):
        loads(json.dumps(doc), "t.json")


def test_a_row_of_a_call_never_seen_is_refused() -> None:
    # Such a row would keep its ID open in the learned table with "0 calls in 0 traces".
    doc = json.loads(dumps(PARTS[0]))
    doc["calls"][0]["count"] = doc["calls"][0]["traces"] = 0
    with pytest.raises(LearnError, match="seen in 0 traces of 1, 0 times"):
        loads(json.dumps(doc), "t.json")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"format": "hvcfilter-tally", "version": 1,', r"t\.json:1: not a tally \(invalid JSON"),
        ("[]", "not a tally"),
        (
            '{"format": "hvcfilter-tally", "version": 1, "kernel": "7.2", "traces": [],'
            ' "smc_without_id": 0, "calls": [{"function_id": "nope"}]}',
            r"calls\[0\]",
        ),
    ],
)
def test_corrupt_tally_is_refused(text: str, message: str) -> None:
    with pytest.raises(LearnError, match=message):
        loads(text, "t.json")


def test_bad_row_fields_are_refused() -> None:
    doc = json.loads(dumps(PARTS[0]))
    doc["calls"][0]["function_id"] = "0x1FFFFFFFF"
    with pytest.raises(LearnError, match="not a 32-bit hex ID"):
        loads(json.dumps(doc), "t.json")
    doc = json.loads(dumps(PARTS[0]))
    doc["calls"][0]["traces"] = 5
    with pytest.raises(LearnError, match="seen in 5 traces of 1"):
        loads(json.dumps(doc), "t.json")


def _doc(**changes: object) -> str:
    doc: dict[str, object] = {
        "format": "hvcfilter-tally",
        "version": 1,
        "kernel": "6.12",
        "traces": ["a.txt"],
        "smc_without_id": 0,
        "calls": [
            {"function_id": "0x84000000", "conduit": "hvc", "outcome": "kernel", "count": 2,
             "traces": 1},
        ],
    }  # fmt: skip
    doc.update(changes)
    return json.dumps(doc)


def test_counts_past_63_bits_are_refused_not_an_internal_error() -> None:
    # A 4,300-digit count merged with itself failed in int-to-text as exit 3.
    huge = json.loads(_doc())
    huge["calls"][0]["count"] = 9 * 10**4299
    with pytest.raises(LearnError, match=r"'count' must be a count \(0 to 9,223,"):
        loads(json.dumps(huge), "h.json")
    with pytest.raises(LearnError, match="'smc_without_id' must be a count"):
        loads(_doc(smc_without_id=1 << 63), "h.json")
    full = json.loads(_doc())
    full["calls"][0]["count"] = (1 << 63) - 1
    one = loads(json.dumps(full), "f.json")
    with pytest.raises(LearnError, match="the merged counts pass"):
        merge([one, one])


def test_a_kernel_is_its_profile_and_an_unknown_one_is_named() -> None:
    assert loads(_doc(kernel="6.12.95"), "a.json").kernel == "6.12"
    with pytest.raises(LearnError, match=r"b\.json: field 'kernel'"):
        loads(_doc(kernel=" 6.12 x"), "b.json")


@pytest.mark.parametrize("fid", ["0x5", "0x84000000 ", "0x8400000a", "0x_8400_0000", "84000000"])
def test_function_ids_are_written_as_the_schema_says(fid: str) -> None:
    row = json.loads(_doc())
    row["calls"][0]["function_id"] = fid
    with pytest.raises(LearnError, match="is not a 32-bit hex ID"):
        loads(json.dumps(row), "c.json")
