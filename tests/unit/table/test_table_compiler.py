"""Unit tests of hvcfilter.table.compiler: records, merging, provenance, the last defence."""

from __future__ import annotations

from pathlib import Path

import pytest

from hvcfilter.model import FilterSpec
from hvcfilter.spec import loads
from hvcfilter.table import compiler
from hvcfilter.table.compiler import compile_spec


def spec_of(text: str) -> FilterSpec:
    result = loads(text, "t.toml")
    assert result.spec is not None, result.diagnostics
    return result.spec


def raw_entry(base: int, nr: int, action: str = "deny", comment: str | None = None) -> str:
    text = f'[[range]]\naction = "{action}"\nbase = {base:#x}\nnr_functions = {nr:#x}\n'
    return text + (f'comment = "{comment}"\n' if comment else "")


def records(table: compiler.CompiledTable) -> list[tuple[int, int, int]]:
    return [(r.base, r.nr_functions, r.action) for r in table.raw_records]


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
    monkeypatch.setattr(compiler, "check_spec", lambda spec, loaded=(): list(loaded))
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


def test_compiled_table_carries_the_vm_table() -> None:
    """verify configures the VM from the compiled table instead of loading the spec again."""
    text = '[vm]\npsci_version = "1.0"\nvendor_hyp = ["ptp"]\n' + raw_entry(0xC2000000, 1, "deny")
    table = compiler.compile_text(text, "t.toml").table
    assert table is not None
    assert table.vm.psci_version == (1, 0)
    assert table.vm.bitmaps == {2: 0b10}
