"""Unit tests for hvcfilter.emit: every format, and the C and Rust output compiled for real."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from suite_paths import ROOT

from hvcfilter.emit import OutputFormat, emit
from hvcfilter.emit.rust import _grouped
from hvcfilter.table import compiler, payload

EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))

# A comment that tries to break out of C and Rust comments and to form a trigraph line splice.
NASTY = (
    '[filter]\nname = "nasty */ name"\n'
    # A bidi override (gcc's -Wbidi-chars, rustc's text_direction lint) and an ESC.
    'description = "line one\\nline two ??/ \\u202Eevil\\u001B[31m"\n'
    '[[range]]\naction = "deny"\nbase = 0x86000000\nnr_functions = 0x10\n'
    'comment = "ends */ here ??/, see /* below, /*/ and */*"\n'
    '[[range]]\naction = "handle"\nbase = 0x86000010\nnr_functions = 1\n'
    '[[range]]\naction = "fwd_to_user"\nfunction = "PSCI_CPU_ON_64"\n'
)
EMPTY = '[filter]\nname = "empty"\n'

C_MAIN = """\
#include <stdint.h>
#include <string.h>
struct kvm_smccc_filter {
\tuint32_t base;
\tuint32_t nr_functions;
\tuint8_t action;
\tuint8_t pad[15];
};
_Static_assert(sizeof(struct kvm_smccc_filter) == 24, "uapi layout");
#include "filters.h"
#include "filters.h" /* the include guard must make a second include harmless */
unsigned long use(void)
{
\tunsigned long sum = strlen(HVCFILTER_SMCCC_FILTERS_DIGEST);
#if HVCFILTER_SMCCC_FILTERS_LEN > 0
\tfor (unsigned i = 0; i < HVCFILTER_SMCCC_FILTERS_LEN; i++)
\t\tsum += hvcfilter_smccc_filters[i].base + hvcfilter_smccc_filters[i].action;
#endif
\treturn sum;
}
"""

# The items the Rust output uses, declared as kvm-bindings 0.14 (bindgen) and libc 0.2
# (glibc: a variadic ioctl with an unsigned long request) declare them.
RUST_LIB = """\
#[allow(non_camel_case_types)]
pub mod kvm_bindings {
    #[repr(C)]
    #[derive(Debug, Default, Copy, Clone, PartialEq, Eq)]
    pub struct kvm_smccc_filter {
        pub base: u32,
        pub nr_functions: u32,
        pub action: u8,
        pub pad: [u8; 15],
    }
    #[repr(C)]
    #[derive(Debug, Default, Copy, Clone, PartialEq, Eq)]
    pub struct kvm_device_attr {
        pub flags: u32,
        pub group: u32,
        pub attr: u64,
        pub addr: u64,
    }
}
#[allow(non_camel_case_types)]
pub mod libc {
    pub type c_int = i32;
    pub type Ioctl = core::ffi::c_ulong;
    extern "C" {
        pub fn ioctl(fd: c_int, request: Ioctl, ...) -> c_int;
    }
}
include!("filters.rs");
const _: () = assert!(core::mem::size_of::<kvm_bindings::kvm_smccc_filter>() == 24);
pub fn first_base() -> Option<u32> {
    SMCCC_FILTERS.first().map(|f| f.base + SMCCC_FILTERS_DIGEST.len() as u32 * 0)
}
"""


def table_of(text: str) -> compiler.CompiledTable:
    result = compiler.compile_text(text, "nasty.toml")
    assert result.table is not None, result.diagnostics
    return result.table


def tables() -> list[tuple[str, compiler.CompiledTable]]:
    found = [(p.stem, compiler.compile_file(p).table) for p in EXAMPLES]
    found += [("nasty", table_of(NASTY)), ("empty", table_of(EMPTY))]
    return [(name, t) for name, t in found if t is not None]


def test_every_format_is_emitted_and_deterministic() -> None:
    table = table_of(NASTY)
    for fmt in OutputFormat:
        first = emit(table, fmt)
        assert first and first == emit(table_of(NASTY), fmt), fmt
        assert fmt.is_binary is (fmt is OutputFormat.BIN)


def test_bin_and_hex_agree() -> None:
    table = table_of(NASTY)
    data = emit(table, OutputFormat.BIN)
    hex_lines = emit(table, OutputFormat.HEX).decode().splitlines()
    assert bytes.fromhex("".join(hex_lines)) == data
    assert all(len(line) == 48 for line in hex_lines)
    assert payload.decode(emit(table, OutputFormat.BIN, byte_order="big"), "big") == payload.decode(
        data
    )


def test_json_document() -> None:
    document = json.loads(emit(table_of(NASTY), OutputFormat.JSON))
    assert document["format"] == "hvcfilter-records-v1"
    first = document["records"][0]
    assert (first["base"], first["nr_functions"], first["action"]) == (0x86000000, 0x10, "deny")
    assert first["sources"] == [
        {
            "entry": 0,
            "label": "range[0] base = 0x86000000, nr_functions = 0x10",
            "comment": "ends */ here ??/, see /* below, /*/ and */*",
        }
    ]
    assert document["digest"].startswith("sha256:")


def test_sha256_format() -> None:
    text = emit(table_of(NASTY), OutputFormat.SHA256).decode()
    assert text.startswith("sha256:") and len(text) == len("sha256:") + 64 + 1


def test_c_comments_cannot_be_broken_out_of() -> None:
    text = emit(table_of(NASTY), OutputFormat.C).decode()
    body = text.replace("/*", "").replace("*/", "")
    # Every "*/" that remains in the text closes a comment we opened.
    assert text.count("/*") == text.count("*/")
    assert "??/" not in text
    assert "nasty * / name" in body
    # A "/*" inside a comment fails gcc's -Werror=comment; split, it is plain text.
    assert "see / * below, / * / and * / *" in body


@pytest.mark.parametrize("fmt", [OutputFormat.C, OutputFormat.RUST])
def test_sources_hold_only_printable_text_whatever_the_names(fmt: OutputFormat) -> None:
    # A newline in the spec's file name used to end Rust's `//` comment: code injection.
    table = table_of(NASTY)._replace(spec_path="a\npub fn evil() {}\n\u202e.toml")
    text = emit(table, fmt).decode()
    assert all(c.isprintable() or c in "\n\t" for c in text)
    assert "<U+202E>evil<U+001B>[31m" in text
    assert not any(line.startswith("pub fn evil") for line in text.splitlines())
    assert "from a pub fn evil() {} <U+202E>.toml; do not edit." in text


def test_rust_literals() -> None:
    assert _grouped(0x20) == "0x20"
    assert _grouped(0x84000002) == "0x8400_0002"
    assert _grouped(0x100000) == "0x0010_0000"


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
@pytest.mark.parametrize(("name", "table"), tables(), ids=[n for n, _ in tables()])
@pytest.mark.parametrize("with_kvm_h", [False, True], ids=["table-only", "with-install-code"])
def test_c_header_compiles(
    tmp_path: Path, name: str, table: compiler.CompiledTable, with_kvm_h: bool
) -> None:
    (tmp_path / "filters.h").write_bytes(emit(table, OutputFormat.C))
    # With <linux/kvm.h> first, the header also defines the install function.
    main = C_MAIN.replace("#include <stdint.h>", "#include <linux/kvm.h>\n#include <stdint.h>")
    if with_kvm_h:
        main += "int install(int fd) { return hvcfilter_install_smccc_filters(fd, 0); }\n"
    (tmp_path / "main.c").write_text(main if with_kvm_h else C_MAIN)
    run = subprocess.run(
        [
            "gcc",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-std=c11",
            "-c",
            "main.c",
            "-o",
            "main.o",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr


@pytest.mark.skipif(shutil.which("rustc") is None, reason="rustc is not installed")
@pytest.mark.parametrize(("name", "table"), tables(), ids=[n for n, _ in tables()])
def test_rust_source_compiles(tmp_path: Path, name: str, table: compiler.CompiledTable) -> None:
    (tmp_path / "filters.rs").write_bytes(emit(table, OutputFormat.RUST))
    (tmp_path / "lib.rs").write_text(RUST_LIB)
    run = subprocess.run(
        [
            "rustc",
            "--edition",
            "2021",
            "--crate-type",
            "lib",
            "-D",
            "warnings",
            "--out-dir",
            ".",
            "lib.rs",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
