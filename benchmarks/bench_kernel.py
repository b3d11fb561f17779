"""Benchmark of hvcfilter.kernel call classification against a linear-scan baseline.

Classifies one million calls, drawn from a trace-like mix (a few hot IDs such as
PSCI and SMCCC_VERSION, a tail of vendor and SiP calls, 5% random IDs), against
a 1,000-range filter table, through the batch interfaces ``KvmVm.tally`` and
``KvmVm.call_batch``, through uncached O(log n) lookups, and through
``KvmVm.call`` one call at a time. The baseline classifies with a linear scan
over the ranges per call, as a naive emulator would; it is measured on a
20,000-call slice of the same mix (a full million would take minutes) and
reported as a rate. Every figure is the median of several repeats, each on a
fresh VM so that building the per-VM cache is part of the measured time.

Run: ``python benchmarks/bench_kernel.py [--calls N] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hvcfilter.kernel import CallKey, Conduit, KvmVm

U32 = 0xFFFF_FFFF
RESERVED = ((0x8000_0000, 0x8000_FFFF), (0xC000_0000, 0xC000_FFFF))
HOT = [
    (0x8400_0000, 20),
    (0xC400_0003, 10),
    (0x8400_0002, 8),
    (0xC400_0001, 15),
    (0x8000_0000, 10),
    (0x8000_0001, 5),
    (0x8600_0000, 3),
    (0x8600_0001, 6),
    (0xC500_0021, 2),
    (0x8400_0050, 1),
    (0xC400_0053, 2),
    (0x8400_0008, 1),
]


def build_table(rng: random.Random, n: int) -> list[tuple[int, int, int]]:
    """``n`` disjoint ranges (base, nr, action) outside the reserved ranges."""
    table: list[tuple[int, int, int]] = []
    used: list[tuple[int, int]] = list(RESERVED)
    while len(table) < n:
        base = rng.randrange(0, U32 - 0x1000)
        nr = rng.choice([1, 1, 2, 0x10, 0x20, 0x100, 0x1000])
        last = base + nr - 1
        if any(a <= last and base <= b for a, b in used):
            continue
        used.append((base, last))
        table.append((base, nr, rng.choice([0, 1, 1, 2])))
    return table


def build_calls(rng: random.Random, table: list[tuple[int, int, int]], n: int) -> list[CallKey]:
    ids = [fid for fid, _ in HOT]
    weights = [float(w) for _, w in HOT]
    # SiP/vendor tail inside the table, so lookups hit ranges too.
    tail = [base + rng.randrange(nr) for base, nr, _ in rng.sample(table, 150)]
    ids += tail
    weights += [0.1] * len(tail)
    calls: list[CallKey] = []
    picks = rng.choices(ids, weights, k=n)
    for pick in picks:
        fid = rng.randrange(0, U32 + 1) if rng.random() < 0.05 else pick
        conduit: Conduit = "smc" if rng.random() < 0.1 else "hvc"
        calls.append((fid, conduit, 0, "a64"))
    return calls


def fresh_vm(table: list[tuple[int, int, int]]) -> KvmVm:
    vm = KvmVm("6.12")
    for base, nr, action in table:
        if vm.set_filter(base, nr, action):
            raise SystemExit(f"table install failed at {base:#x}")
    return vm


def linear_classify(table: list[tuple[int, int, int]], calls: list[CallKey]) -> list[str]:
    """The baseline: scan every range for every call, then the same coarse decision."""
    ranges = [(b, b + n - 1, a) for b, n, a in table] + [(a, b, 0) for a, b in RESERVED]
    out = []
    for x0, _conduit, _imm, _mode in calls:
        fid = x0 & U32
        action = 0
        for first, last, act in ranges:
            if first <= fid <= last:
                action = act
                break
        out.append(("handle", "deny", "fwd")[action])
    return out


def timed(fn: Callable[[], object], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--ranges", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline-calls", type=int, default=20_000)
    args = parser.parse_args()
    rng = random.Random(20240601)
    table = build_table(rng, args.ranges)
    calls = build_calls(rng, table, args.calls)
    base_slice = calls[: args.baseline_calls]
    fids = [x0 & U32 for x0, *_ in calls]
    print(
        f"{args.calls:,} calls, {len(set(calls)):,} distinct; {args.ranges:,} ranges; "
        f"median of {args.repeats}"
    )

    def run_tally() -> None:
        fresh_vm(table).tally(calls)

    def run_batch() -> None:
        fresh_vm(table).call_batch(calls)

    def run_lookup() -> None:
        vm = fresh_vm(table)
        lookup = vm.lookup
        for fid in fids:
            lookup(fid)

    def run_single() -> None:
        vm = fresh_vm(table)
        call = vm.call
        for x0, conduit, imm, mode in calls:
            call(x0, conduit=conduit, imm=imm, mode=mode)

    setup = timed(lambda: fresh_vm(table), args.repeats)
    rows = [
        ("tally (batch, Counter)", timed(run_tally, args.repeats), args.calls),
        ("call_batch (batch, list)", timed(run_batch, args.repeats), args.calls),
        ("lookup, uncached bisect", timed(run_lookup, args.repeats), args.calls),
        ("call, one at a time", timed(run_single, args.repeats), args.calls),
        (
            "baseline: linear scan",
            timed(lambda: linear_classify(table, base_slice), args.repeats),
            len(base_slice),
        ),
    ]
    baseline_rate = rows[-1][2] / rows[-1][1]
    print(f"VM setup with {args.ranges} installs: {setup * 1e3:.1f} ms (included below)")
    print(f"{'path':28} {'seconds':>9} {'calls/s':>14} {'x baseline':>11}")
    for name, seconds, n in rows:
        rate = n / seconds
        print(f"{name:28} {seconds:9.3f} {rate:14,.0f} {rate / baseline_rate:11.1f}")


if __name__ == "__main__":
    main()
