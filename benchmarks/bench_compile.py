"""Benchmark `hvcfilter compile` on a generated 100,000-range spec, beside `check` and tomllib.

All in one process, on the same text, median of N runs each:

- ``tomllib.loads`` of the spec text alone (the floor: every command parses it);
- ``check`` (load + every lint check);
- ``compile`` to the binary payload (load + checks + compile + install model + encode);
- ``compile`` to the ``sha256`` digest and to the C header (the heavier formats);
- ``decompile`` of the resulting payload, and ``diff`` of the spec against it.

Ratios are to tomllib and to check measured in the same run, so the figures
mean something on any machine. Run: ``python benchmarks/bench_compile.py
[--repeats N] [--ranges N]``.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import ROOT, ratio, time_call

sys.path.insert(0, str(ROOT))

from hvcfilter.emit import OutputFormat, emit
from hvcfilter.lint import lint_text
from hvcfilter.table import compiler, decompiler, files


def generate_spec(count: int) -> str:
    """``count`` disjoint raw ranges in SiP/OEM space; every third one adjacent to the previous.

    The adjacent same-action pairs give the merger work; the rest have gaps.
    """
    lines = ['[filter]\nname = "generated"\nkernel = "6.12"\n']
    base = 0x0200_0000
    for i in range(count):
        action = "fwd_to_user" if i % 5 == 0 else "deny"
        lines.append(f'[[range]]\naction = "{action}"\nbase = 0x{base:08X}\nnr_functions = 0x10\n')
        base += 0x10 if i % 3 == 0 else 0x20
    return "\n".join(lines)


def _compile(text: str, fmt: OutputFormat) -> bytes:
    result = compiler.compile_text(text, "big.toml")
    if result.table is None:
        raise SystemExit(f"the generated spec does not compile: {result.diagnostics[:3]}")
    return emit(result.table, fmt)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ranges", type=int, default=100_000)
    args = parser.parse_args()

    text = generate_spec(args.ranges)
    data = _compile(text, OutputFormat.BIN)
    n = args.repeats
    label = f"{args.ranges:,} ranges"
    parse = time_call(f"tomllib.loads ({label}, baseline)", lambda: tomllib.loads(text), n)
    check = time_call(f"check ({label})", lambda: lint_text(text, "big.toml"), n)
    binary = time_call(
        f"compile --format bin ({label})", lambda: _compile(text, OutputFormat.BIN), n
    )
    sha = time_call("compile --format sha256", lambda: _compile(text, OutputFormat.SHA256), n)
    header = time_call("compile --format c", lambda: _compile(text, OutputFormat.C), n)
    back = time_call(
        f"decompile ({len(data) // 24:,} records)", lambda: decompiler.decompile(data), n
    )
    diff = time_call(
        "diff spec payload",
        lambda: files.diff_files(("big.toml", text.encode()), ("big.bin", data)),
        n,
    )
    print(f"{label}: {len(text) / 1e6:.1f} MB of TOML, {len(data) // 24:,} records after merging")
    for timing in (parse, check, binary, sha, header, back, diff):
        print("  ", timing.line())
    print(f"   compile(bin) / tomllib = {ratio(binary, parse)}", end="")
    print(f";  compile(bin) / check = {ratio(binary, check)}")
    print(f"   compile(sha256) / check = {ratio(sha, check)}", end="")
    print(f";  compile(c) / check = {ratio(header, check)}")
    print(f"   decompile / tomllib = {ratio(back, parse)};  diff / check = {ratio(diff, check)}")


if __name__ == "__main__":
    main()
