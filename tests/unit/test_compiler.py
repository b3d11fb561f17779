"""Unit tests for hvcfilter.compiler: compile, effective table, digest, diff, decompile, dry run."""

from __future__ import annotations

import errno
import hashlib
import struct
import tomllib
from pathlib import Path

import pytest

from hvcfilter.model import Action, FilterSpec
from hvcfilter.spec import dump_document, loads
from hvcfilter.table import compiler, dryrun, effective, files, payload
from hvcfilter.table.compiler import compile_spec
from hvcfilter.table.decompiler import decompile
from hvcfilter.table.effective import Segment, effective_segments
from hvcfilter.table.payload import Record

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def spec_of(text: str) -> FilterSpec:
    result = loads(text, "t.toml")
    assert result.spec is not None, result.diagnostics
    return result.spec


def raw_entry(base: int, nr: int, action: str = "deny", comment: str | None = None) -> str:
    text = f'[[range]]\naction = "{action}"\nbase = {base:#x}\nnr_functions = {nr:#x}\n'
    return text + (f'comment = "{comment}"\n' if comment else "")


def records(table: compiler.CompiledTable) -> list[tuple[int, int, int]]:
    return [(r.base, r.nr_functions, r.action) for r in table.raw_records]


# --------------------------------------------------------------------------- compile


def test_adjacent_same_action_ranges_merge_across_entries() -> None:
    spec = spec_of(
        raw_entry(0x86000010, 0x10)
        + raw_entry(0x86000000, 0x10)
        + raw_entry(0x86000020, 1, "fwd_to_user")
    )
    table = compile_spec(spec)
    assert records(table) == [(0x86000000, 0x20, 1), (0x86000020, 1, 2)]
    assert [s.entry for s in table.records[0].sources] == [1, 0]
    assert table.layout == "merged"


def test_no_merge_keeps_one_record_per_range_sorted() -> None:
    spec = spec_of(raw_entry(0x86000010, 0x10) + raw_entry(0x86000000, 0x10))
    table = compile_spec(spec, merge=False)
    assert records(table) == [(0x86000000, 0x10, 1), (0x86000010, 0x10, 1)]
    assert table.layout == "sorted"


def test_as_written_keeps_spec_order() -> None:
    spec = spec_of(raw_entry(0x86000010, 0x10) + raw_entry(0x86000000, 0x10))
    table = compile_spec(spec, layout="as-written")
    assert records(table) == [(0x86000010, 0x10, 1), (0x86000000, 0x10, 1)]


def test_gap_or_different_action_does_not_merge() -> None:
    spec = spec_of(
        raw_entry(0x86000000, 0x10)
        + raw_entry(0x86000011, 1)
        + raw_entry(0x86000012, 1, "fwd_to_user")
    )
    assert len(compile_spec(spec).records) == 3


def test_symbolic_selectors_expand_to_fewest_ranges() -> None:
    spec = spec_of('[[range]]\naction = "deny"\nservice = "psci"\n')
    assert records(compile_spec(spec)) == [(0x84000000, 0x20, 1), (0xC4000000, 0x20, 1)]
    spec = spec_of(
        '[[range]]\naction = "fwd_to_user"\n'
        'functions = ["PSCI_CPU_ON_32", "PSCI_CPU_ON_64", "PSCI_CPU_OFF_32"]\n'
    )
    assert records(compile_spec(spec)) == [(0x84000002, 2, 2), (0xC4000003, 1, 2)]


def test_provenance_labels() -> None:
    spec = spec_of(
        '[[range]]\naction = "fwd_to_user"\nfunction = "PSCI_CPU_ON_64"\ncomment = "hotplug"\n'
        '[[range]]\naction = "deny"\nowner = "sip"\nconvention = "smc64"\ncall = "fast"\n'
    )
    labels = [str(s) for c in compile_spec(spec).records for s in c.sources]
    assert labels == [
        'range[1] owner = "sip", call = "fast", convention = "smc64"',
        'range[0] function = "PSCI_CPU_ON_64" (hotplug)',
    ]


def test_compile_file_refuses_a_spec_with_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(raw_entry(0x86000000, 0x10) + raw_entry(0x8600000F, 2, "fwd_to_user"))
    result = compiler.compile_file(path)
    assert result.table is None
    assert result.has_errors and not result.unreadable
    assert any(d.code == "HVF201" for d in result.diagnostics)


def test_compile_file_unreadable(tmp_path: Path) -> None:
    result = compiler.compile_file(tmp_path / "missing.toml")
    assert result.table is None and result.unreadable


