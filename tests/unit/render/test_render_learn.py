"""The --against report as text and JSON."""

from __future__ import annotations

import json
from pathlib import Path

from suite_paths import TRACES

from hvcfilter.learn.against import against
from hvcfilter.learn.run import tally_traces
from hvcfilter.render.learn import AGAINST_FORMAT_TAG, against_json, against_text


def test_text_and_json_name_the_broken_call_and_the_unused_range(tmp_path: Path) -> None:
    spec = tmp_path / "old.toml"
    spec.write_text(
        '[filter]\nkernel = "6.12"\n\n[[range]]\naction = "deny"\nbase = 0x84000000\n'
        'nr_functions = 1\n\n[[range]]\naction = "fwd_to_user"\nbase = 0xC5000000\n'
        "nr_functions = 0x10\n"
    )
    report = against(tally_traces([str(TRACES / "sample-6.12.txt")], kernel="6.12"), str(spec))
    text = against_text(report)
    said = (
        "0x84000000 PSCI_VERSION_32 (hvc, 1x): kernel answered (handled), would get not_supported"
    )
    assert said in text
    assert "a call a traced table already denied reads the same" in text  # reference 6.1
    assert "range(s) no guest used" in text and "fwd_to_user 0xC5000000-0xC500000F" in text
    doc = json.loads(against_json(report))
    assert doc["format"] == AGAINST_FORMAT_TAG
    assert {c["function_id"] for c in doc["would_break"]} == {"0x84000000", "0xC2000005"}
    assert doc["unused"][0]["last"] == "0xC500000F"


def test_records_are_named_as_simulate_names_them_with_their_spec_entry(tmp_path: Path) -> None:
    # They read "range[5]" for a spec of two ranges: the index counts compiled records.
    spec = tmp_path / "old.toml"
    spec.write_text(
        '[filter]\nkernel = "6.12"\n\n[[range]]\nowner = "oem"\naction = "deny"\n\n'
        '[[range]]\naction = "fwd_to_user"\nbase = 0xC5000000\nnr_functions = 0x10\n\n'
        '[[range]]\naction = "deny"\nfunction = "PSCI_VERSION_32"\n'
    )
    report = against(tally_traces([str(TRACES / "sample-6.12.txt")], kernel="6.12"), str(spec))
    text = against_text(report)
    (unused,) = report.unused
    assert unused.origin.startswith("range[1] ")
    assert f"  record {unused.index}: fwd_to_user 0xC5000000-0xC500000F ({unused.origin})\n" in text
    assert "range[5]" not in text and "range[4]" not in text
    (psci,) = [c for c in report.would_break if c.function_id == 0x8400_0000]
    # Merged with the OEM deny beside it: the record names both entries.
    assert psci.origin == 'range[0] owner = "oem", range[2] function = "PSCI_VERSION_32"'
    assert f"(record {psci.record}: {psci.origin})" in text
    broken = json.loads(against_json(report))["would_break"]
    assert [c["origin"] for c in broken if c["function_id"] == "0x84000000"] == [psci.origin]
    assert text.endswith("record(s), write it with -o FILE\n")
    assert against_text(report, "new.toml").endswith("record(s), written to new.toml\n")
    assert against_text(report, "-").endswith("written to standard output\n")
