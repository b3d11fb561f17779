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
