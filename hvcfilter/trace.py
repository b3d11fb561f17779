"""Trace parsers: what a guest really called, read from ftrace text, JSON Lines or CSV.

Three formats, one model. ftrace text (``/sys/kernel/tracing/trace``,
``trace_pipe`` or ``trace-cmd report``) yields ``kvm_hvc_arm64`` events as HVC
calls; ``kvm_exit`` traps with EC 0x17/0x13 are SMCs whose function ID ftrace
never records, so they are only counted (reference section 6). JSON Lines and
CSV (one call per line or row) carry every field explicitly. Inputs may be
``-`` (stdin), plain, gzip or xz; the format and the compression are detected
from the content. Two ways in: :func:`iter_events` yields one
:class:`TraceEvent` per call in trace order, and :func:`tally` counts distinct
calls without materialising one object per line. ``tally`` reads ftrace in
large chunks and uses whole-chunk C scans (a regex with a literal prefix for
the events it needs, ``bytes.count`` for lines, one possessive regex that
proves every line of the chunk is a well-formed event line); a chunk that
fails any of those proofs, holds comments, or needs AArch32 inference is
re-read line by line by the same parser :func:`iter_events` uses, so both
paths count exactly the same things. Memory is bounded by the chunk size and
the number of distinct calls, whatever the trace length.

AArch32: ``kvm_hvc_arm64`` prints the same for every guest state, so the mode
of an HVC is inferred from the ``kvm_exit`` that precedes it on the same task
(EC 0x12, HVC32, gives ``a32``; A32 and T32 cannot be told apart, and KVM
treats them the same); otherwise it is ``a64``.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import io
import itertools
import json
import lzma
import mmap
import os
import pickle
import re
import signal
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO, Any, Final

from hvcfilter.errors import TraceError
from hvcfilter.smccc import CONDUITS, MODES, CallKey, Conduit, Mode

__all__ = [
    "CONDUITS",
    "MAX_BAD_LINES",
    "MODES",
    "BadLine",
    "CallKey",
    "Conduit",
    "Mode",
    "Progress",
    "TraceEvent",
    "TraceFormat",
    "TraceTally",
    "detect_format",
    "iter_events",
    "open_trace",
    "tally",
]

# How many unparseable lines a tally keeps verbatim; the rest are only counted.
MAX_BAD_LINES: Final = 5
# Chunk size of the fast path: small enough to stay in cache across its scans.
_CHUNK = 1 << 20
_W0_MASK: Final = 0xFFFF_FFFF
_GZIP_MAGIC = b"\x1f\x8b"
_XZ_MAGIC = b"\xfd7zXZ\x00"

# Called with (bytes consumed so far, total bytes or None) as input is read.
Progress = Callable[[int, int | None], None]


class TraceFormat(StrEnum):
    """The trace formats ``simulate`` reads."""

    AUTO = "auto"
    FTRACE = "ftrace"
    JSONL = "jsonl"
    CSV = "csv"


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One guest call as a trace recorded it.

    ``x0`` is the full register (ftrace records 64 bits; the filter uses W0).
    ``vcpu`` is the vCPU index from JSON Lines/CSV, or the pid of the vCPU
    thread from ftrace. ``line`` is the 1-based line number in ``source``.
    """

    x0: int
    conduit: Conduit
    imm: int
    mode: Mode
    vcpu: int | None
    ts: float | None
    line: int
    source: str = ""
    x1: int | None = None
    x2: int | None = None
    x3: int | None = None

    @property
    def function_id(self) -> int:
        """W0, the 32 bits KVM's filter and handlers look at."""
        return self.x0 & _W0_MASK

    @property
    def key(self) -> CallKey:
        """The fields that decide the outcome (register arguments aside)."""
        return (self.x0 & _W0_MASK, self.conduit, self.imm, self.mode)


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that could not be parsed: where it is, what it says, and why."""

    source: str
    line: int
    text: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}: {self.text}"


@dataclass(slots=True)
class TraceTally:
    """Counts over one or more traces; ``calls`` holds one entry per distinct :data:`CallKey`."""

    lines: int = 0
    comments: int = 0
    events: int = 0
    smc_without_id: int = 0
    skipped: int = 0
    calls: Counter[CallKey] = field(default_factory=Counter)
    bad_lines: list[BadLine] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)

    @property
    def call_count(self) -> int:
        """Calls with a function ID."""
        return sum(self.calls.values())

    @property
    def ignored_events(self) -> int:
        """Well-formed events that are neither a call nor an SMC trap."""
        return self.events - self.call_count - self.smc_without_id

    def merge(self, other: TraceTally, *, line_offset: int = 0) -> None:
        """Add another tally's counts; its bad-line numbers are shifted by ``line_offset``."""
        self.lines += other.lines
        self.comments += other.comments
        self.events += other.events
        self.smc_without_id += other.smc_without_id
        self.skipped += other.skipped
        self.calls.update(other.calls)
        room = MAX_BAD_LINES - len(self.bad_lines)
        self.bad_lines.extend(
            BadLine(b.source, b.line + line_offset, b.text, b.reason)
            for b in other.bad_lines[: max(room, 0)]
        )

    def bad(self, source: str, line: int, text: bytes | str, reason: str) -> None:
        """Count an unparseable line, keeping the first few verbatim."""
        self.skipped += 1
        if len(self.bad_lines) < MAX_BAD_LINES:
            shown = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
            self.bad_lines.append(BadLine(source, line, shown.rstrip("\r\n")[:200], reason))


