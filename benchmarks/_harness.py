"""Shared timing helpers for the benchmark scripts: medians, baselines in the same run, peak RSS.

Every benchmark prints the median of several runs of the thing measured and of
a baseline measured in the same run on the same input, and their ratio, so the
figures mean something on any machine.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Timing:
    """Median and spread of repeated runs, plus the worst peak RSS of a child process."""

    label: str
    median: float
    low: float
    high: float
    peak_rss_mb: float | None = None

    def line(self) -> str:
        rss = f"  peak RSS {self.peak_rss_mb:6.1f} MB" if self.peak_rss_mb is not None else ""
        return (
            f"{self.label:<44} median {self.median * 1000:9.1f} ms"
            f"  (min {self.low * 1000:.1f}, max {self.high * 1000:.1f}){rss}"
        )


def time_call(label: str, func: Callable[[], object], repeats: int) -> Timing:
    """Time an in-process call ``repeats`` times."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        samples.append(time.perf_counter() - start)
    return Timing(label, statistics.median(samples), min(samples), max(samples))


def time_process(
    label: str,
    argv: Sequence[str],
    repeats: int,
    *,
    ok_codes: Sequence[int] = (0,),
    env: dict[str, str] | None = None,
) -> Timing:
    """Time a whole child process ``repeats`` times; also report its peak RSS."""
    return time_processes([Command(label, argv, env, ok_codes)], repeats)[0]


@dataclass(frozen=True)
class Command:
    """A child process to time: its label, argv, environment (None: this one) and exit codes."""

    label: str
    argv: Sequence[str]
    env: dict[str, str] | None = None
    ok_codes: Sequence[int] = (0,)


def time_processes(commands: Sequence[Command], repeats: int) -> list[Timing]:
    """Time several child processes in turn, round after round, ``repeats`` rounds.

    Interleaving puts a measurement and its baseline under the same
    conditions: on a shared machine a slow minute slows both, not one.
    """
    samples: list[list[float]] = [[] for _ in commands]
    peaks = [0.0 for _ in commands]
    for _ in range(repeats):
        for i, command in enumerate(commands):
            start = time.perf_counter()
            pid = os.posix_spawn(
                command.argv[0],
                list(command.argv),
                dict(os.environ) if command.env is None else command.env,
                file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)],
            )
            _, status, usage = os.wait4(pid, 0)
            samples[i].append(time.perf_counter() - start)
            code = os.waitstatus_to_exitcode(status)
            if code not in command.ok_codes:
                raise SystemExit(f"{command.label}: {' '.join(command.argv)} exited with {code}")
            peaks[i] = max(peaks[i], usage.ru_maxrss / 1024)
    return [
        Timing(c.label, statistics.median(t), min(t), max(t), peak)
        for c, t, peak in zip(commands, samples, peaks, strict=True)
    ]


def hvcfilter_argv(*args: str) -> list[str]:
    """The installed console script if there is one beside this Python, else ``python -m``."""
    script = Path(sys.executable).with_name("hvcfilter")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "hvcfilter", *args]


def cached_bytecode(argv: Sequence[str], cache: Path) -> tuple[list[str], dict[str, str]]:
    """``argv`` (a Python command) run as an installed package runs: bytecode cached in ``cache``.

    ``PYTHONDONTWRITEBYTECODE=1`` makes every import compile from source, which no
    normal install does; this drops it and warms a private pycache once.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cached = [argv[0], "-X", f"pycache_prefix={cache}", *argv[1:]]
    subprocess.run(cached, env=env, capture_output=True, check=False)
    return cached, env


def ratio(measured: Timing, baseline: Timing) -> str:
    """``measured / baseline`` as text."""
    return f"{measured.median / baseline.median:.2f}x"


def self_rss_mb() -> float:
    """Peak RSS of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run a command and capture its output."""
    return subprocess.run(list(argv), capture_output=True, text=True, check=False)
