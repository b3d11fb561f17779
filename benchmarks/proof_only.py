"""The other floor ``bench_simulate.py`` measures: the RE2 line proof alone, on every core.

simulate may count a chunk in bulk only once every line of it is proven an
ftrace event line (``hvcfilter/trace/re2_proof.py``), so that skipped lines
are counted exactly. This script runs just that proof over the file as
simulate does (the same shares, 1 MiB chunks read with ``pread``, a process
per share) and counts nothing, reads no spec and runs no emulator. Its time
is a lower bound on simulate's with RE2: no counting scheme can beat it
while every line is still proven. Prints the number of chunks proven, and
exits 1 if any chunk is not (the benchmark's trace is all event lines).
Needs google-re2 (the ``fast`` extra).
Run: ``python benchmarks/proof_only.py TRACE``.
"""

from __future__ import annotations

import mmap
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hvcfilter.trace import re2_proof
from hvcfilter.trace.parallel import split_points
from hvcfilter.trace.sources import range_chunks


def _proven(fd: int, start: int, stop: int) -> int:
    """The number of chunks of the share proven; -1 if one is not."""
    proof = re2_proof.chunk_proof()
    assert proof is not None  # checked before the fork
    proven = 0
    for chunk in range_chunks(fd, start, stop, None):
        skip = 0
        while chunk.startswith(b"#", skip):  # the header block, as simulate skips it
            skip = chunk.index(b"\n", skip) + 1
        if not proof(chunk, skip):
            return -1
        proven += 1
    return proven


def main() -> None:
    if re2_proof.chunk_proof() is None:
        raise SystemExit("proof_only.py needs google-re2 (pip install 'hvcfilter[fast]')")
    with open(sys.argv[1], "rb") as trace:
        fd = trace.fileno()
        with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as mm:
            bounds = split_points(mm, 2)
        if len(bounds) != 3:
            raise SystemExit("proof_only.py needs a trace it can cut in two")
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:  # the second share's result, as text down the pipe
            os.close(read_end)
            os.write(write_end, str(_proven(fd, bounds[1], bounds[2])).encode())
            os._exit(0)
        os.close(write_end)
        first = _proven(fd, bounds[0], bounds[1])
        with os.fdopen(read_end, "rb") as pipe:
            second = int(pipe.read())
        os.waitpid(child, 0)
    if first < 0 or second < 0:
        raise SystemExit("a chunk failed the proof")
    print(first + second)


if __name__ == "__main__":
    main()