# --------------------------------------------------------------------------- input


class _Source:
    """A binary input stream plus what the progress bar needs (raw bytes read, total)."""

    def __init__(
        self, name: str, stream: io.BufferedIOBase, raw: io.BufferedReader, total: int | None
    ) -> None:
        self.name, self.stream, self._raw, self.total = name, stream, raw, total
        # An uncompressed regular file: the fast path can mmap it.
        self.plain = stream is raw and total is not None

    def position(self) -> int:
        """Bytes of the underlying (possibly compressed) input consumed so far."""
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return 0


class _RawAdapter(io.RawIOBase):
    """A raw stream over any binary file object (stdin replaced by a test, a pipe wrapper)."""

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@contextlib.contextmanager
def open_trace(path: str) -> Iterator[_Source]:
    """Open a trace (``-`` is stdin), decompressing gzip or xz transparently.

    Raises:
        TraceError: the file cannot be opened or is not valid gzip/xz.
    """
    with contextlib.ExitStack() as stack:
        raw: IO[bytes]
        if path == "-":
            raw = sys.stdin.buffer
            total = None
        else:
            try:
                raw = stack.enter_context(open(path, "rb"))
                total = os.fstat(raw.fileno()).st_size
            except OSError as exc:
                raise TraceError(f"cannot read {path}: {exc.strerror or exc}") from exc
        name = "<stdin>" if path == "-" else path
        buffered: io.BufferedReader = (
            raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(_RawAdapter(raw))
        )
        try:
            magic = buffered.peek(6)[:6]
        except OSError as exc:
            raise TraceError(f"cannot read {name}: {exc.strerror or exc}") from exc
        stream: io.BufferedIOBase
        if magic.startswith(_GZIP_MAGIC):
            stream = stack.enter_context(gzip.GzipFile(fileobj=buffered, mode="rb"))
        elif magic.startswith(_XZ_MAGIC):
            stream = stack.enter_context(lzma.LZMAFile(buffered, mode="rb"))
        else:
            stream = buffered
        yield _Source(name, stream, buffered, total)


def _is_plain_file(source: _Source) -> bool:
    return source.plain and source.name != "<stdin>"


