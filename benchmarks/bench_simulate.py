"""Benchmark ``hvcfilter simulate --format json`` on a 2,000,000-event ftrace file.

Generates the trace (current 6.12 format: kvm_exit, kvm_hvc_arm64, kvm_entry,
kvm_userspace_exit, four vCPU threads, ten function IDs, SMC traps) and a
spec in a temporary directory, then alternates ``grep -c kvm_hvc_arm64`` and
``python -m hvcfilter simulate --format json`` as subprocesses on the same
file, and prints the median wall times, their ratio (target: at most 3) and
the peak RSS of the simulate process tree (target: at most 100 MB), measured
with ``os.wait4``. With google-re2 installed (the ``fast`` extra) it also
times simulate with ``re2`` hidden, so that the pure-Python line proof is
measured in the same run, and the count-only prototype of issue 13
(``count_only.py``: no line proof, no skipped lines, no emulator), to show
how far simulate is from counting alone, and the RE2 line proof alone
(``proof_only.py``), the part of simulate no counting scheme can drop.
Every timed run reads the trace (``HVCFILTER_CACHE_DIR=""``), except one
more case: simulate again with the tally kept by a first run, as when a
spec is edited against one capture.
Run: ``.venv/bin/python benchmarks/bench_simulate.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import cached_bytecode

_IDS = (
    0x8000_0000,
    0x8400_0000,
    0xC400_0003,
    0x8600_0000,
    0xC200_0005,
    0x1234_5678,
    0x8400_0050,
    0xC500_0021,
    0x8600_FF01,
    0xC200_0010,
)
_SPEC = """\
[filter]
kernel = "6.12"

[[range]]
base = 0x84000000
nr_functions = 1
action = "deny"

