"""Benchmark ``hvcfilter learn`` against ``simulate`` on the 2,000,000-event trace, and merging.

Generates the trace of ``bench_simulate.py`` (same generator, same seed),
then alternates ``hvcfilter simulate --format json`` (the baseline) and
``hvcfilter learn -o FILE`` as child processes, and prints their medians,
the ratio (target: learn at most 1.5x simulate) and learn's peak RSS (flat
memory: about simulate's). Then writes 10,000 tallies of 50 function IDs
each and times ``hvcfilter learn --tally`` over all of them (target: under
10 s). Last, one tally of 4,000 and one of 16,000 scattered IDs: learning from
four times the IDs should take about four times as long, or less (it took 9
times, 16 s for 16,000 IDs on the benchmark machine, while the derivation was
quadratic; 1.7 s now). The same pair runs again on a copy of the trace in
which the VMM forwarded the calls to two IDs, a fifth of all (each
``kvm_hvc_arm64`` followed by a ``kvm_userspace_exit`` with
``KVM_EXIT_HYPERCALL``): learn finds those with a pass of its own, which
read every line (6.2 s against 0.9 s for simulate, one HVC in 20 forwarded)
until it read back from the exits alone. Run:
``.venv/bin/python benchmarks/bench_learn.py``.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import tempfile
from pathlib import Path

from _harness import Command, hvcfilter_argv, ratio, time_process, time_processes
from bench_simulate import _SPEC, generate

from hvcfilter.learn import Tally, dumps
from hvcfilter.learn.tally import CallCount, TallyKey


def _write_tallies(folder: Path, count: int, ids: int) -> list[str]:
    rng = random.Random(7)
    pool = [0x8400_0000 + i for i in range(0x20)] + [0xC200_0000 + i for i in range(400)]
    paths = []
    for i in range(count):
        calls: dict[TallyKey, CallCount] = {
            (fid, "hvc", "kernel"): CallCount(rng.randrange(1, 1000), 1)
            for fid in rng.sample(pool, ids)
        }
        path = folder / f"host{i:05d}.json"
        path.write_text(dumps(Tally("7.2", (f"host{i:05d}/trace.txt",), calls)))
        paths.append(str(path))
    return paths


def main() -> None:
    """Generate, run, print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tallies", type=int, default=10_000)
    args = parser.parse_args()
    # The baseline reads the trace every time, as learn does: no tally kept between runs.
    os.environ["HVCFILTER_CACHE_DIR"] = ""
    with tempfile.TemporaryDirectory(prefix="hvcfilter-bench-") as tmp:
        work = Path(tmp)
        trace = work / "trace.txt"
        generate(trace, args.events)
        spec = work / "spec.toml"
        spec.write_text(_SPEC)
        print(f"trace: {args.events:,} events, {trace.stat().st_size / 1e6:.1f} MB")
        # Relearning one capture with other flags: the tally a first run kept.
        learn_argv = hvcfilter_argv("learn", str(trace), "-o", str(work / "learned.toml"))
        kept_env = {**os.environ, "HVCFILTER_CACHE_DIR": str(work / "tally-cache")}
        run_kept = subprocess.run(learn_argv, env=kept_env, capture_output=True, check=False)
        if run_kept.returncode != 0:
            raise SystemExit(f"learn failed: {run_kept.stderr.decode(errors='replace')}")
        sim, learn, kept = time_processes(
            [
                Command(
                    "simulate --format json",
                    hvcfilter_argv("simulate", "--format", "json", "--spec", str(spec), str(trace)),
                    ok_codes=(0, 1),
                ),
                Command("learn -o FILE", learn_argv),
                Command("learn -o FILE, tally kept", learn_argv, env=kept_env),
            ],
            args.repeats,
        )
        print(sim.line())
        print(learn.line())
        print(f"ratio learn/simulate: {ratio(learn, sim)} (target <= 1.5x)")
        print(kept.line())
        print(f"ratio learn again/learn: {ratio(kept, learn)} (the tally kept by a first run)")
        forwarded = work / "forwarded.txt"
        count = _with_forwards(trace, forwarded)
        print(f"trace with {count:,} forwarded HVCs: {forwarded.stat().st_size / 1e6:.1f} MB")
        fsim, flearn = time_processes(
            [
                Command(
                    "simulate --format json (forwards)",
                    hvcfilter_argv(
                        "simulate", "--format", "json", "--spec", str(spec), str(forwarded)
                    ),
                    ok_codes=(0, 1),
                ),
                Command(
                    "learn -o FILE (forwards)",
                    hvcfilter_argv("learn", str(forwarded), "-o", str(work / "learned-f.toml")),
                ),
            ],
            args.repeats,
        )
        print(fsim.line())
        print(flearn.line())
        print(f"ratio learn/simulate with forwards: {ratio(flearn, fsim)} (target <= 1.5x)")
        forwarded.unlink()
        folder = work / "tallies"
        folder.mkdir()
        _write_tallies(folder, args.tallies, 50)
        merge = time_process(
            f"learn --tally ({args.tallies:,} tallies of 50 IDs)",
            hvcfilter_argv("learn", "--tally", str(folder), "-o", str(work / "fleet.toml")),
            max(1, args.repeats // 2),
        )
        print(merge.line())
        print(f"merge median: {merge.median:.2f} s (target < 10 s)")
        wide = [_wide_tally(work, n) for n in (4_000, 16_000)]
        small, big = (
            time_process(
                f"learn --tally (one tally of {n:,} scattered IDs)",
                hvcfilter_argv("learn", "--tally", path, "-o", str(work / f"wide{n}.toml")),
                max(1, args.repeats // 2),
            )
            for n, path in zip((4_000, 16_000), wide, strict=True)
        )
        print(small.line())
        print(big.line())
        print(f"ratio 16,000/4,000 IDs: {ratio(big, small)} (linear: about 4x or less)")


# The VMM implements these two (a vendor service and an OEM call): every call to
# them is forwarded, so that no ID is forwarded only sometimes (learn notes those).
_FORWARDED = (b"r0: 0x0000000086000000", b"r0: 0x00000000c2000005")


def _with_forwards(trace: Path, out: Path) -> int:
    """Copy ``trace``, each HVC to a _FORWARDED ID followed by its exit to the VMM."""
    count = 0
    with trace.open("rb") as source, out.open("wb") as sink:
        for line in source:
            sink.write(line)
            if b"kvm_hvc_arm64" in line and any(fid in line for fid in _FORWARDED):
                head = line.split(b"kvm_hvc_arm64")[0]
                sink.write(head + b"kvm_userspace_exit: reason KVM_EXIT_HYPERCALL (3)\n")
                count += 1
    return count


def _wide_tally(folder: Path, ids: int) -> str:
    """A tally of ``ids`` distinct IDs spread over the space: as many learned spans."""
    rng = random.Random(ids)
    fids = rng.sample(range(0xC200_0000, 0xC300_0000), ids)
    calls: dict[TallyKey, CallCount] = {(f, "hvc", "kernel"): CallCount(1, 1) for f in fids}
    path = folder / f"wide{ids}.json"
    path.write_text(dumps(Tally("7.2", ("fleet/trace.txt",), calls)))
    return str(path)


if __name__ == "__main__":
    main()