def _chunks(source: _Source, progress: Progress | None) -> Iterator[bytes]:
    """Newline-terminated chunks of the decompressed input (a final partial line gets one)."""
    try:
        if _is_plain_file(source) and source.total:
            yield from _mmap_chunks(source, progress)
            return
        rest = b""
        while True:
            block = source.stream.read(_CHUNK)
            if progress is not None:
                progress(source.position(), source.total)
            if not block:
                break
            end = block.rfind(b"\n") + 1
            if end == 0:
                rest += block
                continue
            yield rest + block[:end] if rest else block[:end]
            rest = block[end:]
        if rest:
            yield rest + b"\n"
    except (OSError, EOFError, lzma.LZMAError, gzip.BadGzipFile) as exc:
        raise TraceError(f"cannot read {source.name}: {exc}") from exc


def _mmap_chunks(source: _Source, progress: Progress | None) -> Iterator[bytes]:
    # Whole-chunk reads at known offsets: no copy to join a carried partial line,
    # and (unlike an mmap) pages already scanned do not stay in this process's RSS.
    fd = source.stream.fileno()
    yield from _range_chunks(fd, 0, os.fstat(fd).st_size, progress)


def _range_chunks(fd: int, start: int, stop: int, progress: Progress | None) -> Iterator[bytes]:
    size, pos = os.fstat(fd).st_size, start
    while pos < stop:
        block = os.pread(fd, min(_CHUNK, stop - pos), pos)
        if not block:
            break
        end = block.rfind(b"\n") + 1
        while end == 0 and pos + len(block) < stop:  # a line longer than a chunk
            more = os.pread(fd, min(_CHUNK, stop - pos - len(block)), pos + len(block))
            if not more:
                break
            block += more
            end = block.rfind(b"\n") + 1
        chunk = block[:end] if end else block
        pos += len(chunk)
        if progress is not None:
            progress(pos, size)
        yield chunk if chunk.endswith(b"\n") else chunk + b"\n"


def detect_format(head: bytes) -> TraceFormat:
    """Guess the format from the start of the (decompressed) input.

    The first line that is neither blank nor a ``#`` comment decides: ``{``
    starts JSON Lines, a comma-separated header naming ``x0`` is CSV, and
    anything else is ftrace text.
    """
    # Editors on Windows start UTF-8 files with a byte-order mark.
    for raw in head.removeprefix(codecs.BOM_UTF8).splitlines():
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        if line.startswith(b"{"):
            return TraceFormat.JSONL
        cells = [c.strip().strip(b'"').lower() for c in line.split(b",")]
        if len(cells) > 1 and b"x0" in cells:
            return TraceFormat.CSV
        return TraceFormat.FTRACE
    return TraceFormat.FTRACE


def _peek(source: _Source) -> bytes:
    stream = source.stream
    try:
        if isinstance(stream, io.BufferedReader):
            return stream.peek(1 << 16)
        if isinstance(stream, gzip.GzipFile | lzma.LZMAFile):
            return stream.peek(1 << 16)
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise TraceError(f"cannot read {source.name}: {exc}") from exc
    return b""


def _resolve_format(source: _Source, fmt: TraceFormat) -> TraceFormat:
    return detect_format(_peek(source)) if fmt is TraceFormat.AUTO else fmt


# --------------------------------------------------------------------------- ftrace

