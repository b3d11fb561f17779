"""The ftrace text parser: ``kvm_hvc_arm64`` events as HVC calls, ``kvm_exit`` SMC traps counted.

Reads ``/sys/kernel/tracing/trace``, ``trace_pipe`` and ``trace-cmd report``
in all their layouts (reference section 6). :class:`FtraceParser` works a
chunk at a time with whole-chunk C scans: a regex with a literal prefix for
the events it needs, and a proof that every line is a well-formed event
line whose event names stand where events are named, made on the few
distinct shapes of the lines' heads (bytes folded to their classes) rather
than line by line. With google-re2 installed, large chunks are proven by one
DFA pass instead (:mod:`.re2_proof`). A chunk that fails any of those
proofs, holds comments, or needs AArch32 inference is re-read line by line
by the same code :func:`ftrace_events` uses, so every path counts exactly
the same things.

AArch32: ``kvm_hvc_arm64`` prints the same for every guest state, so the mode
of an HVC is inferred from the ``kvm_exit`` that precedes it on the same task
(EC 0x12, HVC32, gives ``a32``; A32 and T32 cannot be told apart, and KVM
treats them the same); otherwise it is ``a64``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from operator import itemgetter

from hvcfilter.smccc import Mode
from hvcfilter.trace import re2_proof
from hvcfilter.trace.events import W0_MASK, Progress, TraceEvent, TraceTally
from hvcfilter.trace.sources import Source, chunks

__all__ = ["FtraceParser", "event_line", "ftrace_events", "split_lines"]

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
# Old kernels print 8-digit hex, new ones 16; accept 1-16 (section 6.1).
_HVC_MSG = re.compile(
    rb"[ \t]+HVC at 0x[0-9a-fA-F]{1,16} \(r0: 0x(?P<r0>[0-9a-fA-F]{1,16}), "
    rb"imm: 0x(?P<imm>[0-9a-fA-F]{1,4})\)[ \t\r]*"
)
_EXIT_MSG = re.compile(rb"[ \t]+TRAP: HSR_EC: 0x0*(?P<ec>[0-9a-fA-F]+)\b")
# The fast path's event scan: a valid kvm_hvc_arm64 payload (group 1), a
# malformed one (both groups empty), or a kvm_exit trap of interest (group 2).
# Every "kvm_hvc_arm64:" matches, whatever follows it (even nothing, or no
# blank), so that no malformed message can pass for another event's line.
_EVENTS = re.compile(
    rb"kvm_(?:hvc_arm64:(?:[ \t]+HVC at 0x[0-9a-fA-F]{1,16} \((r0: 0x[0-9a-fA-F]{1,16}, "
    rb"imm: 0x[0-9a-fA-F]{1,4})\)[ \t\r]*\n)?"
    rb"|exit:[ \t]+TRAP: HSR_EC: 0x0*(1[237])\b)"
)
_FAST_KEY = re.compile(rb"r0: 0x([0-9a-fA-F]+), imm: 0x([0-9a-fA-F]+)")
# With the RE2 proof, every kvm_hvc_arm64 and kvm_exit in a chunk names its
# line's event and every kvm_hvc_arm64 message is well formed, so one scan
# finds exactly the calls (groups 1 and 2) and the traps of interest (group 3).
# One scan rather than one per event: a sixth less time, measured.
_PROVEN_EVENTS = re.compile(
    rb"kvm_(?:hvc_arm64:[ \t]++HVC at 0x[0-9a-fA-F]{1,16} "
    rb"\(r0: 0x([0-9a-fA-F]{1,16}), imm: 0x([0-9a-fA-F]{1,4})\)"
    rb"|exit:[ \t]++TRAP: HSR_EC: 0x0*+(1[237])\b)"
)
# Chunks at least this long are proven by RE2 when it is installed. Shorter
# ones (a small trace, the tail of a large one) keep the shape proof, so that
# a small trace never pays RE2's import, which costs more than it would save.
_RE2_MIN = 512 << 10
# The two events the fast path counts. Most of their letters keep their own
# value in a line's shape, so that the shape still tells the event name and
# a name standing anywhere else can be counted in the shapes as well.
_HVC_EVENT, _EXIT_EVENT = b"kvm_hvc_arm64", b"kvm_exit"
# The head of an event line up to the event name's colon (_LINE without the
# message), matched on a line's shape: group 1 is the event.
_SHAPE_HEAD = re.compile(
    rb"[ \t]*+(?:[^\n\[-]*+-)+\d++[ \t]++"
    rb"(?:\([ \t]*+[\d-]++\)[ \t]++)?"
    rb"\[\d++\][ \t]++"
    rb"(?:[^\s\d]\S*+[ \t]++)?"
    rb"\d++(?:\.\d++)?:[ \t]++"
    rb"(\w++):"
)


def _shape_table() -> bytes:
    """Each byte to one byte of its class in _SHAPE_HEAD's eyes: digits "0", spaces " "...

    Every character class of the head grammar holds all of a class or none
    of it, so a line's head matches exactly when its shape's does; and lines
    that differ only in pids, CPUs, timestamps and names have one shape.
    Word characters fold to "a", except the letters and "_" of the two event
    names that are not hex digits, which stay as they are: a name then reads
    in the shape as ``kvm_hva_arm00`` or ``kvm_axit``, and hex numbers still
    fold to a few shapes. Other text may read the same (``kvm_hvc_arm12``),
    which only makes the proof stricter, never wrong (see ``_event_lines``).
    """
    table = bytearray(b"!" * 256)  # everything else: not a space, digit or word character
    for group, shape in ((b"0123456789", b"0"), (b" \t", b" "), (b"\r\x0b\x0c", b"\r")):
        for byte in group:
            table[byte] = shape[0]
    for byte in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_":
        table[byte] = ord("a")
    for byte in _HVC_EVENT + _EXIT_EVENT:
        if byte not in b"0123456789abcdefABCDEF":  # numbers still fold to a few shapes
            table[byte] = byte
    for byte in b"[]-().:\n":
        table[byte] = byte
    return bytes(table)


_SHAPES = _shape_table()
# Enough of a line's shape to hold its head in every layout seen (about 60
# bytes); a longer head sends its chunk to the line parser.
_SHAPE_PREFIX = slice(0, 96)
_MAX_SHAPES = 4096
# The event names as they read in a shape, and back.
_SHAPE_NAMES = {name: name.translate(_SHAPES) for name in (_HVC_EVENT, _EXIT_EVENT)}
_SHAPE_EVENTS = {shape: name for name, shape in _SHAPE_NAMES.items()}
# trace-cmd report's header lines.
_HEADER = re.compile(rb"[ \t]*(?:cpus=\d+|CPU \d+ is empty|version = \d+)[ \t\r]*")
_EC_SMC64, _EC_SMC32, _EC_HVC32 = 0x17, 0x13, 0x12


def split_lines(chunk: bytes) -> list[bytes]:
    # Only "\n" ends a line, as for the line counts (splitlines would also split at "\r").
    return chunk.split(b"\n")[:-1]


def _pid(digits: bytes) -> int | None:
    """The vCPU thread's pid; None past any pid (int() refuses 4,300 digits, exit 3 once).

    The line is still an event, as the bulk count takes it without reading the pid.
    """
    return int(digits) if len(digits) <= _PID_DIGITS else None


def _seconds(digits: bytes) -> float | None:
    """The timestamp in seconds; None without a fraction (trace-cmd's counter) or past a float."""
    if b"." not in digits:
        return None
    seconds = float(digits)
    return seconds if math.isfinite(seconds) else None  # 400 digits are inf: no JSON


# Linux pids are at most 2**22 (PID_MAX_LIMIT); 19 digits hold any 64-bit pid.
_PID_DIGITS = 19


def event_line(raw: bytes) -> tuple[bytes, bytes, bytes] | None:
    """``(pid, event, message)`` of a line the parser takes as an event; None for any other.

    None for what :meth:`FtraceParser.line` skips or counts as no event:
    comments, headers, lines that are no event line, and ``kvm_hvc_arm64``
    events whose message is malformed. Another pass over the text (learn's
    forwards) must act on exactly these lines, or a line the tally skipped
    could still decide what a call got.
    """
    text = raw.rstrip(b"\r\n")
    stripped = text.strip()
    if not stripped or stripped.startswith(b"#") or _HEADER.fullmatch(text):
        return None  # as line() does first: "# x-1 [000] 1.0: e:" is a comment
    m = _LINE.fullmatch(text)
    if m is None:
        return None
    event, message = m["event"], m["msg"]
    if event == _HVC_EVENT and _HVC_MSG.fullmatch(message) is None:
        return None
    return m["pid"], event, message


class FtraceParser:
    """The line-by-line ftrace parser: exact, stateful (per-task AArch32 inference)."""

    def __init__(self, tally: TraceTally, source: str) -> None:
        self.tally = tally
        self.source = source
        # pid -> whether that task's last kvm_exit was an HVC32 trap.
        self.a32_pending: dict[bytes, bool] = {}
        # Line shapes proven to start with a well-formed head -> their event
        # (_HVC_EVENT, _EXIT_EVENT or None).
        self._good_shapes: dict[bytes, bytes | None] = {}

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
            tally.calls[(x0 & W0_MASK, "hvc", imm, mode)] += 1
            return TraceEvent(
                x0, "hvc", imm, mode, _pid(pid), _seconds(m["ts"]), number, self.source
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
            raw_lines = split_lines(chunk)
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
        proof = re2_proof.chunk_proof() if len(chunk) >= _RE2_MIN else None
        if proof is not None:
            return self._count_proven(chunk, start, comments, proof)
        found = Counter(_EVENTS.findall(chunk, start))
        if (b"", b"") in found or (b"", b"12") in found:
            return -1  # a malformed kvm_hvc_arm64, or an AArch32 HVC to attribute
        # Only the names whose matches are counted need proving where they stand.
        hvcs = any(payload for payload, _ in found)
        smcs = (b"", b"17") in found or (b"", b"13") in found
        names = (_HVC_EVENT,) * hvcs + (_EXIT_EVENT,) * smcs
        lines = self._event_lines(chunk, start, comments, names)
        if lines < 0:
            return -1
        tally = self.tally
        tally.lines += lines
        tally.comments += comments
        tally.events += lines - comments
        tally.smc_without_id += found.pop((b"", b"17"), 0) + found.pop((b"", b"13"), 0)
        calls = tally.calls
        for (payload, _), count in found.items():
            key = _FAST_KEY.fullmatch(payload)
            assert key is not None  # the scan matched it
            calls[(int(key[1], 16) & W0_MASK, "hvc", int(key[2], 16), "a64")] += count
        self.a32_pending.clear()
        return lines

    def _count_proven(
        self, chunk: bytes, start: int, comments: int, proof: Callable[[bytes, int], bool]
    ) -> int:
        """chunk_fast with the RE2 proof: one DFA pass, then one literal-prefix scan."""
        if not proof(chunk, start):
            return -1
        found = Counter(_PROVEN_EVENTS.findall(chunk, start))
        if (b"", b"", b"12") in found:
            return -1  # an AArch32 HVC to attribute
        lines = chunk.count(b"\n")
        tally = self.tally
        tally.lines += lines
        tally.comments += comments
        tally.events += lines - comments
        tally.smc_without_id += found.pop((b"", b"", b"17"), 0) + found.pop((b"", b"", b"13"), 0)
        calls = tally.calls
        for (x0, imm, _), count in found.items():
            calls[(int(x0, 16) & W0_MASK, "hvc", int(imm, 16), "a64")] += count
        self.a32_pending.clear()
        return lines

    def _event_lines(
        self, chunk: bytes, start: int, comments: int, names: tuple[bytes, ...]
    ) -> int:
        """The number of lines of ``chunk``, if every one after ``start`` is an event; else -1.

        Also -1 unless every occurrence of the event ``names`` (of
        ``kvm_hvc_arm64`` and ``kvm_exit``) in the chunk is the event name of
        its line, so that the event scan counts only events (a message
        quoting one is not a call). Proven on the distinct shapes of the
        lines' starts (a few per trace) instead of line by line.

        The names are counted in the shapes, not in the chunk: a name's shape
        stands wherever the name does, and perhaps elsewhere too (the shape
        folds digits and most letters). Both shapes hold one "k", their first
        byte, and only a "k" folds to "k", so their occurrences never overlap
        and each is counted once. A shape's count then equals the number of
        lines whose event reads as it only if every occurrence stands as a
        line's event, the real names' included.
        """
        shaped = chunk.translate(_SHAPES)
        shapes = shaped.split(b"\n")
        del shapes[-1]  # after the chunk's last newline
        good = self._good_shapes
        named = {_HVC_EVENT: 0, _EXIT_EVENT: 0}
        for shape, count in Counter(map(itemgetter(_SHAPE_PREFIX), shapes[comments:])).items():
            if shape in good:
                event = good[shape]
            else:
                head = _SHAPE_HEAD.match(shape)
                if head is None:
                    return -1  # not an event line, or a head longer than the prefix
                event = _SHAPE_EVENTS.get(head[1])
                if len(good) < _MAX_SHAPES:
                    good[shape] = event
            if event is not None:
                named[event] += count
        if any(named[name] != shaped.count(_SHAPE_NAMES[name]) for name in names):
            return -1
        return len(shapes)


def ftrace_events(
    source: Source, tally: TraceTally, progress: Progress | None
) -> Iterator[TraceEvent]:
    parser = FtraceParser(tally, source.name)
    line = 1
    for chunk in chunks(source, progress):
        for offset, raw in enumerate(split_lines(chunk)):
            event = parser.line(line + offset, raw)
            if event is not None:
                yield event
        line += chunk.count(b"\n")
