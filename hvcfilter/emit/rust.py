"""The ``rust`` format: rust-vmm ``kvm_bindings::kvm_smccc_filter`` records and the install code.

The records are a ``pub const`` array; :data:`INSTALL_CODE` is
``install_smccc_filters(&vm)``, which a VMM calls as is with anything that
has the VM's fd (``kvm_ioctls::VmFd``, ``std::fs::File``, ``OwnedFd``): it
probes for the filter with ``KVM_HAS_DEVICE_ATTR``, installs every record
with ``KVM_SET_DEVICE_ATTR`` through ``libc::ioctl`` and reports which
record failed with which errno (reference sections 1.3 and 2.1). The crate
needs ``kvm-bindings`` and ``libc``, which every rust-vmm VMM has. Actions
are written as numbers because bindgen names the uapi enum constants
differently across kvm-bindings releases.
"""

from __future__ import annotations

from hvcfilter.emit._text import preamble, provenance
from hvcfilter.table.compiler import CompiledTable
from hvcfilter.utf8 import utf8_document

__all__ = ["INSTALL_CODE", "emit"]

_ACTION_NAMES = ("KVM_SMCCC_FILTER_HANDLE", "KVM_SMCCC_FILTER_DENY", "KVM_SMCCC_FILTER_FWD_TO_USER")


def _grouped(value: int) -> str:
    """``0x8400_0002``: the grouping clippy's ``unreadable_literal`` asks for."""
    digits = f"{value:X}"
    if len(digits) <= 4:
        return f"0x{digits}"
    digits = digits.rjust(8, "0")
    return f"0x{digits[:4]}_{digits[4:]}"


# The same for every table; only SMCCC_FILTERS differs.
INSTALL_CODE = """\
// _IOW(KVMIO, 0xe3 / 0xe1, struct kvm_device_attr) and the filter's attribute
// (uapi linux/kvm.h; asm/kvm.h of Linux 6.4).
const KVM_HAS_DEVICE_ATTR: u64 = 0x4018_AEE3;
const KVM_SET_DEVICE_ATTR: u64 = 0x4018_AEE1;
const KVM_ARM_VM_SMCCC_CTRL: u32 = 0;
const KVM_ARM_VM_SMCCC_FILTER: u64 = 0;

/// Why [`install_smccc_filters`] failed, with the errno the kernel returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmcccFilterError {
    /// `KVM_HAS_DEVICE_ATTR` failed: the kernel has no SMCCC filter (before Linux 6.4).
    Unsupported { errno: i32 },
    /// `KVM_SET_DEVICE_ATTR` refused record `index` of [`SMCCC_FILTERS`]: EEXIST (it meets a
    /// reserved range or an earlier record), EINVAL (malformed) or EBUSY (a vCPU has run).
    /// The records before it stay installed and cannot be removed: discard the VM.
    Record { index: usize, errno: i32 },
}

impl std::fmt::Display for SmcccFilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unsupported { errno } => {
                write!(f, "the kernel has no SMCCC filter (KVM_HAS_DEVICE_ATTR: errno {errno})")
            }
            Self::Record { index, errno } => {
                write!(f, "KVM_SET_DEVICE_ATTR refused SMCCC filter record {index}: errno {errno}")
            }
        }
    }
}

impl std::error::Error for SmcccFilterError {}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn device_attr_ioctl(fd: std::os::fd::RawFd, request: u64, attr: &kvm_device_attr) -> i32 {
    // SAFETY: KVM_HAS_DEVICE_ATTR reads only `attr`; KVM_SET_DEVICE_ATTR reads `attr` and the
    // 24-byte record `attr.addr` points at, one of SMCCC_FILTERS ('static) in the only caller.
    unsafe { libc::ioctl(fd, request as _, attr as *const kvm_device_attr) }
}

/// Installs [`SMCCC_FILTERS`] in order on a VM, after `KVM_CREATE_VM` and before the first
/// `KVM_RUN` of any vCPU; `vm` is anything with the VM's fd (`kvm_ioctls::VmFd` too).
/// An empty table installs nothing and probes nothing.
pub fn install_smccc_filters(vm: &impl std::os::fd::AsRawFd) -> Result<(), SmcccFilterError> {
    let records: &'static [kvm_smccc_filter] = &SMCCC_FILTERS;
    if records.is_empty() {
        return Ok(());
    }
    let fd = vm.as_raw_fd();
    let mut attr = kvm_device_attr {
        flags: 0,
        group: KVM_ARM_VM_SMCCC_CTRL,
        attr: KVM_ARM_VM_SMCCC_FILTER,
        addr: 0,
    };
    if device_attr_ioctl(fd, KVM_HAS_DEVICE_ATTR, &attr) != 0 {
        return Err(SmcccFilterError::Unsupported { errno: last_errno() });
    }
    for (index, record) in records.iter().enumerate() {
        attr.addr = record as *const kvm_smccc_filter as u64;
        if device_attr_ioctl(fd, KVM_SET_DEVICE_ATTR, &attr) != 0 {
            return Err(SmcccFilterError::Record { index, errno: last_errno() });
        }
    }
    Ok(())
}
"""


def emit(table: CompiledTable) -> bytes:
    """The Rust source text, ending in a newline."""
    out = [f"//{' ' + line if line else ''}" for line in preamble(table)]
    count = len(table.records)
    out += [
        "",
        "use kvm_bindings::{kvm_device_attr, kvm_smccc_filter};",
        "",
        "/// Canonical digest of the effective table, for the migration stream.",
        f'pub const SMCCC_FILTERS_DIGEST: &str = "{table.digest()}";',
        "",
        "/// Number of records in [`SMCCC_FILTERS`].",
        f"pub const SMCCC_FILTERS_LEN: usize = {count};",
        "",
        "/// The records in install order: one `KVM_SET_DEVICE_ATTR` call each.",
        "pub const SMCCC_FILTERS: [kvm_smccc_filter; SMCCC_FILTERS_LEN] = [",
    ]
    for index, compiled in enumerate(table.records):
        rec = compiled.record
        out += [f"    // {line}" for line in provenance(index, compiled)]
        out.append(
            f"    kvm_smccc_filter {{ base: {_grouped(rec.base)}, "
            f"nr_functions: {_grouped(rec.nr_functions)}, action: {rec.action}, "
            f"pad: [0; 15] }}, // {_ACTION_NAMES[rec.action]}"
        )
    out += ["];", ""]
    return utf8_document("\n".join(out) + "\n" + INSTALL_CODE)