# One event line (reference section 6.2): "comm-pid [cpu] flags timestamp: event: msg".
# comm may hold spaces and dashes (the pid follows the last dash before the
# columns); record-tgid adds "(tgid)"; trace-cmd report has no flags column.
_LINE = re.compile(
    rb"[ \t]*(?P<comm>[^\n\[]*?)-(?P<pid>\d+)[ \t]+"
    rb"(?:\([ \t]*[\d-]+\)[ \t]+)?"
    rb"\[(?P<cpu>\d+)\][ \t]+"
    rb"(?:[^\s\d]\S*[ \t]+)?"
    rb"(?P<ts>\d+(?:\.\d+)?):[ \t]+"
    rb"(?P<event>\w+):(?P<msg>[^\n]*)"
)
# The same language as _LINE, repeated over a whole chunk with possessive
# quantifiers: one C-level pass proves every line of the chunk is an event.
_LINES = re.compile(
    rb"(?:[ \t]*+(?:[^\n\[-]*+-)+\d++[ \t]++"
    rb"(?:\([ \t]*+[\d-]++\)[ \t]++)?"
    rb"\[\d++\][ \t]++"
    rb"(?:[^\s\d]\S*+[ \t]++)?"
    rb"\d++(?:\.\d++)?:[ \t]++"
    rb"\w++:[^\n]*+\n)*+"
)
# Old kernels print 8-digit hex, new ones 16; accept 1-16 (section 6.1).
_HVC_MSG = re.compile(
    rb"[ \t]+HVC at 0x[0-9a-fA-F]{1,16} \(r0: 0x(?P<r0>[0-9a-fA-F]{1,16}), "
    rb"imm: 0x(?P<imm>[0-9a-fA-F]{1,4})\)[ \t\r]*"
)
_EXIT_MSG = re.compile(rb"[ \t]+TRAP: HSR_EC: 0x0*(?P<ec>[0-9a-fA-F]+)\b")
# The fast path's event scan: a valid kvm_hvc_arm64 payload (group 1), a
# malformed one (both groups empty), or a kvm_exit trap of interest (group 2).
_EVENTS = re.compile(
    rb"kvm_(?:hvc_arm64:[ \t]+(?:HVC at 0x[0-9a-fA-F]{1,16} \((r0: 0x[0-9a-fA-F]{1,16}, "
    rb"imm: 0x[0-9a-fA-F]{1,4})\)[ \t\r]*\n)?"
    rb"|exit:[ \t]+TRAP: HSR_EC: 0x0*(1[237])\b)"
)
_FAST_KEY = re.compile(rb"r0: 0x([0-9a-fA-F]+), imm: 0x([0-9a-fA-F]+)")
# trace-cmd report's header lines.
_HEADER = re.compile(rb"[ \t]*(?:cpus=\d+|CPU \d+ is empty|version = \d+)[ \t\r]*")
_EC_SMC64, _EC_SMC32, _EC_HVC32 = 0x17, 0x13, 0x12


def _split_lines(chunk: bytes) -> list[bytes]:
    # Only "\n" ends a line, as for the line counts (splitlines would also split at "\r").
    return chunk.split(b"\n")[:-1]


