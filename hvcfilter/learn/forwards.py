"""Which traced HVCs were forwarded: a ``kvm_hvc_arm64`` followed by its KVM_EXIT_HYPERCALL.

The trace room counts calls, not what they got. In ftrace a forwarded HVC
shows as ``kvm_userspace_exit: reason KVM_EXIT_HYPERCALL (3)`` on the same
vCPU thread after its ``kvm_hvc_arm64`` (reference section 6.1: that exit
marks a forwarded call; DENY and HANDLE cannot be told apart). This is a
second, cheap pass over the text through :func:`hvcfilter.trace.open_trace`,
run only when the file holds that exit at all, so traces without forwards
(and JSON Lines and CSV, which carry none) cost one scan for the marker.

A forward is decided by its exit line and the last line before it on the
same thread that the line pass would act on, so in a regular file the few
marker lines are found and read back from there (:func:`_forwards_read_back`)
instead of every line being read: a trace whose VMM forwards calls costs
about what one without forwards does. Compressed input gets the line pass.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from typing import Final

from hvcfilter.errors import TraceError
from hvcfilter.inputs import unreadable
from hvcfilter.smccc import FUNCTION_ID_MAX
from hvcfilter.trace import contains, event_line, open_trace, sized_file

__all__ = ["forwarded_calls"]

_MARKER: Final = b"KVM_EXIT_HYPERCALL"
_HVC_EVENT, _EXIT_EVENT = b"kvm_hvc_arm64", b"kvm_userspace_exit"
# Events after which the guest ran on or trapped again (an SMC has no kvm_hvc_arm64
# and no ID): a later KVM_EXIT_HYPERCALL is not the HVC's.
_MOVED_ON: Final = frozenset((b"kvm_entry", b"kvm_exit"))
_R0 = re.compile(rb"r0: 0x([0-9a-fA-F]+)")


def _acted_on(line: bytes) -> tuple[bytes, bytes, bytes] | None:
    """The (pid, event, message) of a line the tally took as an event, else None.

    Only those lines may start or end a pending forward: a malformed
    ``kvm_hvc_arm64`` the tally skipped must not turn the exit after it into
    a forward of an ID the guest never got an answer for from the VMM.
    """
    return event_line(line) if b"kvm_" in line else None


def _w0(message: bytes) -> int:
    r0 = _R0.search(message)
    assert r0 is not None  # event_line accepted it as a kvm_hvc_arm64 message
    return int(r0.group(1), 16) & FUNCTION_ID_MAX


def _has_marker(path: str) -> bool:
    with open_trace(path) as source:
        return contains(source, _MARKER)


def forwarded_calls(path: str) -> Counter[int]:
    """Forwarded HVCs per W0 in an ftrace file (empty for other formats and ``-``).

    The file is read twice, so it must be one that can be: learn copies
    streams to a temporary file first.

    Raises:
        TraceError: the file cannot be read.
    """
    if path == "-":
        return Counter()
    read_back = _read_back_forwards(path)
    if read_back is not None:
        return read_back
    return _forwards_by_line(path) if _has_marker(path) else Counter()


def _forwards_by_line(path: str) -> Counter[int]:
    """The forwards, found by acting on every line in turn: the definition read-back follows."""
    found: Counter[int] = Counter()
    pending: dict[bytes, int] = {}  # vCPU thread -> W0 of its last HVC
    tasks: dict[bytes, bytes] = {}  # pending thread -> "-PID", which each of its lines holds
    with open_trace(path) as source:
        for line in source.stream:
            # Only an HVC, or a line of a thread with an HVC pending, can change the
            # count: every other line is passed over without being parsed.
            if _HVC_EVENT not in line and not any(task in line for task in tasks.values()):
                continue
            fields = _acted_on(line)
            if fields is None:
                continue
            pid, event, message = fields
            if event == _HVC_EVENT:
                pending[pid] = _w0(message)
                tasks[pid] = b"-" + pid
            elif event == _EXIT_EVENT or event in _MOVED_ON:
                fid = pending.pop(pid, None)
                tasks.pop(pid, None)
                if fid is not None and event == _EXIT_EVENT and _MARKER in message:
                    found[fid] += 1
    return found


# What the walks back may cost before the line pass takes over, in bytes read
# back, each line counting _LINE_COST more (its regex). A walk passes the lines
# of other threads, and a hostile trace (threads whose forwards have nothing
# before them, a huge line before many exits) could make the walks add up to
# far more than reading every line once. A real trace's walks take a line or two.
_LINE_COST = 64
_MIN_BUDGET = 1 << 20
_BLOCK = 1 << 20
_WALK_BLOCK = 4 << 10


class _Changed(Exception):
    """The file grew or shrank under the read-back: the line pass reads it as it is."""


def _read_back_forwards(path: str) -> Counter[int] | None:
    """The forwards of a regular uncompressed file, read back from its marker lines.

    None when the file is not one (compressed, a FIFO), changed while read,
    or the walks ran over their budget: the line pass decides then.
    """
    try:
        sized = sized_file(os.stat(path))
    except OSError:
        sized = False  # the line pass reports it, with the errno
    if not sized:  # a FIFO's bytes can be read once: opening it here would lose them
        return None
    with open_trace(path) as source:
        fd = source.opened_file()
        if fd is None or not source.plain:  # compressed: the bytes on disk are not the text
            return None
        try:
            return _forwards_read_back(fd, os.fstat(fd).st_size)
        except _Changed:
            return None
        except OSError as exc:
            raise TraceError(f"cannot read {source.name}: {unreadable(exc)}") from exc


def _forwards_read_back(fd: int, size: int) -> Counter[int] | None:
    """What the line pass finds, from the marker lines and the lines just before them.

    The line pass acts on a thread's line if it names an HVC (pending := its
    W0), a ``kvm_userspace_exit`` (pop, counted with the marker) or a
    ``kvm_entry``/``kvm_exit`` (pop). So an exit line with the marker counts
    the W0 of an HVC exactly when the last acted-on line of its thread before
    it is that HVC's.
    """
    found: Counter[int] = Counter()
    budget = size + _MIN_BUDGET  # about one line pass: past it, the line pass is cheaper
    for lines in _marker_lines(fd, size):
        line = next(lines)
        budget -= _LINE_COST + len(line)  # marker lines the line pass ignores cost too
        if budget < 0:
            return None
        fields = _acted_on(line)
        if fields is None or fields[1] != _EXIT_EVENT or _MARKER not in fields[2]:
            continue  # the line pass does not count it as a forward's exit
        pid = fields[0]
        # A line of this thread holds "-PID" (before its CPU column): most lines of
        # other threads are passed over without being parsed.
        task = b"-" + pid
        for earlier in lines:
            budget -= _LINE_COST + len(earlier)
            if budget < 0:
                return None
            if task not in earlier:
                continue
            before = _acted_on(earlier)
            if before is None or before[0] != pid:
                continue
            if before[1] == _HVC_EVENT:
                found[_w0(before[2])] += 1
                break
            if before[1] == _EXIT_EVENT or before[1] in _MOVED_ON:
                break  # popped before this exit: nothing pending for it
    return found


def _pread(fd: int, length: int, offset: int) -> bytes:
    data = os.pread(fd, length, offset)
    if len(data) != length:
        raise _Changed
    return data


def _marker_lines(fd: int, size: int) -> Iterator[Iterator[bytes]]:
    """For each line holding the marker, once: that line and the lines before it, backwards."""
    overlap = len(_MARKER) - 1
    done = 0  # the end of the last line given: a marker before it is in that line
    for pos in range(0, size, _BLOCK):
        block = _pread(fd, min(_BLOCK + overlap, size - pos), pos)
        at = block.find(_MARKER)
        while 0 <= at < _BLOCK:
            if pos + at >= done:
                newline = block.find(b"\n", at)
                if newline >= 0:  # the walk starts in the block at hand: no read for most
                    done = pos + newline + 1
                    yield _lines_ending_at(fd, done, block, pos)
                else:
                    done = _line_end(fd, pos + len(block), size)
                    yield _lines_ending_at(fd, done)
            at = block.find(_MARKER, max(at + 1, done - pos))  # the rest of its line is done


def _line_end(fd: int, offset: int, size: int) -> int:
    """The offset just past the first newline at or after ``offset`` (the file's end if none)."""
    while offset < size:
        block = _pread(fd, min(_WALK_BLOCK, size - offset), offset)
        newline = block.find(b"\n")
        if newline >= 0:
            return offset + newline + 1
        offset += len(block)
    return size


def _lines_ending_at(
    fd: int, end: int, buffer: bytes = b"", base: int | None = None
) -> Iterator[bytes]:
    """The file's lines up to offset ``end`` (past a newline, or the file's end), the last first.

    Newlines are kept, as the line pass reads them. ``buffer`` holds the
    file's bytes from ``base`` on, up to ``end`` at least; more are read as
    the walk needs them.
    """
    if base is None:
        base = end
    while end > 0:
        # The newline that ends the line before, which lies before this line's own last byte.
        limit = end - base - 1
        cut = buffer.rfind(b"\n", 0, limit) if limit > 0 else -1
        while cut < 0 and base > 0:
            # Doubling: a line of many blocks is read in time linear in its length.
            step = min(max(_WALK_BLOCK, end - base), base)
            buffer = _pread(fd, step, base - step) + buffer[: end - base]
            base -= step
            cut = buffer.rfind(b"\n", 0, end - base - 1)
        begin = base + cut + 1
        yield buffer[begin - base : end - base]
        end = begin
