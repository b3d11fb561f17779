"""The install code the C and Rust emitters write, run against a scripted ``ioctl``.

Each test builds a small program from the emitted source and a fake ``ioctl``
that logs every call (fd, request, group, attr and which record ``addr``
points at) and fails the call the test names with the errno it names. That
proves what a VMM gets: the probe first, the records in array order, a stop
at the first refusal with the right record index and errno, and nothing at
all for an empty table. Compiling for aarch64 and running on real kernels is
in ``tests/lab/test_emitted_install.py``.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
from pathlib import Path

import pytest

from hvcfilter.emit import OutputFormat, emit
from hvcfilter.table import compiler

KVM_HAS_DEVICE_ATTR = 0x4018_AEE3
KVM_SET_DEVICE_ATTR = 0x4018_AEE1

THREE = """\
[[range]]
action = "deny"
base = 0x82000000
nr_functions = 0x10000
[[range]]
action = "fwd_to_user"
function = "PSCI_CPU_ON_64"
[[range]]
action = "deny"
owner = "oem"
call = "fast"
convention = "smc64"
"""
EMPTY = '[filter]\nname = "empty"\n'

# The fake ioctl: FAIL_AT is the call (0 = the probe) to fail with FAIL_ERRNO, -1 for none.
C_PROGRAM = """\
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
struct kvm_smccc_filter { uint32_t base; uint32_t nr_functions; uint8_t action; uint8_t pad[15]; };
#include "filters.h"

static int calls, fail_at = -1, fail_errno;

int ioctl(int fd, unsigned long request, ...)
{
\tva_list ap;
\tva_start(ap, request);
\tstruct kvm_device_attr *attr = va_arg(ap, struct kvm_device_attr *);
\tva_end(ap);
\tlong record = -1;
#if HVCFILTER_SMCCC_FILTERS_LEN > 0
\tif (attr->addr)
\t\trecord = (long)((const struct kvm_smccc_filter *)(uintptr_t)attr->addr
\t\t\t\t- hvcfilter_smccc_filters);
#endif
\tprintf("call %d fd %d req %#lx group %u attr %llu record %ld\\n", calls, fd, request,
\t       attr->group, (unsigned long long)attr->attr, record);
\tif (calls++ == fail_at) {
\t\terrno = fail_errno;
\t\treturn -1;
\t}
\treturn 0;
}

