"""Unit tests of hvcfilter.table.files: specs and payloads read as tables, and diffed."""

from __future__ import annotations

from suite_paths import EXAMPLES

from hvcfilter.table import files, payload
from hvcfilter.table.payload import Record


def test_read_table_tells_specs_from_payloads() -> None:
    data = payload.encode([Record(0xC2000000, 0x100, 2)])
    spec_text = (EXAMPLES / "minimal.toml").read_bytes()
    left = files.read_table("p.bin", data)
    right = files.read_table("minimal", spec_text)  # no suffix: sniffed as TOML
    assert left.table is not None and left.table.kind == "payload"
    assert right.table is not None and right.table.kind == "spec"
    assert left.table.digest == right.table.digest


def test_text_without_a_suffix_is_a_spec_even_when_it_does_not_parse() -> None:
    # Its TOML error, not "HVF401 truncated payload": no payload is NUL-free text.
    broken = files.read_table("filter", b"[filter\nkernel = 6.12\n")
    assert broken.table is None
    assert [d.code for d in broken.diagnostics] == ["HVF002"]


def test_diff_files_refuses_bad_input() -> None:
    result = files.diff_files(("a.bin", b"\x01" * 5), ("b.bin", b""))
    assert result.changes is None and not result.equivalent
    assert [d.code for d in result.a.diagnostics] == ["HVF401"]


def test_empty_spec_and_empty_payload_are_equivalent() -> None:
    assert files.diff_files(("a.toml", b""), ("b.bin", b"")).equivalent
