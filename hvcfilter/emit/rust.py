"""The ``rust`` format: a ``pub const`` array of rust-vmm ``kvm_bindings::kvm_smccc_filter``.

Actions are written as numbers because bindgen names the uapi enum constants
differently across kvm-bindings releases.
"""

from __future__ import annotations

from hvcfilter.emit._text import preamble, provenance
from hvcfilter.table.compiler import CompiledTable

__all__ = ["emit"]

_ACTION_NAMES = ("KVM_SMCCC_FILTER_HANDLE", "KVM_SMCCC_FILTER_DENY", "KVM_SMCCC_FILTER_FWD_TO_USER")


def _grouped(value: int) -> str:
    """``0x8400_0002``: the grouping clippy's ``unreadable_literal`` asks for."""
    digits = f"{value:X}"
    if len(digits) <= 4:
        return f"0x{digits}"
    digits = digits.rjust(8, "0")
    return f"0x{digits[:4]}_{digits[4:]}"


def emit(table: CompiledTable) -> bytes:
    """The Rust source text, ending in a newline."""
    out = [f"//{' ' + line if line else ''}" for line in preamble(table)]
    count = len(table.records)
    out += [
        "",
        "use kvm_bindings::kvm_smccc_filter;",
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
    return "\n".join(out).encode("utf-8")
