"""The lazy header index of SourceMap gives the positions the full line scan gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from hvcfilter.spec.source import SourceMap

_ROOT = Path(__file__).resolve().parents[3]
_ODD = """\
top = 1
  [filter]  # a comment
name = "x"
[[range]]
  base = 1
[[ "range" ]]
base = 2
nr_functions = 3
[vm]
allow = [
 [1, 2],
]
x.y = 3
"""


def _cases() -> list[str]:
    return [_ODD, *(p.read_text() for p in sorted((_ROOT / "examples").glob("*.toml")))]


@pytest.mark.parametrize("text", _cases())
def test_lazy_positions_match_the_full_scan(text: str) -> None:
    full = SourceMap(text)
    index = full._build()
    assert index, "the case has positions to compare"
    lazy = SourceMap(text)
    for path, position in index.items():
        assert lazy.locate(path) == position
    assert lazy._lazy is not None  # the lazy index answered, not the full scan


def test_unknown_key_falls_back_to_its_table() -> None:
    source = SourceMap(_ODD)
    assert source.locate(("range", 1, "comment")) == (6, 1)
    assert source.locate(("range", 0, "base")) == (5, 3)
    assert source.locate(("nowhere",)) is None


def test_multiline_strings_use_the_full_scan() -> None:
    text = 'a = """\n[not.a.table]\n"""\n[filter]\nname = "x"\n'
    source = SourceMap(text)
    assert source.locate(("filter", "name")) == (5, 1)
    assert source.locate(("not", "a", "table")) is None
    assert source._lazy is None
