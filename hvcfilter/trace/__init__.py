"""The trace room: what guests really called, read from ftrace text, JSON Lines or CSV.

Three formats, one model (:mod:`.events`). ftrace text (:mod:`.ftrace`)
yields ``kvm_hvc_arm64`` events as HVC calls; ``kvm_exit`` traps with EC
0x17/0x13 are SMCs whose function ID ftrace never records, so they are only
counted (reference section 6). JSON Lines and CSV (:mod:`.records`) carry
every field explicitly. Inputs may be ``-`` (stdin), plain, gzip or xz; the
format and the compression are detected from the content (:mod:`.sources`).
Two ways in: :func:`iter_events` yields one :class:`TraceEvent` per call in
trace order, and :func:`tally` counts distinct calls without materialising
one object per line, on every core for large files (:mod:`.parallel`).
Memory is bounded by the chunk size and the number of distinct calls,
whatever the trace length.

Imports: :mod:`hvcfilter.smccc`, :mod:`hvcfilter.errors`, :mod:`hvcfilter.inputs` and
:mod:`hvcfilter.utf8` only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from hvcfilter.errors import TraceError
from hvcfilter.smccc import CONDUITS, MODES, CallKey, Conduit, Mode
from hvcfilter.trace.cache import TallyCache, default_cache
from hvcfilter.trace.events import (
    MAX_BAD_LINES,
    BadLine,
    Progress,
    TraceEvent,
    TraceFormat,
    TraceTally,
)
from hvcfilter.trace.ftrace import event_line, ftrace_events
from hvcfilter.trace.parallel import ftrace_tally
from hvcfilter.trace.sources import (
    Source,
    contains,
    detect_format,
    expand_paths,
    is_pipe,
    open_trace,
    repeated_file,
    resolve_format,
    sized_file,
)

__all__ = [
    "CONDUITS",
    "MAX_BAD_LINES",
    "MODES",
    "BadLine",
    "CallKey",
    "Conduit",
    "Mode",
    "Progress",
    "TallyCache",
    "TraceEvent",
    "TraceFormat",
    "TraceTally",
    "contains",
    "default_cache",
    "detect_format",
    "event_line",
    "expand_paths",
    "is_pipe",
    "iter_events",
    "open_trace",
    "repeated_file",
    "sized_file",
    "tally",
]


def iter_events(
    paths: Iterable[str],
    tally: TraceTally,
    fmt: TraceFormat = TraceFormat.AUTO,
    *,
    progress: Progress | None = None,
) -> Iterator[TraceEvent]:
    """Yield every call of the traces, in order, counting everything else into ``tally``.

    SMC traps without a function ID (ftrace) are counted, not yielded.

    Raises:
        TraceError: a trace cannot be read or is named twice, or a CSV trace has
            no usable header.
    """
    paths = list(paths)  # an iterator would be spent by the check
    _refuse_repeated(paths)
    for path in paths:
        with open_trace(path) as source:
            resolved = resolve_format(source, fmt)
            tally.formats[source.name] = resolved.value
            before = (tally.events, tally.skipped)
            if resolved is TraceFormat.FTRACE:
                yield from ftrace_events(source, tally, progress)
            else:
                yield from _record_reader(resolved)(source, tally, progress)
            _refuse_if_no_event(source.name, resolved, tally, before)


def tally(
    paths: Iterable[str],
    fmt: TraceFormat = TraceFormat.AUTO,
    *,
    progress: Progress | None = None,
    names: Mapping[str, str] | None = None,
    cache: TallyCache | None = None,
) -> TraceTally:
    """Count the distinct calls of the traces, and everything else, without keeping events.

    ``names`` gives a path the name its results go by (see :func:`open_trace`).
    With a ``cache``, a large trace file's tally is taken from it when the
    file has not changed, and kept in it otherwise (:mod:`.cache`).

    Raises:
        TraceError: a trace cannot be read or is named twice, or a CSV trace has
            no usable header.
    """
    paths = list(paths)  # an iterator would be spent by the check
    _refuse_repeated(paths)
    result = TraceTally()
    for path in paths:
        with open_trace(path, name=(names or {}).get(path)) as source:
            resolved = resolve_format(source, fmt)
            result.formats[source.name] = resolved.value
            key = None if cache is None else _cache_key(cache, source, resolved)
            kept = None if key is None or cache is None else cache.get(key, source.name)
            before = (result.events, result.skipped)
            if kept is not None:
                result.merge(kept)
                _refuse_if_no_event(source.name, resolved, result, before)
                continue
            part = TraceTally() if key is not None else result
            if resolved is TraceFormat.FTRACE:
                ftrace_tally(source, part, progress)
            else:
                for _ in _record_reader(resolved)(source, part, progress):
                    pass
            if key is not None and cache is not None:
                cache.put(key, part)
                result.merge(part)
            _refuse_if_no_event(source.name, resolved, result, before)
    return result


def _refuse_repeated(paths: list[str]) -> None:
    # simulate a.txt a.txt, or a glob and a name: every count doubled, and exit 0.
    message = repeated_file(paths, "name each trace once")
    if message is not None:
        raise TraceError(message)


def _refuse_if_no_event(
    name: str, fmt: TraceFormat, tally: TraceTally, before: tuple[int, int]
) -> None:
    """Raise if the trace just counted had lines but none was an event: it is no such trace.

    A garbage file, or ftrace text read as JSON Lines because its first line
    starts with "{", replayed nothing and passed a CI gate, or left a host's
    calls out of a fleet's learned table, with exit 0.

    Raises:
        TraceError: lines were skipped and none was an event.
    """
    events, skipped = tally.events - before[0], tally.skipped - before[1]
    if events or not skipped:
        return
    first = next((f"; the first: {b}" for b in tally.bad_lines if b.source == name), "")
    raise TraceError(
        f"cannot read {name}: read as {fmt.value}, none of its {skipped:,} line(s) is an "
        f"event{first}; is it a trace? --trace-format names its format"
    )


def _cache_key(cache: TallyCache, source: Source, fmt: TraceFormat) -> str | None:
    # The file itself decides, compressed or not: stdin has no identity to key on.
    fd = source.opened_file()
    return None if fd is None else cache.key(fd, fmt.value)


def _record_reader(
    fmt: TraceFormat,
) -> Callable[[Source, TraceTally, Progress | None], Iterator[TraceEvent]]:
    # JSON Lines and CSV readers (and the json and csv modules) load only for those formats.
    from hvcfilter.trace.records import csv_events, jsonl_events

    return jsonl_events if fmt is TraceFormat.JSONL else csv_events
