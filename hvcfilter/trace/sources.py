"""Reading trace files: stdin, plain, gzip or xz, in chunks or through an mmap; format detection.

:func:`open_trace` opens any input as a :class:`Source`, undoing the
compression it finds by its magic bytes; :func:`chunks` reads it in large
chunks (through an mmap for plain files), and :func:`detect_format` tells
ftrace, JSON Lines and CSV apart from the first bytes.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import io
import os
import stat
import sys
from collections.abc import Iterator, Sequence
from typing import IO, Any

from hvcfilter.errors import TraceError
from hvcfilter.inputs import EmptyStreamError, unreadable
from hvcfilter.trace.events import Progress, TraceFormat

__all__ = [
    "CHUNK",
    "MAX_LINE",
    "Source",
    "check_unchanged",
    "chunks",
    "contains",
    "detect_format",
    "is_pipe",
    "is_plain_file",
    "open_trace",
    "peek",
    "range_chunks",
    "resolve_format",
]

# Chunk size of the fast path: small enough to stay in cache across its scans.
CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_XZ_MAGIC = b"\xfd7zXZ\x00"


class Source:
    """A binary input stream plus what the progress bar needs (raw bytes read, total)."""

    def __init__(
        self,
        name: str,
        stream: io.BufferedIOBase,
        raw: io.BufferedReader,
        total: int | None,
        errors: tuple[type[Exception], ...] = (OSError, EOFError),
    ) -> None:
        self.name, self.stream, self._raw, self.total = name, stream, raw, total
        # What reading the stream raises for bad input: the decompressor's errors too.
        self.errors = errors
        # An uncompressed regular file: the fast path can mmap it.
        self.plain = stream is raw and total is not None

    def opened_file(self) -> int | None:
        """The descriptor of the regular file opened by its path (compressed or not); else None."""
        if self.total is None:  # stdin and pipes have no size up front
            return None
        try:
            return self._raw.fileno()
        except (OSError, ValueError):
            return None

    def fed_by_a_command(self) -> bool:
        """Standard input, a pipe or a FIFO (``<(cmd)``): nothing in it means its writer failed."""
        return self.name == "<stdin>" or is_pipe(self._raw)

    def position(self, read: int) -> int:
        """Bytes of the underlying (possibly compressed) input consumed so far.

        A pipe or FIFO cannot tell its position: then ``read``, the bytes read
        from the stream so far, which a bar of unknown total can show as well.
        """
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return read


class _RawAdapter(io.RawIOBase):
    """A raw stream over any binary file object (stdin replaced by a test, a pipe wrapper)."""

    def __init__(self, inner: IO[bytes] | io.BufferedIOBase) -> None:
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@contextlib.contextmanager
def open_trace(path: str, *, name: str | None = None) -> Iterator[Source]:
    """Open a trace (``-`` is stdin), decompressing gzip or xz transparently.

    ``name`` is what messages and tallies call it, when that is not ``path``
    (a temporary copy of a pipe, say).

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
                st = os.fstat(raw.fileno())
                # A FIFO or /dev/fd/63 has a path but neither a size nor offsets to read at:
                # it is read as a stream, as stdin is.
                total = st.st_size if sized_file(st) else None
            except OSError as exc:
                raise TraceError(f"cannot read {name or path}: {unreadable(exc)}") from exc
        name = name or ("<stdin>" if path == "-" else path)
        buffered: io.BufferedReader = (
            raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(_RawAdapter(raw))
        )
        try:
            magic = buffered.peek(_MAGIC_LENGTH)[:_MAGIC_LENGTH]
        except OSError as exc:
            raise TraceError(f"cannot read {name}: {unreadable(exc)}") from exc
        refused = _unsupported(magic)
        if refused is not None:
            raise TraceError(f"cannot read {name}: {refused}")
        stream: io.BufferedIOBase = buffered
        errors: tuple[type[Exception], ...] = (OSError, EOFError)
        # The decompressors load only for compressed input.
        if magic.startswith(_GZIP_MAGIC):
            import gzip
            import zlib

            stream = stack.enter_context(gzip.GzipFile(fileobj=buffered, mode="rb"))
            errors = (*errors, zlib.error)  # a corrupt deflate stream
        elif magic.startswith(_XZ_MAGIC):
            import lzma

            stream = stack.enter_context(lzma.LZMAFile(buffered, mode="rb"))
            errors = (*errors, lzma.LZMAError)
        yield Source(name, stream, buffered, total, errors)