class _Ftrace:
    """The line-by-line ftrace parser: exact, stateful (per-task AArch32 inference)."""

    def __init__(self, tally: TraceTally, source: str) -> None:
        self.tally = tally
        self.source = source
        # pid -> whether that task's last kvm_exit was an HVC32 trap.
        self.a32_pending: dict[bytes, bool] = {}

    @property
    def carries_state(self) -> bool:
        return any(self.a32_pending.values())

    def line(self, number: int, raw: bytes) -> TraceEvent | None:
        tally = self.tally
        tally.lines += 1
        text = raw.rstrip(b"\r\n")
        stripped = text.strip()
        if not stripped or stripped.startswith(b"#") or _HEADER.fullmatch(text):
            tally.comments += 1
            return None
        m = _LINE.fullmatch(text)
        if m is None:
            tally.bad(self.source, number, text, "not an ftrace event line")
            return None
        event = m["event"]
        if event == b"kvm_hvc_arm64":
            hvc = _HVC_MSG.fullmatch(m["msg"])
            if hvc is None:
                tally.bad(self.source, number, text, "malformed kvm_hvc_arm64 event")
                return None
            tally.events += 1
            pid = m["pid"]
            mode: Mode = "a32" if self.a32_pending.pop(pid, False) else "a64"
            x0, imm = int(hvc["r0"], 16), int(hvc["imm"], 16)
            tally.calls[(x0 & _W0_MASK, "hvc", imm, mode)] += 1
            ts = m["ts"]
            return TraceEvent(
                x0,
                "hvc",
                imm,
                mode,
                int(pid),
                float(ts) if b"." in ts else None,
                number,
                self.source,
            )
        tally.events += 1
        if event == b"kvm_exit":
            ex = _EXIT_MSG.match(m["msg"])
            ec = int(ex["ec"], 16) if ex else -1
            if ec in (_EC_SMC64, _EC_SMC32):
                tally.smc_without_id += 1
            self.a32_pending[m["pid"]] = ec == _EC_HVC32
        return None

    def chunk(self, chunk: bytes, first_line: int) -> int:
        """Count one newline-terminated chunk; returns its number of lines."""
        lines = self.chunk_fast(chunk)
        if lines < 0:
            raw_lines = _split_lines(chunk)
            for offset, raw in enumerate(raw_lines):
                self.line(first_line + offset, raw)
            return len(raw_lines)
        return lines

    def chunk_fast(self, chunk: bytes) -> int:
        """Count a chunk in bulk; -1 (and nothing counted) if it needs the line parser."""
        if self.carries_state:
            return -1
        start = 0
        comments = 0
        # The header block of comments is common; any other comment needs the slow path.
        while chunk.startswith(b"#", start):
            start = chunk.index(b"\n", start) + 1
            comments += 1
        if chunk.find(b"#", start) >= 0:
            return -1
        found = Counter(_EVENTS.findall(chunk, start))
        if (b"", b"") in found or (b"", b"12") in found:
            return -1  # a malformed kvm_hvc_arm64, or an AArch32 HVC to attribute
        if not _LINES.fullmatch(chunk, start):
            return -1
        lines = chunk.count(b"\n")
        tally = self.tally
        tally.lines += lines
        tally.comments += comments
        tally.events += lines - comments
        tally.smc_without_id += found.pop((b"", b"17"), 0) + found.pop((b"", b"13"), 0)
        calls = tally.calls
        for (payload, _), count in found.items():
            key = _FAST_KEY.fullmatch(payload)
            assert key is not None  # the scan matched it
            calls[(int(key[1], 16) & _W0_MASK, "hvc", int(key[2], 16), "a64")] += count
        self.a32_pending.clear()
        return lines


def _ftrace_tally(source: _Source, tally: TraceTally, progress: Progress | None) -> None:
    if _is_plain_file(source) and (source.total or 0) >= _PARALLEL_MIN:
        fd = source.stream.fileno()
        with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as mm:
            bounds = _split_points(mm, _workers())
        if len(bounds) > 2:
            _parallel_tally(fd, bounds, source.name, tally, progress)
            return
    parser = _Ftrace(tally, source.name)
    line = 1
    for chunk in _chunks(source, progress):
        line += parser.chunk(chunk, line)


# Plain files at least this large are scanned by several processes at once.
_PARALLEL_MIN = 32 << 20
# An HVC32 kvm_exit and the kvm_hvc_arm64 it announces are a few lines apart;
# a split point needs this much trace before it free of HVC32 traps, so that
# no event's mode depends on a line in another process's share.
_SPLIT_GUARD = 256 << 10


def _workers() -> int:
    try:
        return min(len(os.sched_getaffinity(0)), 4)
    except (AttributeError, OSError):
        return min(os.cpu_count() or 1, 4)


def _split_points(mm: mmap.mmap, workers: int) -> list[int]:
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
            target = cut + _CHUNK
    bounds.append(size)
    return bounds


def _share_tally(
    fd: int, start: int, stop: int, name: str, progress: Progress | None
) -> TraceTally:
    share = TraceTally()
    parser = _Ftrace(share, name)
    line = 1
    for chunk in _range_chunks(fd, start, stop, progress):
        line += parser.chunk(chunk, line)
    return share


