"""The ``c`` format: a C header with the records as a ``static const`` array and the install code.

The header does not include ``<linux/kvm.h>``: it uses ``struct
kvm_smccc_filter`` as declared by whoever includes it (the uapi header, or a
local definition with the same layout on systems whose headers predate 6.4),
and writes actions as numbers, since the uapi names are enum constants a
macro could not test for. When ``<linux/kvm.h>`` came first (``KVM_SET_DEVICE_ATTR``
is defined), the header also defines ``hvcfilter_install_smccc_filters()``,
which a VMM calls as is: it probes for the filter with ``KVM_HAS_DEVICE_ATTR``,
installs every record with ``KVM_SET_DEVICE_ATTR`` and reports which record
failed with which errno (reference sections 1.3 and 2.1).
"""

from __future__ import annotations

from hvcfilter.emit._text import preamble, provenance
from hvcfilter.table.compiler import CompiledTable
from hvcfilter.utf8 import utf8_document

__all__ = [
    "ARRAY",
    "DIGEST_MACRO",
    "ERROR_STRUCT",
    "GUARD",
    "INSTALL_FUNCTION",
    "LEN_MACRO",
    "emit",
]

GUARD = "HVCFILTER_SMCCC_FILTERS_H"
ARRAY = "hvcfilter_smccc_filters"
LEN_MACRO = "HVCFILTER_SMCCC_FILTERS_LEN"
DIGEST_MACRO = "HVCFILTER_SMCCC_FILTERS_DIGEST"
INSTALL_FUNCTION = "hvcfilter_install_smccc_filters"
ERROR_STRUCT = "hvcfilter_smccc_install_error"
_ACTION_NAMES = ("KVM_SMCCC_FILTER_HANDLE", "KVM_SMCCC_FILTER_DENY", "KVM_SMCCC_FILTER_FWD_TO_USER")


def _comment_text(line: str) -> str:
    # "*/" would end the comment early, "/*" inside one fails -Werror=comment, and
    # "??" could start a trigraph under -std=c11. Splitting "/*" after "*/" cannot
    # make a new "*/": the blank it adds stands before the "*".
    return line.replace("*/", "* /").replace("/*", "/ *").replace("??", "?\\?")


def _block(lines: list[str], indent: str = "") -> list[str]:
    body = [_comment_text(line) for line in lines]
    out = [f"{indent}/* {body[0]}"]
    out += [f"{indent} *{' ' + line if line else ''}" for line in body[1:]]
    out[-1] += " */"
    return out


def emit(table: CompiledTable) -> bytes:
    """The header text, ending in a newline."""
    out = _block(
        [
            *preamble(table),
            "",
            "struct kvm_smccc_filter comes from <linux/kvm.h> (arm64, Linux 6.4 and newer):",
            "include it, or define the struct the same way, before this header. With",
            f"<linux/kvm.h> included first, {INSTALL_FUNCTION}(vm_fd, &err) installs",
            "the table: see its comment below.",
        ]
    )
    out += [
        "",
        f"#ifndef {GUARD}",
        f"#define {GUARD}",
        "",
        f'#define {DIGEST_MACRO} "{table.digest()}"',
        f"#define {LEN_MACRO} {len(table.records)}",
        "",
    ]
    if table.records:
        out.append(f"static const struct kvm_smccc_filter {ARRAY}[{LEN_MACRO}] = {{")
        for index, compiled in enumerate(table.records):
            rec = compiled.record
            out += _block(provenance(index, compiled), "\t")
            out.append(
                f"\t{{ .base = 0x{rec.base:08X}u, .nr_functions = 0x{rec.nr_functions:X}u, "
                f".action = {rec.action} /* {_ACTION_NAMES[rec.action]} */ }},"
            )
        out.append("};")
    else:
        out.append("/* The table is empty: there is nothing to install. */")
    out += ["", *_install_code(bool(table.records)), "", f"#endif /* {GUARD} */", ""]
    return utf8_document("\n".join(out))


def _install_code(has_records: bool) -> list[str]:
    """``hvcfilter_install_smccc_filters()``, compiled only where <linux/kvm.h> is included."""
    loop = (
        [
            f"\tfor (int i = 0; i < {LEN_MACRO}; i++) {{",
            f"\t\tattr.addr = (uint64_t)(uintptr_t)&{ARRAY}[i];",
            "\t\tif (ioctl(vm_fd, KVM_SET_DEVICE_ATTR, &attr) != 0)",
            "\t\t\treturn hvcfilter_smccc_install_failed(err, i);",
            "\t}",
        ]
        if has_records
        else ["\t(void)attr;"]
    )
    probe = (
        [
            "\tif (ioctl(vm_fd, KVM_HAS_DEVICE_ATTR, &attr) != 0)",
            "\t\treturn hvcfilter_smccc_install_failed(err, -1);",
        ]
        if has_records
        else ["\t(void)vm_fd;", "\t(void)err;"]
    )
    return [
        "#ifdef KVM_SET_DEVICE_ATTR",
        "#include <errno.h>",
        "#include <stdint.h>",
        "#include <sys/ioctl.h>",
        "",
        "/* uapi asm/kvm.h (Linux 6.4), missing from older headers. */",
        "#ifndef KVM_ARM_VM_SMCCC_CTRL",
        "#define KVM_ARM_VM_SMCCC_CTRL 0",
        "#endif",
        "#ifndef KVM_ARM_VM_SMCCC_FILTER",
        "#define KVM_ARM_VM_SMCCC_FILTER 0",
        "#endif",
        "",
        f"/* Where {INSTALL_FUNCTION}() failed. */",
        f"struct {ERROR_STRUCT} {{",
        "\tint record; /* the index of the record KVM_SET_DEVICE_ATTR refused; -1: the probe */",
        "\tint error;  /* its errno */",
        "};",
        "",
        f"static inline int hvcfilter_smccc_install_failed(struct {ERROR_STRUCT} *err, int record)",
        "{",
        "\tif (err) {",
        "\t\terr->record = record;",
        "\t\terr->error = errno;",
        "\t}",
        "\treturn -1;",
        "}",
        "",
        *_block(
            [
                "Installs the records in array order on the VM behind vm_fd; call it after",
                "KVM_CREATE_VM and before the first KVM_RUN of any vCPU. KVM_HAS_DEVICE_ATTR",
                "probes for the filter first: a kernel without one (before Linux 6.4) fails it",
                "and err->record is -1. Then one KVM_SET_DEVICE_ATTR per record, which fails",
                "with EEXIST (it meets a reserved range or an earlier record), EINVAL (a",
                "malformed record) or EBUSY (a vCPU has already run). Returns 0 when every",
                "record is installed, else -1 with errno set and, if err is not NULL, the",
                "failed record and errno in *err. The records before a failed one stay",
                "installed and cannot be removed: discard the VM. An empty table installs",
                "nothing and probes nothing.",
            ]
        ),
        f"static inline int {INSTALL_FUNCTION}(int vm_fd, struct {ERROR_STRUCT} *err)",
        "{",
        "\tstruct kvm_device_attr attr = {0};",
        "",
        "\tattr.group = KVM_ARM_VM_SMCCC_CTRL;",
        "\tattr.attr = KVM_ARM_VM_SMCCC_FILTER;",
        *probe,
        *loop,
        "\treturn 0;",
        "}",
        "#endif /* KVM_SET_DEVICE_ATTR */",
    ]