int main(int argc, char **argv)
{
\tstruct hvcfilter_smccc_install_error err = {-7, -7};
\tif (argc == 3) {
\t\tfail_at = atoi(argv[1]);
\t\tfail_errno = atoi(argv[2]);
\t}
\tint rc = hvcfilter_install_smccc_filters(42, &err);
\tprintf("rc %d record %d error %d\\n", rc, err.record, err.error);
\treturn 0;
}
"""

RUST_PROGRAM = """\
#![allow(non_camel_case_types, dead_code)]
pub mod kvm_bindings {
    #[repr(C)]
    #[derive(Debug, Default, Copy, Clone)]
    pub struct kvm_smccc_filter {
        pub base: u32, pub nr_functions: u32, pub action: u8, pub pad: [u8; 15],
    }
    #[repr(C)]
    #[derive(Debug, Default, Copy, Clone)]
    pub struct kvm_device_attr { pub flags: u32, pub group: u32, pub attr: u64, pub addr: u64 }
}
pub mod libc {
    use std::cell::Cell;
    thread_local! {
        pub static CALLS: Cell<i32> = const { Cell::new(0) };
        pub static FAIL: Cell<(i32, i32)> = const { Cell::new((-1, 0)) };
    }
    extern "C" { fn __errno_location() -> *mut i32; }
    pub unsafe fn ioctl(
        fd: i32, request: u64, attr: *const crate::kvm_bindings::kvm_device_attr,
    ) -> i32 {
        let attr = &*attr;
        let record = if attr.addr == 0 { -1 } else {
            ((attr.addr as usize - crate::SMCCC_FILTERS.as_ptr() as usize) / 24) as i64
        };
        let call = CALLS.with(|c| { let n = c.get(); c.set(n + 1); n });
        let (group, which) = (attr.group, attr.attr);
        println!("call {call} fd {fd} req {request:#x} group {group} attr {which} record {record}");
        let (at, errno) = FAIL.with(|f| f.get());
        if call == at { *__errno_location() = errno; return -1; }
        0
    }
}
include!("filters.rs");
struct Fd(i32);
impl std::os::fd::AsRawFd for Fd { fn as_raw_fd(&self) -> i32 { self.0 } }
fn main() {
    let args: Vec<i32> = std::env::args().skip(1).map(|a| a.parse().unwrap()).collect();
    if args.len() == 2 { libc::FAIL.with(|f| f.set((args[0], args[1]))); }
    match install_smccc_filters(&Fd(42)) {
        Ok(()) => println!("ok"),
        Err(e) => println!("{e:?} / {e}"),
    }
}
"""


def _table(text: str) -> compiler.CompiledTable:
    result = compiler.compile_text(text, "t.toml")
    assert result.table is not None, result.diagnostics
    return result.table


def _build(tmp_path: Path, fmt: OutputFormat, text: str) -> Path:
    source = "filters.h" if fmt is OutputFormat.C else "filters.rs"
    (tmp_path / source).write_bytes(emit(_table(text), fmt))
    if fmt is OutputFormat.C:
        (tmp_path / "main.c").write_text(C_PROGRAM)
        cmd = ["gcc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "main.c", "-o", "prog"]
    else:
        (tmp_path / "main.rs").write_text(RUST_PROGRAM)
        cmd = ["rustc", "--edition", "2021", "-D", "warnings", "main.rs", "-o", "prog"]
    run = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    return tmp_path / "prog"


def _run(prog: Path, *fail: int) -> list[str]:
    out = subprocess.run([str(prog), *map(str, fail)], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def _calls(lines: list[str]) -> list[tuple[str, str]]:
    """(request, record) of every logged ioctl; fd, group and attr are checked on the way."""
    found = []
    for line in lines:
        if line.startswith("call"):
            words = line.split()
            assert words[3] == "42" and words[7] == "0" and words[9] == "0", line
            found.append((words[5], words[11]))
    return found


TOOLS = [
    pytest.param(OutputFormat.C, id="c"),
    pytest.param(OutputFormat.RUST, id="rust"),
]


def _need(fmt: OutputFormat) -> None:
    tool = "gcc" if fmt is OutputFormat.C else "rustc"
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed: the emitted {fmt.value} install code needs it")


@pytest.mark.parametrize("fmt", TOOLS)
def test_probe_then_every_record_in_order(tmp_path: Path, fmt: OutputFormat) -> None:
    _need(fmt)
    lines = _run(_build(tmp_path, fmt, THREE))
    assert _calls(lines) == [
        (hex(KVM_HAS_DEVICE_ATTR), "-1"),
        (hex(KVM_SET_DEVICE_ATTR), "0"),
        (hex(KVM_SET_DEVICE_ATTR), "1"),
        (hex(KVM_SET_DEVICE_ATTR), "2"),
    ]
    assert lines[-1] in ("rc 0 record -7 error -7", "ok")


@pytest.mark.parametrize("fmt", TOOLS)
def test_a_refused_record_stops_the_install_and_is_named(tmp_path: Path, fmt: OutputFormat) -> None:
    _need(fmt)
    lines = _run(_build(tmp_path, fmt, THREE), 2, errno.EEXIST)  # the second record
    assert [record for _, record in _calls(lines)] == ["-1", "0", "1"]
    if fmt is OutputFormat.C:
        assert lines[-1] == f"rc -1 record 1 error {errno.EEXIST}"
    else:
        assert lines[-1].startswith(f"Record {{ index: 1, errno: {errno.EEXIST} }} / ")
        assert "record 1" in lines[-1]


@pytest.mark.parametrize("fmt", TOOLS)
def test_a_kernel_without_the_filter_fails_the_probe(tmp_path: Path, fmt: OutputFormat) -> None:
    _need(fmt)
    lines = _run(_build(tmp_path, fmt, THREE), 0, errno.ENXIO)
    assert _calls(lines) == [(hex(KVM_HAS_DEVICE_ATTR), "-1")]
    expected = f"rc -1 record -1 error {errno.ENXIO}"
    if fmt is OutputFormat.RUST:
        expected = f"Unsupported {{ errno: {errno.ENXIO} }}"
    assert lines[-1].startswith(expected)


@pytest.mark.parametrize("fmt", TOOLS)
def test_an_empty_table_installs_and_probes_nothing(tmp_path: Path, fmt: OutputFormat) -> None:
    _need(fmt)
    lines = _run(_build(tmp_path, fmt, EMPTY), 0, errno.ENXIO)
    assert _calls(lines) == []
    assert lines[-1] in ("rc 0 record -7 error -7", "ok")