def _parallel_tally(
    fd: int, bounds: list[int], name: str, tally: TraceTally, progress: Progress | None
) -> None:
    """Scan the shares in forked children and the first one here, then merge in file order."""
    children: list[tuple[int, int]] = []
    try:
        for start, stop in itertools.pairwise(bounds[1:]):
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:  # child: scan one share, send the counts, never return
                os.close(read_fd)
                status = 0
                try:
                    payload = pickle.dumps(("ok", _share_tally(fd, start, stop, name, None)))
                except BaseException as exc:  # reported by the parent
                    payload = pickle.dumps(("error", f"{type(exc).__name__}: {exc}"))
                    status = 1
                with os.fdopen(write_fd, "wb") as pipe:
                    pipe.write(payload)
                os._exit(status)
            os.close(write_fd)
            children.append((pid, read_fd))
        size = bounds[-1]
        # This process reads the first share; show it as the whole file's progress.
        scaled = None if progress is None else _scaled(progress, size / bounds[1])
        shares = [_share_tally(fd, 0, bounds[1], name, scaled)]
        for pid, read_fd in children:
            with os.fdopen(read_fd, "rb") as pipe:
                kind, value = pickle.loads(pipe.read() or pickle.dumps(("error", "no result")))
            os.waitpid(pid, 0)
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
    for share in shares:
        tally.merge(share, line_offset=offset)
        offset += share.lines
    if progress is not None:
        progress(bounds[-1], bounds[-1])


def _scaled(progress: Progress, factor: float) -> Progress:
    def report(done: int, total: int | None) -> None:
        progress(min(int(done * factor), total or 0), total)

    return report


def _ftrace_events(
    source: _Source, tally: TraceTally, progress: Progress | None
) -> Iterator[TraceEvent]:
    parser = _Ftrace(tally, source.name)
    line = 1
    for chunk in _chunks(source, progress):
        for offset, raw in enumerate(_split_lines(chunk)):
            event = parser.line(line + offset, raw)
            if event is not None:
                yield event
        line += chunk.count(b"\n")


# --------------------------------------------------------------------------- JSON Lines / CSV


class _RecordError(ValueError):
    """One field of a JSON Lines or CSV record is wrong; the message names the field."""


