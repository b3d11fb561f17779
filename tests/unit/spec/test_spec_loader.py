"""Unit tests of hvcfilter.spec: loading, resolving selectors, diagnostics and positions."""

from __future__ import annotations

from pathlib import Path

import pytest
from suite_paths import EXAMPLES

from hvcfilter import spec
from hvcfilter.diagnostics import Severity
from hvcfilter.model import Action, FunctionEntry, RawEntry
from hvcfilter.spec import format_key_path, load, loads, locate, resolve_function


def _records(text: str) -> list[tuple[int, int, Action, int]]:
    result = loads(text)
    assert result.spec is not None, result.diagnostics
    return [(r.base, r.nr_functions, r.action, r.entry) for r in result.spec.ranges]


# --------------------------------------------------------------------------- resolving


def test_raw_with_nr_and_end() -> None:
    text = (
        '[[range]]\nbase = 0x84000000\nnr_functions = 0x20\naction = "deny"\n\n'
        '[[range]]\nbase = 0xC2000000\nend = 0xC20000FF\naction = "fwd_to_user"\n'
    )
    assert _records(text) == [
        (0x8400_0000, 0x20, Action.DENY, 0),
        (0xC200_0000, 0x100, Action.FWD_TO_USER, 1),
    ]


def test_end_below_base_keeps_the_kernels_32_bit_view() -> None:
    assert _records('[[range]]\nbase = 0x10\nend = 0xF\naction = "deny"\n') == [
        (0x10, 0, Action.DENY, 0)
    ]
    assert _records('[[range]]\nbase = 0\nend = 0xFFFFFFFF\naction = "deny"\n') == [
        (0, 0, Action.DENY, 0)
    ]


def test_function_by_name_number_and_hex_string() -> None:
    text = (
        '[[range]]\nfunction = "psci_cpu_on_64"\naction = "deny"\n\n'
        '[[range]]\nfunction = 0x84000003\naction = "deny"\n\n'
        '[[range]]\nfunction = "0xC2000005"\naction = "handle"\n'
    )
    assert _records(text) == [
        (0xC400_0003, 1, Action.DENY, 0),
        (0x8400_0003, 1, Action.DENY, 1),
        (0xC200_0005, 1, Action.HANDLE, 2),
    ]


def test_functions_are_deduplicated_and_merged() -> None:
    text = (
        '[[range]]\nfunctions = ["PSCI_CPU_ON_32", 0x84000004, 0x84000003, '
        '"PSCI_CPU_ON_64"]\naction = "fwd_to_user"\n'
    )
    assert _records(text) == [
        (0x8400_0003, 2, Action.FWD_TO_USER, 0),
        (0xC400_0003, 1, Action.FWD_TO_USER, 0),
    ]


def test_service_with_and_without_convention() -> None:
    assert _records('[[range]]\nservice = "psci"\naction = "deny"\n') == [
        (0x8400_0000, 0x20, Action.DENY, 0),
        (0xC400_0000, 0x20, Action.DENY, 0),
    ]
    assert _records('[[range]]\nservice = "sdei"\nconvention = "smc64"\naction = "deny"\n') == [
        (0xC400_0020, 0x20, Action.DENY, 0)
    ]


def test_owner_selector() -> None:
    text = '[[range]]\nowner = "sip"\nconvention = "smc64"\ncall = "fast"\naction = "deny"\n'
    assert _records(text) == [(0xC200_0000, 0x0100_0000, Action.DENY, 0)]
    assert len(_records('[[range]]\nowner = 2\naction = "deny"\n')) == 4


def test_spec_fields_and_profile() -> None:
    text = (
        '[filter]\nname = "t"\ndescription = "d"\nkernel = "6.12.95"\n\n'
        '[vm]\npsci_version = "1.0"\nstd = []\nvendor_hyp = ["ptp"]\n'
    )
    result = loads(text, "f.toml")
    assert result.spec is not None
    assert (result.spec.name, result.spec.description, result.spec.path) == ("t", "d", "f.toml")
    assert result.spec.profile.name == "6.12"
    assert result.spec.vm.psci_version == (1, 0)
    assert result.spec.vm.bitmaps == {0: 0, 2: 0b10}
    assert result.spec.ranges == ()


