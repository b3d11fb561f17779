"""Tallying a large ftrace file on every core: an mmap cut at line starts, a worker per share.

A plain file of at least 32 MiB is split into shares at line starts, away
from AArch32 traps where it can be, and each share is tallied by its own
process; the tallies are merged in file order. A share whose predecessor
ended with an HVC32 trap still pending (its HVC may come later, in this
share) is counted again from that state, so the result is the serial scan's
whatever the cuts. Smaller files, stdin and compressed input are read by one
parser.
"""

from __future__ import annotations

import contextlib
import itertools
import mmap
import os
import signal

from hvcfilter.errors import TraceError
from hvcfilter.trace import re2_proof, sources
from hvcfilter.trace.events import Progress, TraceTally
from hvcfilter.trace.ftrace import FtraceParser
from hvcfilter.trace.sources import Source, check_unchanged, chunks, is_plain_file, range_chunks

__all__ = ["ftrace_tally", "split_points"]


def ftrace_tally(source: Source, tally: TraceTally, progress: Progress | None) -> None:
    if is_plain_file(source) and (source.total or 0) >= _PARALLEL_MIN:
        fd = source.stream.fileno()
        before = os.fstat(fd)
        with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as mm:
            bounds = split_points(mm, _workers())
        if len(bounds) > 2:
            re2_proof.chunk_proof()  # imported and compiled once, before the workers fork
            _parallel_tally(fd, bounds, source.name, tally, progress)
            check_unchanged(fd, before, source.name)
            return
    parser = FtraceParser(tally, source.name)
    line = 1
    for chunk in chunks(source, progress):
        line += parser.chunk(chunk, line)


# Plain files at least this large are scanned by several processes at once.
_PARALLEL_MIN = 32 << 20
# An HVC32 kvm_exit and the kvm_hvc_arm64 it announces are usually a few lines
# apart: a cut with this much trace before it free of HVC32 traps seldom leaves
# a trap pending, so a share is seldom counted twice (exactness does not rest on it).
_SPLIT_GUARD = 256 << 10


def _workers() -> int:
    try:
        return min(len(os.sched_getaffinity(0)), 4)
    except (AttributeError, OSError):
        return min(os.cpu_count() or 1, 4)


def split_points(mm: mmap.mmap, workers: int) -> list[int]:
    """Byte offsets [0, b1, ..., size] cutting the file into shares at line starts."""
    size = len(mm)
    bounds = [0]
    if not hasattr(os, "fork"):
        workers = 1
    for k in range(1, workers):
        target = size * k // workers
        for _attempt in range(16):
            cut = mm.find(b"\n", target) + 1
            if cut <= bounds[-1] or cut >= size:
                break
            if mm.find(b"HSR_EC: 0x0012", max(0, cut - _SPLIT_GUARD), cut) < 0:
                bounds.append(cut)
                break
            target = cut + sources.CHUNK
    bounds.append(size)
    return bounds


# A share's counts, and the tasks whose last kvm_exit in it was an HVC32 trap.
_Share = tuple[TraceTally, dict[bytes, bool]]


def _share_tally(
    fd: int,
    start: int,
    stop: int,
    name: str,
    progress: Progress | None,
    *,
    pending: dict[bytes, bool] | None = None,
) -> _Share:
    """Tally one share, starting from the AArch32 state ``pending`` the share before left."""
    share = TraceTally()
    parser = FtraceParser(share, name)
    parser.a32_pending.update(pending or {})
    line = 1
    for chunk in range_chunks(fd, start, stop, progress, name):
        line += parser.chunk(chunk, line)
    return share, {pid: True for pid, a32 in parser.a32_pending.items() if a32}


def _parallel_tally(
    fd: int, bounds: list[int], name: str, tally: TraceTally, progress: Progress | None
) -> None:
    """Scan the shares in forked children and the first one here, then merge in file order."""
    import pickle  # only files large enough to share out pay for it

    children: list[tuple[int, int]] = []
    try:
        for start, stop in itertools.pairwise(bounds[1:]):
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:  # child: scan one share, send the counts, never return
                status = 1
                try:
                    os.close(read_fd)
                    try:
                        payload = pickle.dumps(("ok", _share_tally(fd, start, stop, name, None)))
                        status = 0
                    except TraceError as exc:  # the input's fault: said as the serial scan says
                        payload = pickle.dumps(("input", str(exc)))
                    except BaseException as exc:  # reported by the parent
                        payload = pickle.dumps(("error", f"{type(exc).__name__}: {exc}"))
                    with os.fdopen(write_fd, "wb") as pipe:
                        pipe.write(payload)
                finally:  # whatever happens (a parent gone, a pipe closed): never its stack
                    os._exit(status)
            os.close(write_fd)
            children.append((pid, read_fd))
        size = bounds[-1]
        # This process reads the first share; show it as the whole file's progress.
        scaled = None if progress is None else _scaled(progress, size / bounds[1])
        shares: list[_Share] = [_share_tally(fd, 0, bounds[1], name, scaled)]
        for pid, read_fd in children:
            with os.fdopen(read_fd, "rb") as pipe:
                kind, value = pickle.loads(pipe.read() or pickle.dumps(("error", "no result")))
            os.waitpid(pid, 0)
            if kind == "input":
                raise TraceError(value)
            if kind != "ok":
                raise TraceError(f"cannot scan {name}: {value}")
            shares.append(value)
        children.clear()
    finally:
        for pid, read_fd in children:
            with contextlib.suppress(OSError):
                os.close(read_fd)
            with contextlib.suppress(OSError, ChildProcessError):
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
    offset = 0
    pending: dict[bytes, bool] = {}
    for index, (start, stop) in enumerate(itertools.pairwise(bounds)):
        share, left = shares[index]
        if pending:
            # The share before ended with an HVC32 trap whose HVC may lie in this
            # share (the split guard makes that rare): count it again from that state.
            share, left = _share_tally(fd, start, stop, name, None, pending=pending)
        tally.merge(share, line_offset=offset)
        offset += share.lines
        pending = left
    if progress is not None:
        progress(bounds[-1], bounds[-1])


def _scaled(progress: Progress, factor: float) -> Progress:
    def report(done: int, total: int | None) -> None:
        progress(min(int(done * factor), total or 0), total)

    return report