def _register(name: str, value: Any, *, bits: int = 64) -> int:
    if isinstance(value, bool) or value is None:
        raise _RecordError(f"field {name!r}: expected an integer or a hex string, got {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip().replace("_", "")
        try:
            number = int(text, 16) if text.lower().startswith("0x") else int(text, 10)
        except ValueError:
            raise _RecordError(f"field {name!r}: {value!r} is not a number") from None
    else:
        raise _RecordError(f"field {name!r}: expected an integer or a hex string, got {value!r}")
    if not 0 <= number < 1 << bits:
        raise _RecordError(f"field {name!r}: {value!r} does not fit {bits} bits")
    return number


def _conduit(value: Any) -> Conduit:
    text = value.strip().lower() if isinstance(value, str) else value
    if value is None or text == "hvc":
        return "hvc"
    if text == "smc":
        return "smc"
    raise _RecordError(f"field 'conduit': {value!r} is not one of {', '.join(CONDUITS)}")


def _mode(value: Any) -> Mode:
    text = value.strip().lower() if isinstance(value, str) else value
    if value is None or text == "a64":
        return "a64"
    if text == "a32":
        return "a32"
    if text == "t32":
        return "t32"
    raise _RecordError(f"field 'mode': {value!r} is not one of {', '.join(MODES)}")


def _record(fields: dict[str, Any], number: int, source: str) -> TraceEvent:
    """Build an event from JSON Lines/CSV fields (missing or empty means the default)."""

    def get(name: str) -> Any:
        value = fields.get(name)
        return None if value == "" else value

    if get("x0") is None:
        raise _RecordError("field 'x0' is missing")
    x0 = _register("x0", get("x0"))
    conduit = _conduit(get("conduit"))
    imm = 0 if get("imm") is None else _register("imm", get("imm"), bits=16)
    mode = _mode(get("mode"))
    vcpu = None if get("vcpu") is None else _register("vcpu", get("vcpu"), bits=32)
    ts_value = get("ts")
    ts: float | None = None
    if ts_value is not None:
        try:
            ts = float(ts_value)
        except (TypeError, ValueError):
            raise _RecordError(f"field 'ts': {ts_value!r} is not a number") from None
    regs = [None if get(r) is None else _register(r, get(r)) for r in ("x1", "x2", "x3")]
    return TraceEvent(x0, conduit, imm, mode, vcpu, ts, number, source, *regs)


def _text_lines(source: _Source, progress: Progress | None) -> Iterator[tuple[int, str]]:
    decoder = codecs.getincrementaldecoder("utf-8-sig")("replace")
    number = 0
    for chunk in _chunks(source, progress):
        for raw in decoder.decode(chunk).split("\n")[:-1]:
            number += 1
            yield number, raw


def _jsonl_events(
    source: _Source, tally: TraceTally, progress: Progress | None
) -> Iterator[TraceEvent]:
    for number, text in _text_lines(source, progress):
        tally.lines += 1
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            tally.comments += 1
            continue
        try:
            fields = json.loads(stripped)
        except json.JSONDecodeError as exc:
            tally.bad(source.name, number, text, f"invalid JSON at column {exc.colno}: {exc.msg}")
            continue
        if not isinstance(fields, dict):
            tally.bad(source.name, number, text, "a JSON object is expected")
            continue
        try:
            event = _record(fields, number, source.name)
        except _RecordError as exc:
            tally.bad(source.name, number, text, str(exc))
            continue
        tally.events += 1
        tally.calls[event.key] += 1
        yield event


def _csv_events(
    source: _Source, tally: TraceTally, progress: Progress | None
) -> Iterator[TraceEvent]:
    lines = _text_lines(source, progress)
    header: list[str] | None = None
    for number, text in lines:
        tally.lines += 1
        if not text.strip() or text.lstrip().startswith("#"):
            tally.comments += 1
            continue
        row = next(csv.reader([text]))
        cells = [c.strip() for c in row]
        if header is None:
            header = [c.lower() for c in cells]
            tally.comments += 1
            if "x0" not in header:
                raise TraceError(f"{source.name}:{number}: CSV header has no 'x0' column")
            continue
        if len(cells) != len(header):
            tally.bad(
                source.name, number, text, f"{len(cells)} cells, but the header has {len(header)}"
            )
            continue
        try:
            event = _record(dict(zip(header, cells, strict=True)), number, source.name)
        except _RecordError as exc:
            tally.bad(source.name, number, text, str(exc))
            continue
        tally.events += 1
        tally.calls[event.key] += 1
        yield event


# --------------------------------------------------------------------------- public entry points


def iter_events(
    paths: list[str],
    tally: TraceTally,
    fmt: TraceFormat = TraceFormat.AUTO,
    *,
    progress: Progress | None = None,
) -> Iterator[TraceEvent]:
    """Yield every call of the traces, in order, counting everything else into ``tally``.

    SMC traps without a function ID (ftrace) are counted, not yielded.

    Raises:
        TraceError: a trace cannot be read, or a CSV trace has no usable header.
    """
    for path in paths:
        with open_trace(path) as source:
            resolved = _resolve_format(source, fmt)
            tally.formats[source.name] = resolved.value
            if resolved is TraceFormat.FTRACE:
                yield from _ftrace_events(source, tally, progress)
            elif resolved is TraceFormat.JSONL:
                yield from _jsonl_events(source, tally, progress)
            else:
                yield from _csv_events(source, tally, progress)


def tally(
    paths: list[str],
    fmt: TraceFormat = TraceFormat.AUTO,
    *,
    progress: Progress | None = None,
) -> TraceTally:
    """Count the distinct calls of the traces, and everything else, without keeping events.

    Raises:
        TraceError: a trace cannot be read, or a CSV trace has no usable header.
    """
    result = TraceTally()
    for path in paths:
        with open_trace(path) as source:
            resolved = _resolve_format(source, fmt)
            result.formats[source.name] = resolved.value
            if resolved is TraceFormat.FTRACE:
                _ftrace_tally(source, result, progress)
            else:
                reader = _jsonl_events if resolved is TraceFormat.JSONL else _csv_events
                for _ in reader(source, result, progress):
                    pass
    return result