def test_default_profile_is_the_newest() -> None:
    result = loads("")
    assert result.spec is not None and result.spec.profile.name == "7.2"


def test_entries_keep_their_types() -> None:
    result = loads(
        '[[range]]\nbase = 1\nnr_functions = 1\naction = "deny"\n'
        '[[range]]\nfunction = 5\naction = "deny"\n'
    )
    assert result.spec is not None
    assert [type(e) for e in result.spec.entries] == [RawEntry, FunctionEntry]


# --------------------------------------------------------------------------- diagnostics


def test_syntax_error_has_line_and_column() -> None:
    result = loads("[filter]\nname = \n", "s.toml")
    assert result.spec is None
    (diag,) = result.diagnostics
    assert diag.code == "HVF002" and diag.severity is Severity.ERROR
    assert (diag.location.line, diag.location.column) == (2, 8)
    assert "(at line" not in diag.message


def test_schema_errors_point_at_their_key() -> None:
    text = (
        '[filter]\nkernel = "6.12"\n\n'
        '[[range]]\nbase = 0x84000000\nnr_functions = 1\naction = "allow"\n'
    )
    (diag,) = loads(text, "s.toml").diagnostics
    assert diag.code == "HVF101"
    assert (diag.location.line, diag.location.key) == (7, "range[0].action")
    assert diag.hint and "deny" in diag.hint


def test_unknown_key_suggests_the_closest() -> None:
    (diag,) = loads('[filter]\nkernal = "6.12"\n').diagnostics
    assert diag.code == "HVF102" and "did you mean 'kernel'" in diag.message
    assert diag.location.line == 2


def test_unknown_top_level_table() -> None:
    (diag,) = loads("[filters]\nname = 1\n").diagnostics
    assert diag.code == "HVF102"
    assert diag.location.line == 1


def test_unknown_profile() -> None:
    (diag,) = loads('[filter]\nkernel = "5.10"\n').diagnostics
    assert diag.code == "HVF104" and "(known: 6.1, 6.12, 7.2)" in diag.message


def test_several_errors_are_all_reported_sorted() -> None:
    text = (
        '[[range]]\nfunction = "NOPE"\naction = "deny"\n\n'
        '[[range]]\nfunction = 0x84000000\naction = "deny"\n\n'
        '[[range]]\nbase = 0x84000000\naction = "deny"\n'
    )
    result = loads(text)
    assert result.spec is None
    assert [d.code for d in result.diagnostics] == ["HVF104", "HVF106"]
    assert [d.location.line for d in result.diagnostics] == [2, 10]


def test_vm_config_errors() -> None:
    text = (
        '[filter]\nkernel = "6.12"\n\n'
        '[vm]\npsci_version = "1.3"\nvendor_hyp_2 = []\nstd = ["nope"]\n'
    )
    result = loads(text)
    assert sorted(d.code for d in result.diagnostics) == ["HVF104", "HVF107", "HVF107"]
    by_key = {d.location.key: d for d in result.diagnostics}
    assert "EINVAL" in by_key["vm.psci_version"].message
    assert "ENOENT" in by_key["vm.vendor_hyp_2"].message
    assert by_key["vm.std[0]"].location.line == 7


def test_bad_psci_version_shape() -> None:
    (diag,) = loads('[vm]\npsci_version = "one"\n').diagnostics
    assert diag.code == "HVF104" and "MAJOR.MINOR" in diag.message


def test_range_that_is_not_a_table() -> None:
    (diag,) = loads("range = [1]\n").diagnostics
    assert diag.code == "HVF101" and "must be a table" in diag.message


# --------------------------------------------------------------------------- files


def test_load_missing_file(tmp_path: Path) -> None:
    result = load(tmp_path / "nope.toml")
    assert result.unreadable and result.spec is None
    (diag,) = result.diagnostics
    assert diag.code == "HVF001" and "no such file" in diag.message


def test_load_directory(tmp_path: Path) -> None:
    result = load(tmp_path)
    assert result.unreadable and "is a directory" in result.diagnostics[0].message


def test_load_non_utf8_reports_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[filter]\nname = "caf\xe9"\n')
    (diag,) = load(path).diagnostics
    assert diag.code == "HVF001" and "0xe9" in diag.message
    assert (diag.location.line, diag.location.column) == (2, 12)