def test_compile_not_strict_keeps_the_table_for_a_dry_run(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(raw_entry(0x86000000, 0x10) + raw_entry(0x8600000F, 2, "fwd_to_user"))
    result = compiler.compile_file(path, strict=False)
    assert result.table is not None and result.has_errors


def test_install_model_backs_up_the_linter(monkeypatch: pytest.MonkeyPatch) -> None:
    # Even if the checks missed a reserved-range overlap, compile must not emit the table.
    monkeypatch.setattr(compiler, "check_spec", lambda spec: [])
    result = compiler.compile_text(raw_entry(0x7FFFFFFF, 2, "deny"), "t.toml")
    assert result.table is None
    (diag,) = result.diagnostics
    assert diag.code == "HVF406"
    assert "range[0]" in diag.message and diag.location.line == 1


def test_kernel_override() -> None:
    result = compiler.compile_text(
        '[filter]\nkernel = "7.2"\n' + raw_entry(0x86000000, 1), kernel="6.12"
    )
    assert result.table is not None and result.table.profile.name == "6.12"


# --------------------------------------------------------------------------- effective table


def test_empty_table_is_one_handle_segment() -> None:
    assert effective_segments([]) == [Segment(0, 0xFFFFFFFF, Action.HANDLE)]


def test_effective_segments_merge_and_cover_everything() -> None:
    recs = [Record(0x84000000, 0x10, 1), Record(0x84000010, 0x10, 1), Record(0xC2000000, 0x100, 0)]
    segs = effective_segments(recs)
    assert segs == [
        Segment(0, 0x83FFFFFF, Action.HANDLE),
        Segment(0x84000000, 0x8400001F, Action.DENY),
        Segment(0x84000020, 0xFFFFFFFF, Action.HANDLE),  # explicit HANDLE = no range
    ]


def test_effective_segments_edges() -> None:
    assert effective_segments([Record(0, 1, 2), Record(0xFFFFFFFF, 1, 2)]) == [
        Segment(0, 0, Action.FWD_TO_USER),
        Segment(1, 0xFFFFFFFE, Action.HANDLE),
        Segment(0xFFFFFFFF, 0xFFFFFFFF, Action.FWD_TO_USER),
    ]


def test_effective_segments_follow_the_kernel_for_refused_records() -> None:
    # The second record overlaps and is refused (EEXIST); the reserved one too.
    recs = [Record(0x86000000, 0x10, 1), Record(0x86000008, 0x10, 2), Record(0x80000000, 1, 1)]
    assert [s for s in effective_segments(recs) if s.action is not Action.HANDLE] == [
        Segment(0x86000000, 0x8600000F, Action.DENY)
    ]


def test_digest_of_empty_table_by_the_documented_form() -> None:
    expected = hashlib.sha256(
        b"hvcfilter-effective-table-v1\x00" + struct.pack("<IIB", 0, 0xFFFFFFFF, 0)
    ).hexdigest()
    assert effective.digest(effective_segments([])) == f"sha256:{expected}"


def test_digest_ignores_layout_and_explicit_handle() -> None:
    split = [Record(0x84000010, 0x10, 1), Record(0x84000000, 0x10, 1)]
    whole = [Record(0x84000000, 0x20, 1), Record(0x85000000, 0x10, 0)]
    assert effective.digest(effective_segments(split)) == effective.digest(
        effective_segments(whole)
    )
    other = [Record(0x84000000, 0x20, 2)]
    assert effective.digest(effective_segments(other)) != effective.digest(
        effective_segments(whole)
    )


def test_diff_segments() -> None:
    a = effective_segments([Record(0x84000000, 0x20, 1)])
    b = effective_segments(
        [Record(0x84000000, 3, 1), Record(0x84000003, 1, 2), Record(0x84000004, 0x1C, 1)]
    )
    (change,) = effective.diff_segments(a, b)
    assert (change.first, change.last, change.before, change.after) == (
        0x84000003,
        0x84000003,
        Action.DENY,
        Action.FWD_TO_USER,
    )
    assert effective.diff_segments(a, a) == []


def test_diff_merges_neighbouring_changes_with_the_same_actions() -> None:
    a = effective_segments([])
    b = effective_segments([Record(0x84000000, 0x10, 1), Record(0x84000010, 0x10, 1)])
    assert len(effective.diff_segments(a, b)) == 1


# --------------------------------------------------------------------------- reading and diffing


def test_read_table_tells_specs_from_payloads() -> None:
    data = payload.encode([Record(0xC2000000, 0x100, 2)])
    spec_text = (EXAMPLES / "minimal.toml").read_bytes()
    left = files.read_table("p.bin", data)
    right = files.read_table("minimal", spec_text)  # no suffix: sniffed as TOML
    assert left.table is not None and left.table.kind == "payload"
    assert right.table is not None and right.table.kind == "spec"
    assert left.table.digest == right.table.digest


def test_diff_files_refuses_bad_input() -> None:
    result = files.diff_files(("a.bin", b"\x01" * 5), ("b.bin", b""))
    assert result.changes is None and not result.equivalent
    assert [d.code for d in result.a.diagnostics] == ["HVF401"]


def test_empty_spec_and_empty_payload_are_equivalent() -> None:
    assert files.diff_files(("a.toml", b""), ("b.bin", b"")).equivalent


# --------------------------------------------------------------------------- decompile


def test_decompile_writes_hex_ids_and_call_names() -> None:
    data = payload.encode([Record(0x84000002, 2, 2), Record(0xC2000000, 0x100, 1)])
    result = decompile(data, "p.bin")
    assert result.text == (
        '[[range]]\naction = "fwd_to_user"\nbase = 0x84000002\nnr_functions = 0x2\n'
        'comment = "PSCI_CPU_OFF_32, PSCI_CPU_ON_32"\n\n'
        '[[range]]\naction = "deny"\nbase = 0xC2000000\nnr_functions = 0x100\n'
        'comment = "no well-known calls (SiP Service, fast SMC64)"\n'
    )
    spec = spec_of(result.text)
    assert payload.encode(compile_spec(spec).raw_records) == data


def test_decompile_of_empty_payload() -> None:
    result = decompile(b"")
    assert result.text == "" and result.records == ()


@pytest.mark.parametrize(
    ("recs", "layout"),
    [
        ([Record(0x84000000, 1, 1), Record(0x84000002, 1, 1)], None),
        ([Record(0x84000000, 1, 1), Record(0x84000001, 1, 1)], "sorted"),
        ([Record(0x84000001, 1, 1), Record(0x84000000, 1, 2)], "as-written"),
    ],
)
def test_decompile_chooses_the_weakest_layout(recs: list[Record], layout: str | None) -> None:
    result = decompile(payload.encode(recs))
    assert result.text is not None
    document = tomllib.loads(result.text)
    assert document.get("filter", {}).get("layout") == layout


def test_decompile_refuses_bad_payload_and_writes_nothing() -> None:
    data = payload.encode([Record(0x84000000, 1, 1)]) + struct.pack(
        "<IIB15s", 0x84000000, 1, 5, bytes(15)
    )
    result = decompile(data, "p.bin")
    assert result.text is None
    assert [(d.code, d.location.offset) for d in result.diagnostics] == [
        ("HVF402", 32),
        # action 5 makes record 1 invalid, so no overlap is reported for it
    ]


def test_decompile_kernel_is_written() -> None:
    result = decompile(payload.encode([Record(0x86000000, 1, 1)]), kernel="6.12.95")
    assert result.text is not None and '[filter]\nkernel = "6.12"\n' in result.text


def test_dump_document_rewrites_only_integer_id_lines() -> None:
    document = {
        "range": [
            {"action": "deny", "base": 0x84000000, "end": 0x8400001F, "comment": "x\nbase = 5"},
            {"action": "deny", "base": 0, "nr_functions": 0x80000000},
        ]
    }
    text = dump_document(document)
    assert "base = 0x84000000\nend = 0x8400001F\n" in text
    assert "base = 0x00000000\nnr_functions = 0x80000000\n" in text
    assert '"x\\nbase = 5"' in text
    assert tomllib.loads(text) == document


# --------------------------------------------------------------------------- dry run


def test_dry_run_reports_each_errno() -> None:
    spec = spec_of(
        '[filter]\nkernel = "6.12"\n'
        + raw_entry(0x86000000, 0x10)
        + raw_entry(0x8600000F, 2, "fwd_to_user")
        + raw_entry(0x80000000, 1)
    )
    table = compile_spec(spec, layout="as-written")
    result = dryrun.dry_run(table)
    assert [s.errno for s in result.steps] == [0, errno.EEXIST, errno.EEXIST]
    assert [s.errno_name for s in result.steps] == ["0", "EEXIST", "EEXIST"]
    assert not result.ok


@pytest.mark.parametrize(("kernel", "expected"), [("6.12", errno.EEXIST), ("7.2", errno.EINVAL)])
def test_dry_run_zero_zero_per_kernel(kernel: str, expected: int) -> None:
    spec = spec_of(raw_entry(0, 0))
    result = dryrun.dry_run(compile_spec(spec), kernel=kernel)
    assert [s.errno for s in result.steps] == [expected]


def test_dry_run_of_examples_is_clean() -> None:
    for path in sorted(EXAMPLES.glob("*.toml")):
        result = compiler.compile_file(path)
        assert result.table is not None, (path, result.diagnostics)
        assert dryrun.dry_run(result.table).ok, path


def test_compiled_table_carries_the_vm_table() -> None:
    """verify configures the VM from the compiled table instead of loading the spec again."""
    text = '[vm]\npsci_version = "1.0"\nvendor_hyp = ["ptp"]\n' + raw_entry(0xC2000000, 1, "deny")
    table = compiler.compile_text(text, "t.toml").table
    assert table is not None
    assert table.vm.psci_version == (1, 0)
    assert table.vm.bitmaps == {2: 0b10}
