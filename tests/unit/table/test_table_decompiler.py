"""Unit tests of hvcfilter.table.decompiler: payloads back to canonical specs."""

from __future__ import annotations

import struct
import tomllib

import pytest

from hvcfilter.model import FilterSpec
from hvcfilter.spec import loads
from hvcfilter.table import compiler, payload
from hvcfilter.table.compiler import compile_spec
from hvcfilter.table.decompiler import decompile
from hvcfilter.table.payload import Record


def spec_of(text: str) -> FilterSpec:
    result = loads(text, "t.toml")
    assert result.spec is not None, result.diagnostics
    return result.spec


def records(table: compiler.CompiledTable) -> list[tuple[int, int, int]]:
    return [(r.base, r.nr_functions, r.action) for r in table.raw_records]


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
    # A table meant empty, not an empty file that check warns about (HVF208).
    result = decompile(b"")
    assert result.text == '[filter]\nallow = [\n    "empty-table",\n]\n'
    assert result.records == ()


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