[[range]]
base = 0xC2000000
nr_functions = 0x100
action = "fwd_to_user"
"""
_HEADER = """\
# tracer: nop
#
# entries-in-buffer/entries-written: {n}/{n}   #P:4
#
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
"""


def generate(path: Path, events: int, seed: int = 1) -> int:
    """Write an ftrace file with exactly ``events`` event lines; returns the HVC count."""
    rng = random.Random(seed)
    written = hvcs = 0
    ts = 2.0
    with path.open("w") as out:
        out.write(_HEADER.format(n=events))
        batch: list[str] = []
        while written < events:
            pid = 138 + rng.randrange(4)
            pc = 0x4000_0000 + rng.randrange(0x10000) * 4
            head = f"    smccc_oracle-{pid:<7d} [{pid - 138:03d}] "
            stamp = f"{ts:12.6f}: "
            kind = rng.random()
            if kind < 0.5:
                fid = rng.choice(_IDS)
                group = [
                    f"{head}..... {stamp}kvm_exit: TRAP: HSR_EC: 0x0016 (HVC64), PC: 0x{pc:016x}",
                    f"{head}..... {stamp}kvm_hvc_arm64: HVC at 0x{pc:016x} "
                    f"(r0: 0x{fid:016x}, imm: 0x0)",
                    f"{head}d.... {stamp}kvm_entry: PC: 0x{pc:016x}",
                ]
            elif kind < 0.6:
                group = [
                    f"{head}..... {stamp}kvm_exit: TRAP: HSR_EC: 0x0017 (SMC64), PC: 0x{pc:016x}",
                    f"{head}d.... {stamp}kvm_entry: PC: 0x{pc:016x}",
                ]
            else:
                group = [
                    f"{head}..... {stamp}kvm_exit: TRAP: HSR_EC: 0x0024 (DABT_LOW), "
                    f"PC: 0x{pc:016x}",
                    f"{head}..... {stamp}kvm_userspace_exit: reason KVM_EXIT_MMIO (6)",
                    f"{head}d.... {stamp}kvm_entry: PC: 0x{pc:016x}",
                ]
            group = group[: events - written]
            hvcs += sum("kvm_hvc_arm64" in line for line in group)
            written += len(group)
            batch.extend(group)
            ts += 0.000013
            if len(batch) >= 30000:
                out.write("\n".join(batch) + "\n")
                batch.clear()
        if batch:
            out.write("\n".join(batch) + "\n")
    return hvcs


def _timed(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[float, int, bytes]:
    """Wall time, peak RSS in KB (the process and its reaped children) and stdout."""
    with tempfile.TemporaryFile() as sink:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=sink, stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        sink.seek(0)
        output = sink.read()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{argv[0]} failed with exit code {proc.returncode}")
    return elapsed, usage.ru_maxrss, output


def main() -> None:
    """Generate, run, print medians, the ratio and the peak RSS."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    grep = shutil.which("grep")
    if grep is None:
        raise SystemExit("grep is needed as the baseline")
    repo = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="hvcfilter-bench-") as tmp:
        work = Path(tmp)
        trace = work / "trace.txt"
        generate(trace, args.events)
        (work / "hvcfilter.toml").write_text(_SPEC)
        size = trace.stat().st_size
        print(f"trace: {args.events:,} events, {size / 1e6:.1f} MB")
        env_python = [sys.executable, "-m", "hvcfilter", "simulate", "--format", "json"]
        os.environ["PYTHONPATH"] = str(repo) + os.pathsep + os.environ.get("PYTHONPATH", "")
        # Every timed run reads the trace: no tally kept by an earlier run (or by the user's).
        os.environ["HVCFILTER_CACHE_DIR"] = ""
        cached_argv, cached_env = cached_bytecode([*env_python, str(trace)], work / "pyc")
        re2 = importlib.util.find_spec("re2") is not None
        # A module named re2 that fails to import: simulate falls back to the pure-Python proof.
        (work / "no-re2").mkdir()
        (work / "no-re2" / "re2.py").write_text("raise ImportError('hidden by the benchmark')\n")
        pure_env = {
            **cached_env,
            "PYTHONPATH": f"{work / 'no-re2'}{os.pathsep}{os.environ['PYTHONPATH']}",
        }
        grep_times: list[float] = []
        sim_times: list[float] = []
        cached_times: list[float] = []
        pure_times: list[float] = []
        floor_times: list[float] = []
        floor_argv = [sys.executable, str(Path(__file__).resolve().parent / "count_only.py")]
        proof_argv = [sys.executable, str(Path(__file__).resolve().parent / "proof_only.py")]
        proof_times: list[float] = []
        # The tally kept by a first run: what editing a spec against this capture costs.
        kept_env = {**cached_env, "HVCFILTER_CACHE_DIR": str(work / "tally-cache")}
        _, _, kept_summary = _timed(cached_argv, work, kept_env)  # reads and keeps the tally
        kept_times: list[float] = []
        peak = 0
        grep_count = b""
        summary = b""
        pure_summary = b""
        for _ in range(args.repeats):
            elapsed, _rss, grep_count = _timed([grep, "-c", "kvm_hvc_arm64", str(trace)], work)
            grep_times.append(elapsed)
            elapsed, _rss, floor_count = _timed([*floor_argv, str(trace)], work)
            floor_times.append(elapsed)
            if floor_count.strip() != grep_count.strip():
                raise SystemExit(f"count_only.py counted {floor_count!r}, grep {grep_count!r}")
            elapsed, rss, summary = _timed([*env_python, str(trace)], work)
            sim_times.append(elapsed)
            peak = max(peak, rss)
            elapsed, rss, _ = _timed(cached_argv, work, cached_env)
            cached_times.append(elapsed)
            peak = max(peak, rss)
            elapsed, _rss, kept = _timed(cached_argv, work, kept_env)
            kept_times.append(elapsed)
            if kept != kept_summary:
                raise SystemExit("simulate's output differs with the tally kept")
            if re2:
                elapsed, rss, pure_summary = _timed(cached_argv, work, pure_env)
                pure_times.append(elapsed)
                peak = max(peak, rss)
                elapsed, _rss, proven = _timed([*proof_argv, str(trace)], work, cached_env)
                proof_times.append(elapsed)
                if not proven.strip().isdigit():  # it exits 1 when a chunk fails
                    raise SystemExit("proof_only.py: the trace failed the line proof")
        calls = summary.split(b'"calls": ', 1)[1].split(b",", 1)[0] if summary else b"?"
        if calls.strip() != grep_count.strip():
            raise SystemExit(f"simulate counted {calls!r} calls, grep {grep_count!r}")
        if re2 and pure_summary != summary:
            raise SystemExit("simulate's output differs with and without RE2")
        g, s = statistics.median(grep_times), statistics.median(sim_times)
        c = statistics.median(cached_times)
        proof = "RE2 (google-re2)" if re2 else "pure Python (google-re2 is not installed)"
        print(f"line proof: {proof}")
        print(f"grep -c kvm_hvc_arm64: median {g:.3f} s over {args.repeats} runs")
        print(f"simulate --format json: median {s:.3f} s (imports compiled from source)")
        print(f"simulate --format json: median {c:.3f} s (bytecode cached, as installed)")
        print(f"ratio simulate/grep: {s / g:.1f} from source, {c / g:.1f} cached (target <= 3)")
        if re2:
            p = statistics.median(pure_times)
            print(f"simulate --format json: median {p:.3f} s (cached, re2 hidden: pure Python)")
            print(f"ratio pure Python/grep: {p / g:.1f}; RE2 speed-up {p / c:.2f}x, same output")
        f = statistics.median(floor_times)
        print(
            f"count-only prototype (no line proof): median {f:.3f} s, {f / g:.1f}x grep; "
            f"simulate is {c / f:.1f}x it"
        )
        if re2:
            r = statistics.median(proof_times)
            print(
                f"RE2 line proof alone (no counting): median {r:.3f} s, {r / g:.1f}x grep; "
                f"simulate is {c / r:.1f}x it"
            )
        k = statistics.median(kept_times)
        print(
            f"simulate again, tally kept by a first run: median {k:.3f} s, {k / g:.1f}x grep, "
            f"{c / k:.1f}x faster than reading the trace; same output"
        )
        print(f"peak RSS of simulate: {peak / 1024:.1f} MB (target <= 100)")
        print(f"calls: {int(calls):,} (grep agrees)")


if __name__ == "__main__":
    main()
