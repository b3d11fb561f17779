"""The lazy indexes of SourceMap give the positions the full line scan gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from hvcfilter.spec.source import SourceMap
from hvcfilter.spec.toml_subset import parse

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


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x0b", "\x1c"])
def test_only_newline_ends_a_line_in_the_full_scan(separator: str) -> None:
    # splitlines() broke lines at these too: each put every later position one line down.
    text = f'# a pasted{separator}comment\n[filter]\nname = "a\\tb"\n[[range]]\nbase = 1\n'
    source = SourceMap(text)
    assert source.locate(("range", 0, "base")) == (5, 1)
    assert source._lazy is None  # the case reaches the full scan


@pytest.mark.parametrize(
    ("string", "after"),
    [
        ('"""\na \\""" b\n[[range]]\n"""', 6),  # an escaped quote and two more: still open
        ('"""\na \\\\"""', 4),  # an escaped backslash, then the delimiter: closed
        ('"""a""""', 3),  # a quote of the string, then the delimiter, on the opening line
        ('"""\n""""', 4),  # the same on a later line
        ("'''\na \\'''", 4),  # no escapes in a literal string
    ],
)
def test_a_multiline_string_ends_where_toml_ends_it(string: str, after: int) -> None:
    text = f"[filter]\ndescription = {string}\n[[range]]\nbase = 1\n"
    assert SourceMap(text).locate(("range", 0, "base")) == (after + 1, 1)


_PLAIN = """\
top = 1  # root keys come first
\tother = "x"

  [filter]  # a comment
name = "x"
[[range]]
  base = 1
[[ range ]]
base = 2
\tnr_functions = 3
[vm]
allow = ["HVF303", "twin-gap"]
# a comment line
cpus = 2
"""


@pytest.mark.parametrize("text", [_PLAIN, _PLAIN.replace("\n", "\r\n"), *_cases()[1:]])
def test_plain_toml_positions_match_the_full_scan(text: str) -> None:
    plain = parse(text)
    assert plain is not None, "the case is plain TOML"
    index = SourceMap(text)._build()
    assert index, "the case has positions to compare"
    source = SourceMap(text, plain.lines)
    for path, position in index.items():
        assert source.locate(path) == position, path
    assert type(source._lazy).__name__ == "_PlainIndex"  # the parsed lines answered


def test_plain_toml_unknown_keys_fall_back_to_their_table() -> None:
    plain = parse(_PLAIN)
    assert plain is not None
    source = SourceMap(_PLAIN, plain.lines)
    assert source.locate(("range", 1, "comment")) == (8, 1)
    assert source.locate(("range", 1, "nr_functions")) == (10, 2)
    assert source.locate(("vm", "allow", 1)) == (12, 1)
    assert source.locate(("other",)) == (2, 2)
    assert source.locate(("nowhere",)) is None


def test_plain_toml_many_keys_of_one_table_each_at_its_line() -> None:
    # Read once per table, not once per key (which was quadratic): every answer still right.
    text = "[filter]\n" + "".join(f"k{i} = {i}\n" for i in range(200))
    plain = parse(text)
    assert plain is not None
    source = SourceMap(text, plain.lines)
    for i in range(200):
        assert source.locate(("filter", f"k{i}")) == (i + 2, 1)
    assert source.locate(("filter", "nope")) == (1, 1)  # the table, for a key it lacks


def test_a_name_given_as_an_array_of_tables_is_found_at_its_first_header() -> None:
    # An unknown [[ranges]] (or [[filter]]) was reported with no line at all.
    text = 'x = """\n"""\n[[ranges]]\naction = "deny"\n[[ranges]]\n'
    assert SourceMap(text).locate(("ranges",)) == (3, 1)
