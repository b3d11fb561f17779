"""The library facade: each entry point does what its command does, without printing."""

from __future__ import annotations

from pathlib import Path

import pytest
from suite_paths import ROOT

from hvcfilter import api
from hvcfilter.errors import HvcFilterError
from hvcfilter.table import payload

EXAMPLES = ROOT / "examples"
TRACES = ROOT / "tests" / "traces"


def test_lint_reports_every_file_even_a_missing_one(tmp_path: Path) -> None:
    report = api.lint([EXAMPLES / "minimal.toml", tmp_path / "missing.toml"])
    paths = [str(EXAMPLES / "minimal.toml"), str(tmp_path / "missing.toml")]
    assert [f.path for f in report.files] == paths
    assert report.unreadable and not report.files[0].diagnostics


def test_compile_then_decompile_round_trips(tmp_path: Path) -> None:
    result = api.compile(EXAMPLES / "minimal.toml")
    assert result.table is not None
    data = result.table.encode()
    assert payload.decode(data)[0].base == 0xC200_0000
    back = api.decompile(data, "minimal.bin")
    assert "base = 0xC2000000" in (back.text or "")


def test_diff_of_a_spec_and_its_payload_is_empty(tmp_path: Path) -> None:
    result = api.compile(EXAMPLES / "lockdown.toml")
    assert result.table is not None
    bin_path = tmp_path / "lockdown.bin"
    bin_path.write_bytes(result.table.encode())
    assert api.diff(EXAMPLES / "lockdown.toml", bin_path).equivalent


def test_replay_counts_the_sample_trace() -> None:
    report = api.replay([str(TRACES / "sample-6.12.txt")], spec=str(TRACES / "sample-filter.toml"))
    assert report.summary.outcomes == {
        "handled": 1, "not_supported": 2, "forwarded": 2, "rejected": 0
    }  # fmt: skip


def test_replay_needs_readable_tables() -> None:
    with pytest.raises(HvcFilterError, match="missing"):
        api.replay([str(TRACES / "sample-6.12.txt")], spec="missing.toml")


def test_diff_of_a_missing_file_is_a_library_error(tmp_path: Path) -> None:
    with pytest.raises(HvcFilterError, match="cannot read"):
        api.diff(EXAMPLES / "minimal.toml", tmp_path / "nope.bin")