def test_load_good_file(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text('[[range]]\nfunction = "PSCI_CPU_ON_64"\naction = "deny"\n')
    result = load(path)
    assert not result.unreadable and result.diagnostics == ()
    assert result.spec is not None and result.spec.path == str(path)


# --------------------------------------------------------------------------- positions


def test_locate_keys_tables_and_fallbacks() -> None:
    text = (
        '# comment\n[filter]\nkernel = "7.2"\n\n'
        '[[range]]\n  base = 0x84000000\n  nr_functions = 1\n  action = "deny"\n\n'
        '[[range]]\nfunction = "PSCI_CPU_ON_64"\naction = "deny"\n'
    )
    result = loads(text, "p.toml")
    assert result.spec is not None
    s = result.spec
    assert locate(s, ("range", 0, "base")).line == 6
    assert locate(s, ("range", 0, "base")).column == 3
    assert locate(s, ("range", 1, "function")).line == 11
    assert locate(s, ("range", 1, "comment")).line == 10  # falls back to the table header
    assert locate(s, ("filter", "kernel")).line == 3
    missing = locate(s, ("nothing",))
    assert missing.line is None and missing.key == "nothing" and missing.file == "p.toml"


def test_locate_skips_multi_line_strings() -> None:
    text = (
        '[filter]\ndescription = """\n[[range]]\nbase = 1\n"""\n\n'
        '[[range]]\nbase = 0x84000000\nnr_functions = 1\naction = "deny"\n'
    )
    result = loads(text)
    assert result.spec is not None
    assert locate(result.spec, ("range", 0, "base")).line == 8


def test_format_key_path() -> None:
    assert format_key_path(("range", 3, "base")) == "range[3].base"
    assert format_key_path(("vm", "std", 0)) == "vm.std[0]"
    assert format_key_path(()) == ""


def test_resolve_function() -> None:
    assert resolve_function("PSCI_CPU_ON_32") == 0x8400_0003
    assert resolve_function(" 0x84000003 ") == 0x8400_0003
    assert resolve_function(5) == 5
    with pytest.raises(KeyError):
        resolve_function("PSCI_NOPE")
    with pytest.raises(ValueError, match="not a hex number"):
        resolve_function("0xZZ")
    with pytest.raises(ValueError, match="outside"):
        resolve_function(1 << 32)
    with pytest.raises(ValueError, match="outside"):
        resolve_function("0x100000000")


def test_input_rules_are_documented() -> None:
    codes = [r.code for r in spec.INPUT_RULES]
    assert codes == sorted(codes) and len(set(codes)) == len(codes)
    for rule in spec.INPUT_RULES:
        assert "Fail:" in rule.doc and "Pass:" in rule.doc
        assert rule.code[3] in "01"


def test_union_field_errors_give_one_diagnostic_without_type_labels() -> None:
    # owner is "number or name": pydantic fails it once per member type.
    result = loads('[[range]]\naction = "deny"\nowner = 64\n', "u.toml")
    (diag,) = result.diagnostics
    assert diag.code == "HVF105"
    assert diag.location.key == "range[0].owner"
    assert "64" in diag.message and "at most 63" in diag.message


def test_bad_item_of_functions_names_its_index() -> None:
    result = loads('[[range]]\naction = "deny"\nfunctions = [1.5]\n', "f.toml")
    (diag,) = result.diagnostics
    assert diag.location.key == "range[0].functions[0]"


def test_a_byte_order_mark_is_ignored() -> None:
    result = loads('\ufeff[[range]]\naction = "deny"\nbase = 0xC2000000\nnr_functions = 1\n')
    assert result.spec is not None and result.diagnostics == ()


def test_deep_nesting_is_a_syntax_error_not_a_crash() -> None:
    result = loads("x = " + "[" * 5000 + "]" * 5000)
    assert [d.code for d in result.diagnostics] == ["HVF002"]


@pytest.mark.parametrize(
    "before",
    ['description = \'say """ here\'', 'description = """one line"""  # """'],
)
def test_triple_quotes_inside_one_line_strings_keep_positions(before: str) -> None:
    text = f'[filter]\n{before}\n[[range]]\naction = "deny"\nbase = -1\nnr_functions = 1\n'
    (diag,) = loads(text, "s.toml").diagnostics
    assert (diag.location.line, diag.location.key) == (5, "range[0].base")


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ("filter = 5", "filter must be a table, not an integer", "[filter] table"),
        ("[filter]\nkernel = 6.12", "filter.kernel", 'kernel = "6.12"'),
        ("range = 5", "range", "[[range]] table"),
    ],
)
def test_type_errors_say_how_to_fix_them(text: str, message: str, hint: str) -> None:
    (diag,) = loads(text).diagnostics
    assert message in diag.message and "FilterTable" not in diag.message
    assert diag.hint is not None and hint in diag.hint


