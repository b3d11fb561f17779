"""The ``c`` format: a self-contained C header with the records as a ``static const`` array.

The header does not include ``<linux/kvm.h>``: it uses ``struct
kvm_smccc_filter`` as declared by whoever includes it (the uapi header, or a
local definition with the same layout on systems whose headers predate 6.4),
and writes actions as numbers, since the uapi names are enum constants a
macro could not test for.
"""

from __future__ import annotations

from hvcfilter.emit._text import preamble, provenance
from hvcfilter.table.compiler import CompiledTable

__all__ = ["ARRAY", "DIGEST_MACRO", "GUARD", "LEN_MACRO", "emit"]

GUARD = "HVCFILTER_SMCCC_FILTERS_H"
ARRAY = "hvcfilter_smccc_filters"
LEN_MACRO = "HVCFILTER_SMCCC_FILTERS_LEN"
DIGEST_MACRO = "HVCFILTER_SMCCC_FILTERS_DIGEST"
_ACTION_NAMES = ("KVM_SMCCC_FILTER_HANDLE", "KVM_SMCCC_FILTER_DENY", "KVM_SMCCC_FILTER_FWD_TO_USER")


def _comment_text(line: str) -> str:
    # "*/" would end the comment early; "??" could start a trigraph under -std=c11.
    return line.replace("*/", "* /").replace("??", "?\\?")


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
            "include it, or define the struct the same way, before this header.",
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
    out += ["", f"#endif /* {GUARD} */", ""]
    return "\n".join(out).encode("utf-8")