def _unsupported(magic: bytes) -> str | None:
    """Why input starting with ``magic`` is none this reader takes, and the way out; else None.

    Read as text, a zstd or bzip2 file was hundreds of "unparseable lines" and
    UTF-16 text a few, and learn said to record a trace with the event enabled.
    """
    for starts, what, fix in _UNSUPPORTED:
        if magic.startswith(starts):
            return f"it is {what}, which hvcfilter does not read; {fix}"
    if magic[:3] == b"BZh" and magic[3:4].isdigit() and magic[4:10] in _BZIP2_BLOCKS:
        return (
            "it is bzip2-compressed, which hvcfilter does not read; decompress it first "
            "(bunzip2), or gzip or xz it"
        )
    return None


_MAGIC_LENGTH = 10
_BZIP2_BLOCKS = (b"1AY&SY", b"\x17rE8P\x90")  # a compressed block, or the end of an empty file
# Longest first: UTF-32 LE starts as UTF-16 LE does.
_UNSUPPORTED: tuple[tuple[bytes, str, str], ...] = (
    (b"\xff\xfe\x00\x00", "UTF-32 text", "convert it: iconv -f UTF-32 -t UTF-8"),
    (b"\x00\x00\xfe\xff", "UTF-32 text", "convert it: iconv -f UTF-32 -t UTF-8"),
    (b"\xff\xfe", "UTF-16 text", "convert it: iconv -f UTF-16 -t UTF-8"),
    (b"\xfe\xff", "UTF-16 text", "convert it: iconv -f UTF-16 -t UTF-8"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed", "decompress it first (zstd -d), or gzip or xz it"),
    (b"\x04\x22\x4d\x18", "lz4-compressed", "decompress it first (lz4 -d), or gzip or xz it"),
)


def expand_paths(paths: Sequence[str]) -> list[str]:
    """Files for the given paths: ``-`` as is, directories' files and patterns' matches sorted.

    A name that exists (a file, a FIFO) is taken as it is, glob characters and
    all. A directory gives its files but not its hidden ones (``.gitignore``),
    as a glob does; one that does not exist and holds no glob character is
    left for the reader to report as missing.

    Raises:
        TraceError: a pattern or directory matches no file.
    """
    import glob

    out: list[str] = []
    for path in paths:
        # os.path's probes, not Path's: they take a name too long to exist as missing.
        if path == "-" or (os.path.exists(path) and not os.path.isdir(path)):
            out.append(path)
        elif os.path.isdir(path):
            from pathlib import Path  # only for a directory: names as learn always gave them

            files = sorted(
                str(p) for p in Path(path).iterdir() if not p.name.startswith(".") and p.is_file()
            )
            if not files:
                raise TraceError(f"{path}: the directory holds no file")
            out.extend(files)
        elif glob.has_magic(path):
            files = sorted(p for p in glob.glob(path) if os.path.isfile(p))
            if not files:
                raise TraceError(f"{path}: no such file, and no file matches it as a pattern")
            out.extend(files)
        else:
            out.append(path)  # the reader reports it as unreadable, with the errno
    return out


def repeated_file(paths: Sequence[str], fix: str) -> str | None:
    """Why a file is named twice in ``paths`` (a glob and its own name, a link), or None.

    Its calls would be counted twice, and nothing in a merged tally shows it.
    ``fix`` ends the message. A FIFO or device is read once whatever it is
    named, and a missing file is reported when it is read.
    """
    seen: dict[tuple[int, int], str] = {}
    for path in paths:
        # "-" is standard input, a file too when redirected from one (`- < a.txt a.txt`).
        shown = "<stdin>" if path == "-" else path
        try:
            st = os.fstat(0) if path == "-" else os.stat(path)
        except (OSError, ValueError):
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            again = "named twice" if seen[key] == shown else f"the same file as {seen[key]}"
            return f"{shown} is {again}: its calls would be counted twice; {fix}"
        seen[key] = shown
    return None


def is_pipe(stream: IO[bytes]) -> bool:
    """Whether ``stream`` reads a pipe or FIFO, which a command feeds and which is read once."""
    try:
        return stat.S_ISFIFO(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError):  # no descriptor (a test's BytesIO), or a closed one
        return False


def sized_file(st: os.stat_result) -> bool:
    """Whether ``st`` is a regular file whose size says how much there is to read.

    Pseudo-files such as tracefs's ``trace`` (the reference's capture) and
    procfs files are regular but report a size of 0 however much they hold:
    reads at offsets up to that size, or an mmap of it, find nothing. They
    are read as streams, as a FIFO is (an empty file loses nothing by it).
    """
    return stat.S_ISREG(st.st_mode) and st.st_size > 0


def is_plain_file(source: Source) -> bool:
    return source.plain and source.name != "<stdin>"


def chunks(source: Source, progress: Progress | None) -> Iterator[bytes]:
    """Newline-terminated chunks of the decompressed input (a final partial line gets one)."""
    try:
        if is_plain_file(source) and source.total:
            yield from mmap_chunks(source, progress)
            return
        rest: list[bytes] = []  # the line being read, in the blocks it came in
        held = 0  # and its length so far
        done = 0  # bytes read past any byte-order mark: where that line starts
        first = True
        read = 0
        while True:
            block = source.stream.read(CHUNK)
            read += len(block)
            if first:  # an editor's byte-order mark is no part of the first line
                bom = codecs.BOM_UTF8 if block.startswith(codecs.BOM_UTF8) else b""
                block, first, done = block[len(bom) :], False, len(bom)
            if progress is not None:
                progress(source.position(read), source.total)
            if not block:
                break
            end = block.rfind(b"\n") + 1
            if end == 0:
                # Joined once, when its newline comes: adding each block to a bytes
                # object copied a long line over and over (a 300 MB line took 27 s).
                rest.append(block)
                held += len(block)
                if held > MAX_LINE:
                    raise TraceError(_too_long(source.name, done))
                continue
            if rest and held + block.find(b"\n") > MAX_LINE:
                raise TraceError(_too_long(source.name, done))
            chunk = b"".join((*rest, block[:end])) if rest else block[:end]
            done += len(chunk)
            yield chunk
            rest, held = ([block[end:]], len(block) - end) if end < len(block) else ([], 0)
        if rest:
            yield b"".join(rest) + b"\n"
        if not read and source.fed_by_a_command():
            # `capture | hvcfilter simulate -` after a failed capture replayed nothing, exit 0.
            empty = EmptyStreamError(errno.ENODATA, "empty")
            raise TraceError(f"cannot read {source.name}: {unreadable(empty)}")
    except source.errors as exc:  # gzip.BadGzipFile is an OSError
        raise TraceError(f"cannot read {source.name}: {exc}") from exc


def contains(source: Source, needle: bytes) -> bool:
    """Whether the decompressed input holds ``needle``, read up to its first occurrence.

    Raises:
        TraceError: the input cannot be read.
    """
    if not needle:
        return True
    overlap = len(needle) - 1
    try:
        if is_plain_file(source):
            # Reads at known offsets that overlap by the needle's length: no
            # copy to join one chunk's tail to the next, and no mmap, whose
            # pages would stay in this process's RSS.
            fd = source.stream.fileno()
            size = os.fstat(fd).st_size
            return any(
                needle in os.pread(fd, CHUNK + overlap, pos) for pos in range(0, size, CHUNK)
            )
        tail = b""
        while block := source.stream.read(CHUNK):
            if needle in block or needle in tail + block[:overlap]:
                return True
            # The last overlap bytes read, even across blocks shorter than that.
            tail = (tail + block if len(block) < overlap else block)[-overlap:] if overlap else b""
        return False
    except source.errors as exc:
        raise TraceError(f"cannot read {source.name}: {exc}") from exc


def mmap_chunks(source: Source, progress: Progress | None) -> Iterator[bytes]:
    # Whole-chunk reads at known offsets: no copy to join a carried partial line,
    # and (unlike an mmap) pages already scanned do not stay in this process's RSS.
    fd = source.stream.fileno()
    before = os.fstat(fd)
    yield from range_chunks(fd, 0, before.st_size, progress, source.name)
    check_unchanged(fd, before, source.name)


def check_unchanged(fd: int, before: os.stat_result, name: str) -> None:
    """Raise if the file changed since ``before``: what was read is no one state of it.

    A capture still being written, or rewritten under the reader, gave any
    count from none to all of its calls, and exit 0.

    Raises:
        TraceError: its size or modification time moved while it was read.
    """
    after = os.fstat(fd)
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise TraceError(
            f"cannot read {name}: it changed while it was read ({before.st_size:,} bytes, "
            f"then {after.st_size:,}); wait until the capture is complete, or copy it first"
        )


# A chunk that does not end the range is read to its last whole line at once,
# found by a small read of its tail first: cutting a 1 MiB block to its last
# line afterwards copied it all again, a tenth of a share's scan (measured).
_TAIL_PROBE = 16 << 10


def _long_line(fd: int, pos: int, stop: int, block: bytes, name: str) -> tuple[bytes, int]:
    """``block`` read on to the end of the line it starts at ``pos``; its newline's end then.

    Raises:
        TraceError: the line is longer than MAX_LINE.
    """
    parts, held = [block], len(block)
    while pos + held < stop:
        more = os.pread(fd, min(CHUNK, stop - pos - held), pos + held)
        if not more:
            break
        newline = more.find(b"\n")
        if (held + newline if newline >= 0 else held + len(more)) > MAX_LINE:
            raise TraceError(_too_long(name, pos))
        parts.append(more)
        if newline >= 0:
            return b"".join(parts), held + newline + 1
        held += len(more)
    return b"".join(parts), 0


def _too_long(name: str, start: int) -> str:
    return (
        f"cannot read {name}: the line from byte {start:,} is longer than "
        f"{MAX_LINE >> 20} MiB, and no trace line is; is it a trace?"
    )


# No trace line comes near this (an ftrace event line is about 100 bytes): past it the
# input is no trace, and reading on would only hold more of it in memory (/dev/zero).
MAX_LINE = 16 << 20


def range_chunks(
    fd: int, start: int, stop: int, progress: Progress | None, name: str = "the trace"
) -> Iterator[bytes]:
    size, pos = os.fstat(fd).st_size, start
    if pos == 0 and os.pread(fd, len(codecs.BOM_UTF8), 0) == codecs.BOM_UTF8:
        pos = len(codecs.BOM_UTF8)  # an editor's byte-order mark is no part of the first line
    while pos < stop:
        want = min(CHUNK, stop - pos)
        if want == CHUNK and CHUNK > _TAIL_PROBE:
            probe = pos + CHUNK - _TAIL_PROBE
            cut = os.pread(fd, _TAIL_PROBE, probe).rfind(b"\n") + 1
            if cut:  # else a line longer than the probe: cut the block below, as ever
                want = probe + cut - pos
        block = os.pread(fd, want, pos)
        if not block:
            break
        end = block.rfind(b"\n") + 1
        if end == 0 and pos + len(block) < stop:  # a line longer than a chunk
            block, end = _long_line(fd, pos, stop, block, name)
        chunk = block[:end] if end else block  # the block itself when it ends a line
        pos += len(chunk)
        if progress is not None:
            progress(pos, size)
        yield chunk if chunk.endswith(b"\n") else chunk + b"\n"


def detect_format(head: bytes) -> TraceFormat:
    """Guess the format from the start of the (decompressed) input.

    The first line that is neither blank nor a ``#`` comment decides: ``{``
    starts JSON Lines, a CSV header naming ``x0`` (alone or among others) is CSV, and
    anything else is ftrace text.
    """
    return _deciding_format(head, whole=True) or TraceFormat.FTRACE


def _deciding_format(head: bytes, *, whole: bool) -> TraceFormat | None:
    """The format the first deciding line of ``head`` gives; None if no whole line decides.

    ``whole``: ``head`` is the entire input, so its last line is whole too.
    """
    # Editors on Windows start UTF-8 files with a byte-order mark.
    lines = head.removeprefix(codecs.BOM_UTF8).split(b"\n")
    if not whole:
        del lines[-1]  # perhaps cut short: it cannot decide yet
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        if line.startswith(b"{"):
            return TraceFormat.JSONL
        cells = [c.strip().strip(b'"').lower() for c in line.split(b",")]
        if b"x0" in cells:  # a lone "x0" too: a CSV of IDs alone, never an ftrace line
            return TraceFormat.CSV
        return TraceFormat.FTRACE
    return None


def peek(source: Source) -> bytes:
    # Buffered readers, gzip.GzipFile and lzma.LZMAFile can all peek.
    peek_at = getattr(source.stream, "peek", None)
    if peek_at is None:
        return b""
    try:
        head: bytes = peek_at(1 << 16)
    except source.errors as exc:
        raise TraceError(f"cannot read {source.name}: {exc}") from exc
    return head


# How far a header of comments is read to find the line that tells the format.
_DETECT_LIMIT = 1 << 20


def resolve_format(source: Source, fmt: TraceFormat) -> TraceFormat:
    """``fmt``, or for AUTO the format the input's first deciding line gives.

    A buffered peek holds a few KiB: a header of comments longer than that
    (JSON Lines with a capture's notes on top) is read further, up to 1 MiB,
    without consuming the input (a stream gets the bytes read put back).
    """
    if fmt is not TraceFormat.AUTO:
        return fmt
    head = peek(source)
    found = _deciding_format(head, whole=False)
    if found is None and head:
        head = _read_ahead(source)
        # Past the limit, a line longer than it (a huge first JSON record) decides by its start.
        found = _deciding_format(head, whole=True)
    return found or TraceFormat.FTRACE


def _read_ahead(source: Source) -> bytes:
    """Up to :data:`_DETECT_LIMIT` bytes from the start, the input left as it was."""
    try:
        fd = source.opened_file()
        if is_plain_file(source) and fd is not None:
            return os.pread(fd, _DETECT_LIMIT, 0)  # the parsers read by offset from 0
        head = source.stream.read(_DETECT_LIMIT)
    except source.errors as exc:
        raise TraceError(f"cannot read {source.name}: {exc}") from exc
    source.stream = io.BufferedReader(_Replayed(head, source.stream), CHUNK)
    return head


class _Replayed(_RawAdapter):
    """A stream that gives ``head`` again, then the rest of ``inner``."""

    def __init__(self, head: bytes, inner: io.BufferedIOBase) -> None:
        super().__init__(inner)
        self._head = memoryview(head)

    def readinto(self, buffer: Any) -> int:
        if not self._head:
            return super().readinto(buffer)
        n = min(len(buffer), len(self._head))
        buffer[:n] = self._head[:n]
        self._head = self._head[n:]
        return n