def test_dash_reads_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    data = b'[[range]]\naction = "deny"\nbase = 0xC2000000\nnr_functions = 1\n'
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    result = load("-")
    assert result.path == "<stdin>" and result.spec is not None


def test_clean_specs_are_read_without_importing_pydantic() -> None:
    # pydantic's import and model build are most of a cold `hvcfilter check`;
    # well-formed specs must not pay for them (the schema is only for errors).
    import subprocess
    import sys

    examples = sorted(str(p) for p in EXAMPLES.glob("*.toml"))
    code = (
        "import sys\n"
        "from hvcfilter.cli import main\n"
        "try:\n"
        f"    main(['check', *{examples!r}])\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "assert 'pydantic' not in sys.modules, 'pydantic was imported'\n"
    )
    argv = [sys.executable, "-c", code]
    done = subprocess.run(argv, check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_bad_spec_still_gets_the_schemas_words() -> None:
    result = loads('[[range]]\naction = "allow"\nbase = 1\nnr_functions = 1\n', "a.toml")
    (diag,) = result.diagnostics
    assert diag.code == "HVF101" and "'handle', 'deny' or 'fwd_to_user'" in diag.message


def test_a_vm_setting_the_kernel_refuses_is_a_warning_and_the_spec_still_loads() -> None:
    # The filter table is what SET_ATTR takes; a refused [vm] register write does
    # not make the kernel reject it, so compile and check must still work.
    text = (
        '[filter]\nkernel = "6.12"\n[vm]\npsci_version = "1.3"\nvendor_hyp_2 = []\n'
        '[[range]]\naction = "deny"\nfunction = "PSCI_MIGRATE_32"\n'
    )
    result = loads(text, "vm.toml")
    assert [(d.code, d.severity) for d in result.diagnostics] == [
        ("HVF107", Severity.WARNING),
        ("HVF107", Severity.WARNING),
    ]
    assert result.spec is not None
    assert result.spec.vm.psci_version is None and 3 not in result.spec.vm.bitmaps


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('[[range]]\naction = "deny"\nbase = {huge}\nnr_functions = 1\n', 3),
        # Not plain TOML (a table after the ranges), so tomllib reads it.
        (
            '[[range]]\naction = "deny"\nbase = 0x84000000\nnr_functions = {huge}\n'
            '[filter]\nname = "x"\n',
            4,
        ),
    ],
    ids=["plain-subset", "tomllib"],
)
def test_a_number_past_pythons_digit_limit_is_an_error_on_its_line(text: str, line: int) -> None:
    # int() refuses over 4,300 decimal digits (CVE-2020-10735); both TOML readers call it.
    result = loads(text.format(huge="9" * 4301), "huge.toml")
    assert result.spec is None
    (diag,) = result.diagnostics
    assert diag.code == "HVF002" and diag.severity is Severity.ERROR
    assert diag.location.line == line and "over 4,300 digits" in diag.message


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        (
            '[[range]]\naction = "deny"\nfunctions = "PSCI_CPU_ON_64"\n',
            'write a list, even of one: functions = ["PSCI_CPU_ON_64"]',
        ),
        (
            '[[range]]\naction = "deny"\nfunctions = 0x84000000\n',
            "write a list, even of one: functions = [0x84000000]",
        ),
        ('[filter]\nallow = "HVF201"\n', 'write a list, even of one: allow = ["HVF201"]'),
        (  # a control or bidi character is escaped, as TOML needs and a terminal wants
            '[[range]]\naction = "deny"\nfunctions = "A\\u007fB\\u202eC"\n',
            'write a list, even of one: functions = ["A\\u007FB\\u202EC"]',
        ),
        (
            '[[range]]\naction = "deny"\nfunctions = []\n',
            'name at least one ID: functions = ["PSCI_CPU_ON_64"], or drop the entry',
        ),
    ],
)
def test_a_list_written_as_one_value_or_empty_says_how_to_write_it(text: str, hint: str) -> None:
    (diag,) = loads(text).diagnostics
    assert diag.code == "HVF101"
    assert diag.hint == hint


