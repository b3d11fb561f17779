"""Unit tests of hvcfilter.table.dryrun: each record's errno in the emulated kernel."""

from __future__ import annotations

import errno

import pytest
from suite_paths import EXAMPLES

from hvcfilter.model import FilterSpec
from hvcfilter.spec import loads
from hvcfilter.table import compiler, dryrun
from hvcfilter.table.compiler import compile_spec


def spec_of(text: str) -> FilterSpec:
    result = loads(text, "t.toml")
    assert result.spec is not None, result.diagnostics
    return result.spec


def raw_entry(base: int, nr: int, action: str = "deny", comment: str | None = None) -> str:
    text = f'[[range]]\naction = "{action}"\nbase = {base:#x}\nnr_functions = {nr:#x}\n'
    return text + (f'comment = "{comment}"\n' if comment else "")


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


def test_dry_run_on_6_1_fails_at_the_probe() -> None:
    table = compile_spec(spec_of(raw_entry(0xC2000000, 0x100, "fwd_to_user")))
    old = dryrun.dry_run(table, kernel="6.1")
    assert old.probe_errno == errno.EINVAL and old.probe_errno_name == "EINVAL"
    assert [s.errno for s in old.steps] == [errno.EINVAL] and not old.ok
    new = dryrun.dry_run(table, kernel="6.12")
    assert new.probe_errno == 0 and new.ok
    empty = dryrun.dry_run(compile_spec(spec_of("")), kernel="6.1")
    assert empty.probe_errno == 0 and empty.ok  # nothing to install, nothing probed
