"""The plain-TOML parser (spec.toml_subset) against tomllib, the judge of record.

It may decline anything, but what it returns must be exactly what tomllib
returns (types and key order included, so ``repr`` is compared), it must
never accept text tomllib rejects, and it must not decline the plain TOML
that specs are written in, or large specs would lose the fast path.
"""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hvcfilter.spec.toml_subset import parse

pytestmark = pytest.mark.property

# Pieces of TOML, right and wrong, inside the subset and outside it.
_KEYS = st.sampled_from(["base", "nr_functions", "action", "a-b", "x_1", "9", "true", "name"])
_VALUES = st.sampled_from(
    [
        '"deny"',
        '""',
        "'lit'",
        "''",
        '"tab\there"',
        '"ünïcode ✓"',
        "0x84000000",
        "0xC400_0003",
        "0xabcdef",
        "0",
        "-0",
        "+7",
        "1_000",
        "true",
        "false",
        "[]",
        "[ ]",
        '["a", "b",]',
        "[1, 0x2 , -3]",
        '["]", "#", "a,b"]',
        "['x', true, 5]",
        # Outside the subset (valid or not): tomllib decides.
        "01",
        "1__0",
        "1_",
        "0x",
        "0x_1",
        "-0x1",
        "0X1",
        "0o17",
        "0b101",
        "1.5",
        "1e3",
        "inf",
        "1979-05-27",
        '"esc\\n"',
        '"bad"x',
        '"""multi"""',
        "[1, [2]]",
        "[,]",
        "[1,,2]",
        "{ a = 1 }",
        "True",
        "",
        '"ctl\x01"',
        '"del\x7f"',
    ]
)
_COMMENTS = st.sampled_from(["", " # c", "#", "\t# tab\tok", " # ✓", " # ctl\x01", " # del\x7f"])
_SPACE = st.sampled_from(["", " ", "\t", "  "])
_ENDS = st.sampled_from(["\n", "\r\n", "\n", "\r", ""])


@st.composite
def _line(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 9))
    space = draw(_SPACE)
    if kind <= 5:
        body = f"{draw(_KEYS)}{draw(_SPACE)}={draw(_SPACE)}{draw(_VALUES)}"
    elif kind == 6:
        body = f"[{draw(_SPACE)}{draw(st.sampled_from(['filter', 'range', 'a.b', '']))}]"
    elif kind == 7:
        name = draw(st.sampled_from(["range", "filter", '"q"']))
        body = f"[[{draw(_SPACE)}{name}{draw(_SPACE)}]]"
    elif kind == 8:
        body = draw(st.sampled_from(["a.b = 1", '"quoted" = 1', "[ [range]]", "key", "= 1"]))
    else:
        body = ""
    return f"{space}{body}{draw(_SPACE)}{draw(_COMMENTS)}"


@st.composite
def _documents(draw: st.DrawFn) -> str:
    lines = draw(st.lists(_line(), max_size=6))
    return "".join(line + draw(_ENDS) for line in lines)


def _tomllib(text: str) -> str | None:
    try:
        return repr(tomllib.loads(text))
    except tomllib.TOMLDecodeError:
        return None


@settings(max_examples=3000, deadline=None)
@given(_documents())
@example("a = 1")
@example("a = 1\r")
@example("\n\n")
@example("[t]\na = 1\n[t]\n")
@example("[[r]]\na = 1\n[[r]]\na = 2\n[r]\n")
@example("r = 1\n[[r]]\n")
@example("[t]\na = 1\na = 2\n")
def test_what_it_accepts_is_exactly_what_tomllib_reads(text: str) -> None:
    got = parse(text)
    if got is not None:
        assert repr(got.document) == _tomllib(text)
        assert len(got.lines) == text.count("\n") + (not text.endswith("\n") and text != "")


# Plain TOML, as specs and generated specs are written: always accepted.
_PLAIN_VALUES = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.integers(0, 2**64).map(lambda n: f"0x{n:X}"),
    st.integers(0, 2**32).map(lambda n: f"0x{n:_x}".replace("0x_", "0x")),
    st.booleans().map(lambda b: "true" if b else "false"),
    st.text(
        st.characters(blacklist_characters='"\\', max_codepoint=0x2FFF).filter(
            lambda c: c == "\t" or not (ord(c) < 0x20 or ord(c) == 0x7F)
        ),
        max_size=8,
    ).map(lambda s: f'"{s}"'),
    st.lists(st.sampled_from(['"HVF303"', '"PSCI_CPU_ON_64"', "3", "0x10"]), max_size=4).map(
        lambda items: "[" + ", ".join(items) + "]"
    ),
)


_PLAIN_COMMENTS = _COMMENTS.filter(lambda c: "ctl" not in c and "del" not in c)


@st.composite
def _plain_documents(draw: st.DrawFn) -> str:
    out = []
    for key in draw(st.lists(st.sampled_from(["name", "kernel", "x"]), unique=True)):
        out.append(f"{key} = {draw(_PLAIN_VALUES)}")
    for table in draw(st.lists(st.sampled_from(["filter", "vm", "extra"]), unique=True)):
        out.append(f"[{table}]")
        for key in draw(st.lists(st.sampled_from(["a", "b", "c"]), unique=True)):
            out.append(f"{key} = {draw(_PLAIN_VALUES)}{draw(_PLAIN_COMMENTS)}")
    for _ in range(draw(st.integers(0, 4))):
        out.append("[[range]]" + draw(st.sampled_from(["", "  # next"])))
        for key in draw(st.lists(st.sampled_from(["base", "nr_functions", "action"]), unique=True)):
            out.append(f"{draw(_SPACE)}{key}{draw(_SPACE)}={draw(_SPACE)}{draw(_PLAIN_VALUES)}")
        out.append("")
    end = draw(st.sampled_from(["\n", "\r\n"]))
    return end.join(out) + draw(st.sampled_from([end, ""]))


@settings(max_examples=1000, deadline=None)
@given(_plain_documents())
def test_plain_toml_is_never_declined(text: str) -> None:
    got = parse(text)
    assert got is not None
    assert repr(got.document) == _tomllib(text)


@pytest.mark.parametrize(
    "text",
    [
        'a = "x\\ty"\n',  # an escape
        "a.b = 1\n",  # a dotted key
        '"a" = 1\n',  # a quoted key
        "a = 1.5\n",  # a float
        "a = [\n  1,\n]\n",  # a multi-line array
        "a = { b = 1 }\n",  # an inline table
        "a = 1\na = 2\n",  # a key defined twice (an error)
        "[t]\n[t]\n",  # a table defined twice (an error)
        "[[r]]\n[r]\n",  # a table over an array of tables (an error)
        "a = 1\r",  # a lone carriage return at the end (an error)
        "a = 1 # \x01\n",  # a control character in a comment (an error)
        "a = 01\n",  # a leading zero (an error)
    ],
)
def test_declines_what_it_does_not_read(text: str) -> None:
    assert parse(text) is None