def test_the_list_hint_is_toml_that_parses_back_to_the_value() -> None:
    # JSON's surrogate pairs for a character past U+FFFF are no TOML (no scalar value).
    import tomllib

    value = 'PSCI_\U0001f600\x7f\u202e"q\\'
    source = '[[range]]\naction = "deny"\nfunctions = "PSCI_\\U0001F600\\u007F\\u202E\\"q\\\\"\n'
    (diag,) = loads(source).diagnostics
    assert diag.hint is not None
    suggested = diag.hint.split(": ", 1)[1]
    assert suggested.isascii() and suggested.isprintable()
    assert tomllib.loads(suggested) == {"functions": [value]}


@pytest.mark.parametrize("base", [0x1000, 0xC2000000], ids=["ascii bytes", "not utf-8"])
def test_a_payload_read_as_a_spec_is_named_a_payload(base: int) -> None:
    # It was "not UTF-8 text: save the spec as UTF-8", or a TOML syntax error.
    from hvcfilter.spec import load_bytes

    record = base.to_bytes(4, "little") + (1).to_bytes(4, "little") + b"\x01" + bytes(15)
    (diag,) = load_bytes(record * 2, "vm.bin").diagnostics
    assert diag.code == "HVF001"
    assert diag.message == "vm.bin is a binary payload of 2 record(s), not a spec"
    assert diag.hint is not None and diag.hint.startswith("`hvcfilter decompile vm.bin`")


def test_utf16_text_the_length_of_whole_records_is_not_called_a_payload() -> None:
    from hvcfilter.spec import load_bytes

    text = '[filter]\nname = "x"\n'.encode("utf-16")
    text += " ".encode("utf-16-le") * ((-len(text) % 24) // 2)
    assert len(text) % 24 == 0 and b"\0" in text
    (diag,) = load_bytes(text, "vm.toml").diagnostics
    assert diag.code == "HVF001" and diag.message.startswith("not UTF-8 text")


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le"])
def test_utf16_or_32_text_without_a_bom_is_told_to_be_saved_as_utf8(encoding: str) -> None:
    # It decodes as UTF-8 (NUL is UTF-8), and TOML called the first NUL a syntax
    # error with the hint "hex numbers are written 0x84000000".
    from hvcfilter.spec import load_bytes

    data = '[filter]\nkernel = "6.12"\n'.encode(encoding)
    (diag,) = load_bytes(data, "vm.toml").diagnostics
    nul = data.index(b"\0")
    assert diag.code == "HVF001"
    assert diag.message == f"not UTF-8 text: a NUL byte at offset {nul}"
    assert (diag.location.line, diag.location.column) == (1, nul + 1)
    assert diag.hint is not None and diag.hint.startswith("save the spec as UTF-8")


def test_a_nul_in_otherwise_plain_text_is_located_at_its_line() -> None:
    from hvcfilter.spec import load_bytes

    (diag,) = load_bytes(b'[filter]\nname = "a\0b"\n', "vm.toml").diagnostics
    assert diag.message == "not UTF-8 text: a NUL byte at offset 18, which TOML does not allow"
    assert (diag.location.line, diag.location.column) == (2, 10)
    assert diag.hint is not None and diag.hint.startswith("remove the NUL bytes")


def test_a_list_given_to_function_points_at_functions() -> None:
    # It said only "input should be a valid integer", though a name is valid there too.
    (diag,) = loads('[[range]]\naction = "deny"\nfunction = ["PSCI_CPU_ON_64"]\n').diagnostics
    assert diag.code == "HVF101" and diag.location.key == "range[0].function"
    assert diag.hint is not None and "several go in functions = [" in diag.hint
    # The hint's own example is a spec that loads.
    example = diag.hint.split("several go in ", 1)[1]
    assert loads(f'[[range]]\naction = "deny"\n{example}\n').spec is not None
