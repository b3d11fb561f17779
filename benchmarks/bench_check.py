"""Benchmark `hvcfilter check`: start-up on a shipped example, and a 100,000-range spec.

1. Whole process ``hvcfilter check examples/vcpu-hotplug.toml``, median wall
   time, against ``python -c pass`` (the interpreter alone) in the same run.
   Target: at most 150 ms.
2. ``check`` of a generated spec with 100,000 raw ranges, in process, against
   ``tomllib.loads`` of the same text alone. Target (issue 13): at most 1.1x tomllib.

Run: ``python benchmarks/bench_check.py [--repeats N] [--ranges N]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    ROOT,
    Command,
    cached_bytecode,
    hvcfilter_argv,
    ratio,
    time_call,
    time_processes,
)

# Issue 13: check of the 100,000-range spec at most 1.1x a tomllib parse of it.
CHECK_TARGET = 1.1


def generate_spec(count: int) -> str:
    """A valid spec of ``count`` disjoint DENY/FWD ranges in the SiP and OEM space."""
    lines = ['[filter]\nname = "generated"\nkernel = "6.12"\n']
    base = 0x0200_0000
    for i in range(count):
        action = "deny" if i % 3 else "fwd_to_user"
        lines.append(f'[[range]]\naction = "{action}"\nbase = 0x{base:08X}\nnr_functions = 0x10\n')
        base += 0x20  # a gap, so that no two ranges could be merged
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--ranges", type=int, default=100_000)
    args = parser.parse_args()

    example = str(ROOT / "examples" / "vcpu-hotplug.toml")
    python, check = time_processes(
        [
            Command("python -c pass (baseline)", [sys.executable, "-c", "pass"]),
            Command("hvcfilter check examples/vcpu-hotplug.toml", hvcfilter_argv("check", example)),
        ],
        args.repeats,
    )
    with tempfile.TemporaryDirectory() as cache:
        argv, env = cached_bytecode([sys.executable, "-c", "pass"], Path(cache))
        check_argv, check_env = cached_bytecode(
            [sys.executable, "-m", "hvcfilter", "check", example], Path(cache)
        )
        python_c, check_c = time_processes(
            [
                Command("python -c pass (bytecode cached)", argv, env),
                Command("hvcfilter check (bytecode cached)", check_argv, check_env),
            ],
            args.repeats,
        )
    print("1. start-up, whole process")
    print("  ", python.line())
    print("  ", check.line())
    print(f"   check / python -c pass = {ratio(check, python)} (imports compiled from source)")
    print("  ", python_c.line())
    print("  ", check_c.line())
    print(
        f"   check / python -c pass = {ratio(check_c, python_c)} (bytecode cached, as installed);"
        f" target <= 5x: {'ok' if check_c.median <= 5 * python_c.median else 'MISSED'}"
    )
    print(
        f"   check - interpreter: {(check.median - python.median) * 1000:.1f} ms;"
        f" target <= 150 ms total: {'ok' if check.median <= 0.150 else 'MISSED'}"
    )

    from hvcfilter.lint import lint_text

    text = generate_spec(args.ranges)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.toml"
        path.write_text(text)
        repeats = max(3, args.repeats // 3)
        parse = time_call(
            f"tomllib.loads ({args.ranges:,} ranges, baseline)",
            lambda: tomllib.loads(text),
            repeats,
        )
        linted = time_call(
            f"check ({args.ranges:,} ranges)", lambda: lint_text(text, str(path)), repeats
        )
        whole_parse, whole_check = time_processes(
            [
                Command(
                    "python: tomllib.load (whole process)",
                    [
                        sys.executable,
                        "-c",
                        "import sys, tomllib; tomllib.load(open(sys.argv[1], 'rb'))",
                        str(path),
                    ],
                ),
                Command("hvcfilter check (whole process)", hvcfilter_argv("check", str(path))),
            ],
            repeats,
        )
    print(f"2. {args.ranges:,}-range spec ({len(text) / 1e6:.1f} MB)")
    for measured, baseline, where in (
        (linted, parse, "in process"),
        (whole_check, whole_parse, "whole process"),
    ):
        print("  ", baseline.line())
        print("  ", measured.line())
        verdict = "ok" if measured.median <= CHECK_TARGET * baseline.median else "MISSED"
        print(
            f"   {where}: check / tomllib = {ratio(measured, baseline)}; "
            f"target <= {CHECK_TARGET:.2f}x: {verdict}"
        )


if __name__ == "__main__":
    main()
