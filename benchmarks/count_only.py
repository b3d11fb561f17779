"""The floor ``bench_simulate.py`` compares against: count HVC function IDs and nothing else.

This is the prototype issue 13 describes: one compiled regex over an mmap,
``findall`` into a Counter, one process per core. It proves no line, counts
no skipped line, reads no spec and runs no emulator, so it is not a
simulate; it shows how much of simulate's time goes to those. Prints the
number of calls, as ``grep -c kvm_hvc_arm64`` does.
Run: ``python benchmarks/count_only.py TRACE``.
"""

from __future__ import annotations

import mmap
import os
import re
import sys
from collections import Counter

_CALL = re.compile(rb"kvm_hvc_arm64: HVC at 0x[0-9a-fA-F]+ \(r0: 0x([0-9a-fA-F]+)")


def _count(fd: int, start: int, stop: int) -> Counter[bytes]:
    with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as mm:
        return Counter(_CALL.findall(mm, start, stop))


def main() -> None:
    with open(sys.argv[1], "rb") as trace:
        fd = trace.fileno()
        size = os.fstat(fd).st_size
        with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as mm:
            middle = mm.find(b"\n", size // 2) + 1 or size
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:  # the second half's total, as text down the pipe
            os.close(read_end)
            os.write(write_end, str(sum(_count(fd, middle, size).values())).encode())
            os._exit(0)
        os.close(write_end)
        total = sum(_count(fd, 0, middle).values())
        with os.fdopen(read_end, "rb") as pipe:
            total += int(pipe.read())
        os.waitpid(child, 0)
    print(total)


if __name__ == "__main__":
    main()
