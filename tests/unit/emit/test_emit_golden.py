"""Golden files: every output format of every shipped example, byte for byte.

Regenerate deliberately with ``HVCFILTER_REGEN_GOLDEN=1 python -m pytest
tests/unit/emit/test_emit_golden.py`` and review the diff: a golden must be right
by the reference, not only what the code produced.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from suite_paths import ROOT

from hvcfilter.emit import OutputFormat, emit
from hvcfilter.table import compiler, decompiler

GOLDEN = ROOT / "tests" / "golden"
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))
REGEN = os.environ.get("HVCFILTER_REGEN_GOLDEN") == "1"
SUFFIX = {
    OutputFormat.BIN: "bin",
    OutputFormat.C: "h",
    OutputFormat.RUST: "rs",
    OutputFormat.JSON: "json",
    OutputFormat.HEX: "hex",
    OutputFormat.SHA256: "sha256",
}


def check_golden(name: str, data: bytes) -> None:
    path = GOLDEN / name
    if REGEN:
        path.write_bytes(data)
    assert path.exists(), f"missing golden {name}; run with HVCFILTER_REGEN_GOLDEN=1 and review"
    assert data == path.read_bytes(), f"{name} differs from its golden file"


def compiled(example: Path, *, merge: bool = True) -> compiler.CompiledTable:
    result = compiler.compile_file(example, merge=merge)
    assert result.table is not None, result.diagnostics
    return result.table


def test_examples_are_shipped() -> None:
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("fmt", list(OutputFormat))
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_golden_formats(example: Path, fmt: OutputFormat) -> None:
    check_golden(f"{example.stem}.{SUFFIX[fmt]}", emit(compiled(example), fmt))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_golden_big_endian_and_no_merge(example: Path) -> None:
    check_golden(
        f"{example.stem}.be.bin", emit(compiled(example), OutputFormat.BIN, byte_order="big")
    )
    check_golden(
        f"{example.stem}.nomerge.bin", emit(compiled(example, merge=False), OutputFormat.BIN)
    )


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_golden_decompile(example: Path) -> None:
    result = decompiler.decompile(
        (GOLDEN / f"{example.stem}.bin").read_bytes(), f"{example.stem}.bin"
    )
    assert result.text is not None, result.diagnostics
    check_golden(f"{example.stem}.decompiled.toml", result.text.encode())


def test_no_stray_goldens() -> None:
    stems = {p.stem for p in EXAMPLES}
    for path in GOLDEN.iterdir():
        assert path.name.split(".")[0] in stems, f"golden {path.name} has no example"
