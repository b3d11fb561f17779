"""CLI tests for ``hvcfilter compile``, ``decompile`` and ``diff``: exit codes, output, files."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from suite_paths import ROOT

from hvcfilter.cli import cli
from hvcfilter.cli.compile import DiffFormat
from hvcfilter.emit import OutputFormat

EXAMPLES = ROOT / "examples"
GOLDEN = ROOT / "tests" / "golden"
OVERLAP = (
    '[filter]\nkernel = "6.12"\n'
    '[[range]]\naction = "deny"\nbase = 0x86000000\nnr_functions = 0x10\n'
    '[[range]]\naction = "fwd_to_user"\nbase = 0x8600000F\nnr_functions = 2\n'
)


def run(*args: str, stdin: bytes | None = None) -> tuple[int, bytes, str]:
    result = CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)
    return result.exit_code, result.stdout_bytes, result.stderr


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_compile_every_format_matches_golden(tmp_path: Path, fmt: OutputFormat) -> None:
    out = tmp_path / "out"
    code, _, err = run(
        "compile", str(EXAMPLES / "lockdown.toml"), "-o", str(out), "--format", fmt.value
    )
    assert code == 0, err
    suffix = {
        "bin": "bin",
        "c": "h",
        "rust": "rs",
        "json": "json",
        "hex": "hex",
        "sha256": "sha256",
    }
    assert out.read_bytes() == (GOLDEN / f"lockdown.{suffix[fmt.value]}").read_bytes()


def test_compile_is_byte_identical_across_runs(tmp_path: Path) -> None:
    for name in ("a.bin", "b.bin"):
        assert (
            run("compile", str(EXAMPLES / "vcpu-hotplug.toml"), "-o", str(tmp_path / name))[0] == 0
        )
    assert (tmp_path / "a.bin").read_bytes() == (tmp_path / "b.bin").read_bytes()


def test_compile_no_merge_and_big_endian(tmp_path: Path) -> None:
    out = tmp_path / "o.bin"
    assert run("compile", str(EXAMPLES / "lockdown.toml"), "--no-merge", "-o", str(out))[0] == 0
    assert out.read_bytes() == (GOLDEN / "lockdown.nomerge.bin").read_bytes()
    assert (
        run("compile", str(EXAMPLES / "minimal.toml"), "--byte-order", "big", "-o", str(out))[0]
        == 0
    )
    assert out.read_bytes() == (GOLDEN / "minimal.be.bin").read_bytes()


def test_compile_to_stdout_pipe() -> None:
    code, out, _ = run("compile", str(EXAMPLES / "minimal.toml"), "--format", "hex")
    assert code == 0 and out == (GOLDEN / "minimal.hex").read_bytes()
    code, out, _ = run("compile", str(EXAMPLES / "minimal.toml"), "-o", "-")
    assert code == 0 and out == (GOLDEN / "minimal.bin").read_bytes()


def test_compile_refuses_binary_to_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import hvcfilter.cli._common as common

    class Tty:
        buffer = None

        @staticmethod
        def isatty() -> bool:
            return True

    # CliRunner swaps sys.stdout during the call, so the check sees a stand-in sys.
    monkeypatch.setattr(common, "sys", SimpleNamespace(stdout=Tty(), exit=sys.exit))
    code, _, err = run("compile", str(EXAMPLES / "minimal.toml"))
    assert code == 2
    assert "refusing to write binary output to a terminal" in err


def test_compile_spec_with_errors_writes_nothing(tmp_path: Path) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text(OVERLAP)
    out = tmp_path / "out.bin"
    out.write_bytes(b"old")
    code, _, err = run("compile", str(spec), "-o", str(out))
    assert code == 1
    assert "HVF201" in err
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_compile_never_overwrites_its_input(tmp_path: Path) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text((EXAMPLES / "minimal.toml").read_text())
    code, _, err = run("compile", str(spec), "-o", str(spec))
    assert code == 2 and "refusing to overwrite input" in err
    assert spec.read_text() == (EXAMPLES / "minimal.toml").read_text()


def test_compile_missing_spec_is_exit_2(tmp_path: Path) -> None:
    code, _, err = run("compile", str(tmp_path / "nope.toml"), "--format", "hex")
    assert code == 2 and "HVF001" in err


def test_compile_unknown_kernel_is_a_usage_error() -> None:
    code, _, err = run(
        "compile", str(EXAMPLES / "minimal.toml"), "--kernel", "5.4", "--format", "hex"
    )
    assert code == 2 and "unknown kernel profile" in err


def test_dry_run_ok_and_failing(tmp_path: Path) -> None:
    code, out, _ = run(
        "compile", str(EXAMPLES / "deny-all-but-arch.toml"), "--dry-run", "--kernel", "6.12"
    )
    assert code == 0
    text = out.decode()
    assert "kernel 6.12" in text and "ok: all 3 records would be accepted" in text
    spec = tmp_path / "bad.toml"
    spec.write_text(OVERLAP)
    code, out, err = run("compile", str(spec), "--dry-run")
    assert code == 1
    assert "EEXIST" in out.decode() and "HVF201" in err
    code, out, _ = run("compile", str(spec), "--dry-run", "--format", "json")
    document = json.loads(out)
    assert [s["result"] for s in document["steps"]] == ["0", "EEXIST"]
    assert document["ok"] is False


def test_a_dry_run_refused_before_its_last_record_says_the_installers_stop_there(
    tmp_path: Path,
) -> None:
    # The kernel answers record 1 as if alone; the generated installers never send it.
    spec = tmp_path / "early.toml"
    spec.write_text(
        '[filter]\nlayout = "as-written"\n'
        '[[range]]\naction = "deny"\nbase = 0x80000000\nnr_functions = 1\n'
        '[[range]]\naction = "deny"\nbase = 0xC3000000\nnr_functions = 1\n'
    )
    code, out, _ = run("compile", str(spec), "--dry-run")
    assert code == 1
    assert "installers compile writes stop at record 0 and send none after it" in out.decode()
    last = tmp_path / "last.toml"
    last.write_text(OVERLAP)  # refused at its last record: nothing after it to skip
    code, out, _ = run("compile", str(last), "--dry-run")
    assert code == 1 and "send none after it" not in out.decode()


@pytest.mark.parametrize("extra", [("-o", "out.bin"), ("--format", "hex"), ("--format", "c")])
def test_dry_run_refuses_options_it_would_ignore(tmp_path: Path, extra: tuple[str, str]) -> None:
    args = [a if a != "out.bin" else str(tmp_path / a) for a in extra]
    code, out, err = run("compile", str(EXAMPLES / "minimal.toml"), "--dry-run", *args)
    assert code == 2 and out == b"" and "--dry-run" in err
    assert not (tmp_path / "out.bin").exists()


def test_decompile_round_trip(tmp_path: Path) -> None:
    spec = tmp_path / "back.toml"
    code, _, err = run("decompile", str(GOLDEN / "lockdown.bin"), "-o", str(spec))
    assert code == 0, err
    assert spec.read_bytes() == (GOLDEN / "lockdown.decompiled.toml").read_bytes()
    out = tmp_path / "again.bin"
    assert run("compile", str(spec), "-o", str(out))[0] == 0
    assert out.read_bytes() == (GOLDEN / "lockdown.bin").read_bytes()


def test_diff_names_stdin_as_everywhere_else() -> None:
    # It was "-:3:1", as if a file were named "-".
    spec = b'[filter]\nkernel = "6.12"\nx = 1\n'
    code, _, err = run("diff", "-", str(EXAMPLES / "minimal.toml"), stdin=spec)
    assert code == 2
    assert err.startswith("<stdin>:3:1: error HVF102")


def test_decompile_from_stdin() -> None:
    code, out, _ = run("decompile", "-", stdin=(GOLDEN / "minimal.bin").read_bytes())
    assert code == 0 and out == (GOLDEN / "minimal.decompiled.toml").read_bytes()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\0" * 23, ["<stdin>@0x0 (record[0]): error HVF401 truncated-payload"]),
        (
            struct.pack("<IIB15s", 0x86000000, 1, 3, bytes(15)),
            ["@0x8 (record[0].action): error HVF402"],
        ),
        (
            struct.pack("<IIB15s", 0x86000000, 1, 1, bytes(3) + b"\x07" + bytes(11)),
            ["@0xc (record[0].pad): error HVF403"],
        ),
        (
            struct.pack("<IIB15s", 0xFFFFFFFF, 2, 1, bytes(15)),
            ["@0x4 (record[0].nr_functions): error HVF404"],
        ),
        (
            struct.pack("<IIB15s", 0x86000000, 2, 1, bytes(15)) * 2,
            ["@0x18 (record[1]): error HVF405"],
        ),
        (struct.pack("<IIB15s", 0xC000FFFF, 1, 0, bytes(15)), ["@0x0 (record[0]): error HVF406"]),
    ],
)
def test_decompile_bad_payload(tmp_path: Path, data: bytes, expected: list[str]) -> None:
    out = tmp_path / "spec.toml"
    code, stdout, err = run("decompile", "-", "-o", str(out), stdin=data)
    assert code == 1
    for line in expected:
        assert line in err
    assert not out.exists() and stdout == b""


def test_decompile_for_a_kernel_without_the_filter_is_an_error(tmp_path: Path) -> None:
    out = tmp_path / "spec.toml"
    data = struct.pack("<IIB15s", 0xC2000000, 0x10, 1, bytes(15))
    code, stdout, err = run("decompile", "-", "--kernel", "6.1", "-o", str(out), stdin=data)
    assert code == 1 and not out.exists() and stdout == b""
    assert "@0x0 (record[0]): error HVF407 payload-without-filter: kernel 6.1" in err
    # diff refuses such a payload as it refuses a spec for that kernel (HVF207).
    bin_file = tmp_path / "t.bin"
    bin_file.write_bytes(data)
    code, _, err = run("diff", "--kernel", "6.1", str(bin_file), str(bin_file))
    assert code == 2 and "HVF407" in err


def test_decompile_unreadable_payload(tmp_path: Path) -> None:
    code, _, err = run("decompile", str(tmp_path / "missing.bin"))
    assert code == 2
    missing = tmp_path / "missing.bin"
    assert err == f"hvcfilter: error: cannot read {missing}: no such file; check the path\n"


def test_diff_names_the_unreadable_side_and_the_fix(tmp_path: Path) -> None:
    code, out, err = run("diff", str(EXAMPLES / "minimal.toml"), str(tmp_path))
    assert code == 2 and out == b""
    assert err == f"hvcfilter: error: cannot read {tmp_path}: is a directory; name a file in it\n"


@pytest.mark.parametrize("command", ["compile", "decompile", "check"])
def test_empty_output_name_is_a_usage_error(command: str) -> None:
    source = GOLDEN / "minimal.bin" if command == "decompile" else EXAMPLES / "minimal.toml"
    code, out, err = run(command, str(source), "-o", "")
    assert code == 2 and out == b""
    assert "the output file name is empty" in err


def test_decompile_of_a_spec_is_one_clear_error(tmp_path: Path) -> None:
    # It used to be read as records: one bogus HVF402/HVF403 pair per 24 bytes of text.
    out = tmp_path / "out.toml"
    code, stdout, err = run("decompile", str(EXAMPLES / "minimal.toml"), "-o", str(out))
    assert code == 2 and stdout == b"" and not out.exists()
    assert err.count("\n") == 1 and "is a TOML spec, not a binary payload" in err


def test_decompile_of_text_that_is_no_spec_says_it_is_text(tmp_path: Path) -> None:
    # Broken TOML used to read as records: "HVF401 truncated" for a file of text.
    path = tmp_path / "filter.txt"
    path.write_text("[filter\nkernel = 6.12\n")
    code, stdout, err = run("decompile", str(path))
    assert code == 2 and stdout == b""
    assert err.count("\n") == 1 and "is text, not a binary payload" in err
    assert f"hvcfilter check {path}" in err


def test_diff_equivalent_and_different(tmp_path: Path) -> None:
    code, out, _ = run(
        "diff", str(EXAMPLES / "vcpu-hotplug.toml"), str(GOLDEN / "vcpu-hotplug.bin")
    )
    assert code == 0 and "equivalent" in out.decode()
    changed = tmp_path / "changed.toml"
    changed.write_text(
        '[[range]]\naction = "fwd_to_user"\nfunctions = ["PSCI_CPU_ON_64", "PSCI_CPU_OFF_32"]\n'
    )
    code, out, _ = run("diff", str(changed), str(EXAMPLES / "vcpu-hotplug.toml"))
    assert code == 1
    assert "0x84000003 PSCI_CPU_ON_32: handle -> fwd_to_user" in out.decode()


@pytest.mark.parametrize("fmt", list(DiffFormat))
def test_diff_formats(fmt: DiffFormat) -> None:
    code, out, _ = run(
        "diff",
        str(EXAMPLES / "minimal.toml"),
        str(EXAMPLES / "trng-in-vmm.toml"),
        "--format",
        fmt.value,
    )
    assert code == 1
    if fmt is DiffFormat.JSON:
        document = json.loads(out)
        assert document["equivalent"] is False
        assert [c["range"] for c in document["changes"]] == [
            "0x84000050-0x8400005F",
            "0xC2000000-0xC20000FF",
            "0xC4000050-0xC400005F",
        ]
    else:
        assert (
            out.decode().splitlines()[-1]
            == "3 ranges (288 function IDs) change their effective action"
        )


def test_diff_bad_input_is_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\x01" * 7)
    code, _, err = run("diff", str(bad), str(EXAMPLES / "minimal.toml"))
    assert code == 2 and "HVF401" in err
    assert run("diff", "-", "-")[0] == 2


def test_sha256_same_for_equivalent_layouts(tmp_path: Path) -> None:
    split = tmp_path / "split.toml"
    split.write_text(
        '[[range]]\naction = "fwd_to_user"\nbase = 0xC2000080\nnr_functions = 0x80\n'
        '[[range]]\naction = "fwd_to_user"\nbase = 0xC2000000\nend = 0xC200007F\n'
        '[[range]]\naction = "handle"\nbase = 0x86000000\nnr_functions = 1\n'
    )
    code, out, _ = run("compile", str(split), "--format", "sha256", "--no-merge")
    assert code == 0 and out == (GOLDEN / "minimal.sha256").read_bytes()


def test_diff_of_a_spec_that_is_not_utf8_is_exit_2(tmp_path: Path) -> None:
    # Decoding with replacement characters used to make it an empty, "different" table.
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'[filter]\nname = "caf\xe9"\n')
    code, out, err = run("diff", str(EXAMPLES / "minimal.toml"), str(bad))
    assert code == 2 and out == b""
    assert f"{bad}:2:12: error HVF001" in err and "not UTF-8" in err


def test_diff_summary_of_one_change_is_singular(tmp_path: Path) -> None:
    other = tmp_path / "other.toml"
    other.write_text('[[range]]\naction = "deny"\nbase = 0xC2000000\nnr_functions = 0x100\n')
    code, out, _ = run("diff", str(EXAMPLES / "minimal.toml"), str(other))
    assert code == 1
    assert out.decode().splitlines()[-1] == (
        "1 range (256 function IDs) changes its effective action"
    )


def test_the_hex_form_reads_back_wherever_a_payload_goes(tmp_path: Path) -> None:
    # compile --format hex was a dead end: "text, not a binary payload", or TOML errors.
    spec = EXAMPLES / "lockdown.toml"
    hexed, binary = tmp_path / "vm.hex", tmp_path / "vm.bin"
    assert run("compile", str(spec), "--format", "hex", "-o", str(hexed))[0] == 0
    assert run("compile", str(spec), "-o", str(binary))[0] == 0
    from_hex, from_bin = run("decompile", str(hexed)), run("decompile", str(binary))
    assert from_hex[0] == 0 and from_hex[1] == from_bin[1]
    code, out, _ = run("diff", str(hexed), str(spec))
    assert code == 0 and b"equivalent" in out
    code, out, _ = run(
        "simulate", "--payload", str(hexed), str(ROOT / "tests" / "traces" / "sample-6.12.txt")
    )
    assert code == 0 and f"Filter: payload {hexed}".encode() in out


@pytest.mark.parametrize(
    "text", [b"abcd\n", b"00" * 24 + b"\n" + b"00" * 23 + b"\n", b"zz" * 24 + b"\n"]
)
def test_text_that_is_not_whole_hex_records_is_no_payload(text: bytes) -> None:
    from hvcfilter.table.payload import from_hex_text

    assert from_hex_text(text) is None
    assert from_hex_text(b"00" * 24 + b"\r\n" + b"AB" * 24) == bytes(24) + b"\xab" * 24


def test_an_empty_payload_decompiles_to_a_table_meant_empty(tmp_path: Path) -> None:
    # A 0-byte spec came out, which check --strict then failed on HVF208.
    (tmp_path / "empty.bin").write_bytes(b"")
    code = run("decompile", str(tmp_path / "empty.bin"), "-o", str(tmp_path / "e.toml"))[0]
    assert code == 0
    assert run("check", "--strict", str(tmp_path / "e.toml"))[0] == 0
    assert run("compile", str(tmp_path / "e.toml"), "-o", str(tmp_path / "e.bin"))[0] == 0
    assert (tmp_path / "e.bin").read_bytes() == b""  # and back, byte for byte
