"""Unit tests of hvcfilter.emit.committed: pairing outputs with specs, and comparing them."""

from __future__ import annotations

from pathlib import Path

import pytest
from suite_paths import EXAMPLES

from hvcfilter.emit import OutputFormat, emit
from hvcfilter.emit.committed import SUFFIX_FORMATS, Pair, Status, check_pair, pair_files
from hvcfilter.table.compiler import compile_file

MINIMAL = (EXAMPLES / "minimal.toml").read_text()


def _spec(tmp_path: Path, name: str = "vm.toml", text: str = MINIMAL) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _output(spec: Path, fmt: OutputFormat, suffix: str, *, merge: bool = True) -> Path:
    table = compile_file(spec, merge=merge).table
    assert table is not None
    out = spec.with_suffix(suffix)
    out.write_bytes(emit(table, fmt))
    return out


def test_every_compile_format_has_a_suffix() -> None:
    assert set(SUFFIX_FORMATS.values()) == set(OutputFormat)


def test_pairs_by_name_from_either_side_once(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    bin_ = _output(spec, OutputFormat.BIN, ".bin")
    header = _output(spec, OutputFormat.C, ".h")
    lonely = _spec(tmp_path, "lonely.toml")
    orphan = tmp_path / "orphan.bin"
    orphan.write_bytes(b"")
    pairs = pair_files([str(spec), str(bin_), str(header), str(lonely), str(orphan)])
    assert pairs == [
        Pair(str(spec), str(bin_), OutputFormat.BIN),
        Pair(str(spec), str(header), OutputFormat.C),
    ]


def test_explicit_pairs_take_the_format_from_the_suffix(tmp_path: Path) -> None:
    assert pair_files(["a/vm.toml=build/vm.rs"]) == [
        Pair("a/vm.toml", "build/vm.rs", OutputFormat.RUST)
    ]
    with pytest.raises(ValueError, match="suffix"):
        pair_files(["vm.toml=vm.out"])


@pytest.mark.parametrize(("suffix", "fmt"), list(SUFFIX_FORMATS.items()))
def test_a_fresh_output_is_fresh_and_an_edited_spec_makes_it_stale(
    tmp_path: Path, suffix: str, fmt: OutputFormat
) -> None:
    spec = _spec(tmp_path)
    out = _output(spec, fmt, suffix)
    (pair,) = pair_files([str(spec)])
    assert check_pair(pair).status is Status.FRESH
    spec.write_text(MINIMAL.replace("nr_functions = 0x100", "nr_functions = 0x80"))
    result = check_pair(pair)
    assert result.status is Status.STALE
    assert result.diff[0].startswith(f"--- {out} (committed)")
    assert any(line.startswith("-") for line in result.diff[2:])
    assert any(line.startswith("+") for line in result.diff[2:])


def test_binary_diffs_name_the_records(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    _output(spec, OutputFormat.BIN, ".bin")
    spec.write_text(MINIMAL.replace('"fwd_to_user"', '"deny"'))
    (pair,) = pair_files([str(spec)])
    diff = check_pair(pair).diff
    assert diff[-2] == (
        "-record 0 @0x0000: 000000c20001000002000000000000000000000000000000"
        + "  0xC2000000-0xC20000FF fwd_to_user"
    )
    assert diff[-1].endswith("  0xC2000000-0xC20000FF deny")


def test_options_must_match_how_the_output_was_compiled(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    _output(spec, OutputFormat.BIN, ".bin")
    (pair,) = pair_files([str(spec)])
    assert check_pair(pair, byte_order="big").status is Status.STALE


def test_missing_and_broken(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    assert check_pair(Pair(str(spec), str(tmp_path / "x.bin"), OutputFormat.BIN)).status is (
        Status.MISSING
    )
    bad = _spec(
        tmp_path, "bad.toml", '[[range]]\nbase = 0x80000000\nnr_functions = 1\naction = "deny"\n'
    )
    result = check_pair(Pair(str(bad), str(tmp_path / "bad.bin"), OutputFormat.BIN))
    assert result.status is Status.BROKEN
    assert result.diagnostics
    gone = check_pair(Pair(str(tmp_path / "gone.toml"), "gone.bin", OutputFormat.BIN))
    assert gone.status is Status.BROKEN and gone.unreadable
