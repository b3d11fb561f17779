"""Learning end to end: trace paths or tally files in, a tally or a checked spec out.

Paths are expanded here (a directory means the files in it, a pattern its
matches, in sorted order, so that the traces listed in a tally never depend
on the file system's order). Each trace is tallied on its own, through
:func:`hvcfilter.trace.tally`, so that a call can say in how many traces it
was seen; with ``jobs > 1`` files are tallied by a pool of processes, each
file still read with flat memory.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

from hvcfilter.errors import TraceError
from hvcfilter.fileio import write_failure
from hvcfilter.inputs import EmptyStreamError, read_input, unreadable
from hvcfilter.kernel.profiles import get_profile
from hvcfilter.learn.derive import Granularity, Learned, Override, derive
from hvcfilter.learn.forwards import forwarded_calls
from hvcfilter.learn.tally import LearnError, Tally, from_trace, loads, merge
from hvcfilter.learn.writer import spec_text
from hvcfilter.model import FilterSpec
from hvcfilter.trace import (
    BadLine,
    TraceFormat,
    default_cache,
    is_pipe,
    repeated_file,
    sized_file,
)
from hvcfilter.trace import expand_paths as expand_trace_paths
from hvcfilter.trace import tally as tally_trace

__all__ = ["LearnResult", "Skipped", "expand_paths", "learn", "read_tallies", "tally_traces"]


@dataclass(frozen=True, slots=True)
class LearnResult:
    """A learned table: the derivation, the spec text, and the spec model it loads as."""

    learned: Learned
    text: str
    spec: FilterSpec


def expand_paths(paths: Sequence[str]) -> list[str]:
    """Files for the given paths (:func:`hvcfilter.trace.expand_paths`), each named once.

    Raises:
        LearnError: a pattern or directory matches no file, or one file is named twice.
    """
    try:
        out = expand_trace_paths(paths)
    except TraceError as exc:  # learn's callers catch LearnError for what they named
        raise LearnError(str(exc)) from exc
    _refuse_twice(out)
    return out


def _refuse_twice(paths: Sequence[str]) -> None:
    """Raise if one file is named twice (a glob and its own name, a link): counted twice.

    Raises:
        LearnError: two paths are the same file.
    """
    message = repeated_file(paths, "name each trace or tally once")
    if message is not None:
        raise LearnError(message)


class Skipped(NamedTuple):
    """A trace's lines that could not be parsed: how many, and the first of them."""

    trace: str
    lines: int
    first: BadLine | None


def _one(args: tuple[str, str, str, bool]) -> tuple[Tally, Skipped]:
    path, fmt, kernel, keep = args
    name = "<stdin>" if path == "-" else path
    with _rereadable(path) as readable:
        # A stream's temporary copy is a new file every time: its tally, kept, would
        # never be found again and would only push the tallies of real files out.
        cache = default_cache() if keep and readable == path else None
        try:
            counts = tally_trace([readable], TraceFormat(fmt), names={readable: name}, cache=cache)
        except TraceError:
            # A tally reads as JSON Lines of which no line is a call: say what it is.
            with contextlib.suppress(OSError), open(readable, "rb") as head:
                if _TALLY_MARK in head.read(4096):
                    raise LearnError(
                        f"{name} is a tally, not a trace: pass it with --tally"
                    ) from None
            raise
        is_ftrace = counts.formats.get(name) == TraceFormat.FTRACE
        forwards = forwarded_calls(readable) if is_ftrace else None
    first = counts.bad_lines[0] if counts.bad_lines else None
    skipped = Skipped(name, counts.skipped, first)
    return from_trace(name, counts, kernel, forwards), skipped


# What every tally starts with (dumps): a tally passed as a trace reads as JSON Lines.
_TALLY_MARK = b'"format": "hvcfilter-tally"'


@contextlib.contextmanager
def _rereadable(path: str) -> Iterator[str]:
    """A path that can be read twice: the file itself, or a temporary copy of a stream.

    Forwards are found in a second pass over an ftrace file. Standard input, a
    FIFO or a process substitution (``<(zcat trace.gz)``) can be read once:
    the second pass found nothing there (forwards lost without a word) or
    waited forever on a FIFO. A pseudo-file such as tracefs's ``trace`` says
    it holds 0 bytes, which the second pass believed. Such an input is copied
    to a temporary file first, in chunks, and the copy is removed afterwards.
    """
    if path != "-":
        try:
            sized = sized_file(os.stat(path))
        except OSError:
            sized = True  # missing or unreadable: the trace room reports it, with the errno
        if sized:
            yield path
            return
    shown = "<stdin>" if path == "-" else path
    try:
        copy = tempfile.NamedTemporaryFile(prefix="hvcfilter-learn-", suffix=".trace")  # noqa: SIM115
    except OSError as exc:
        raise TraceError(_copy_failed(shown, exc)) from exc
    with copy, contextlib.ExitStack() as stack:
        try:
            stream = sys.stdin.buffer if path == "-" else stack.enter_context(open(path, "rb"))
            block = stream.read(1 << 20)
        except OSError as exc:
            raise TraceError(f"cannot read {shown}: {unreadable(exc)}") from exc
        if not block and is_pipe(stream):  # a pseudo-file may be empty; a pipe's writer failed
            empty = EmptyStreamError(errno.ENODATA, "empty")
            raise TraceError(f"cannot read {shown}: {unreadable(empty)}")
        while block:
            try:
                copy.write(block)
            except OSError as exc:  # a full disk is the temporary directory's, not the input's
                raise TraceError(_copy_failed(shown, exc)) from exc
            try:
                block = stream.read(1 << 20)
            except OSError as exc:
                raise TraceError(f"cannot read {shown}: {unreadable(exc)}") from exc
        try:
            copy.flush()
        except OSError as exc:
            raise TraceError(_copy_failed(shown, exc)) from exc
        yield copy.name


def _copy_failed(shown: str, exc: OSError) -> str:
    try:
        where = f" in {tempfile.gettempdir()}"
    except OSError:  # no usable temporary directory at all: exc says so
        where = ""
    return (
        f"cannot copy {shown} to a temporary file{where}: {write_failure(exc)} (learn reads "
        "a stream twice; set TMPDIR to a larger file system, or pass the trace as a file)"
    )


def tally_traces(
    paths: Sequence[str],
    *,
    kernel: str | None = None,
    trace_format: TraceFormat = TraceFormat.AUTO,
    jobs: int = 1,
    on_empty: Callable[[str], None] | None = None,
    on_skipped: Callable[[Skipped], None] | None = None,
    cache: bool = False,
) -> Tally:
    """The merged tally of the traces, one file per worker with ``jobs > 1``.

    ``on_empty`` hears of each trace that held no call at all (a host whose
    capture failed, say), which the merged tally no longer shows;
    ``on_skipped`` of each trace with lines that could not be parsed, whose
    calls, if they held any, the learned table denies. With
    ``cache``, large trace files' tallies are taken from and kept in the
    user's tally cache (:func:`hvcfilter.trace.default_cache`), which
    ``simulate`` shares.

    Raises:
        TraceError: a trace cannot be read.
        LearnError: a directory or pattern names no file.
        UnknownProfileError: ``kernel`` names no profile.
    """
    profile = get_profile(kernel).name
    work = [(p, trace_format.value, profile, cache) for p in expand_paths(paths)]
    if jobs > 1 and len(work) > 1 and "-" not in paths:
        with ProcessPoolExecutor(max_workers=min(jobs, len(work))) as pool:
            done = list(pool.map(_one, work))
    else:
        done = [_one(w) for w in work]
    parts = [part for part, _ in done]
    if on_skipped is not None:
        for _, skipped in done:
            if skipped.lines:
                on_skipped(skipped)
    merged = merge(parts)
    if on_empty is not None and merged.calls:  # with no call at all, learn says so itself
        for part in parts:
            if not part.calls and not part.smc_without_id:
                on_empty(part.traces[0])
    return merged


def read_tallies(paths: Sequence[str]) -> Tally:
    """Merge tally files (``learn --tally-out``).

    Raises:
        LearnError: a file cannot be read, is not a tally, is of another version,
            or the tallies are of different kernels.
    """
    tallies = []
    first: tuple[str, str] | None = None  # the first tally's file and kernel
    for path in expand_paths(paths):
        shown = "<stdin>" if path == "-" else path
        try:
            data = read_input(path)
        except OSError as exc:
            raise LearnError(f"cannot read {shown}: {unreadable(exc)}") from exc
        tally = loads(data, shown)
        if first is None:
            first = (shown, tally.kernel)
        elif tally.kernel != first[1]:
            raise LearnError(
                f"cannot merge {first[0]} (kernel {first[1]}) and {shown} (kernel "
                f"{tally.kernel}): learn each kernel's fleet separately (--kernel)"
            )
        tallies.append(tally)
    return merge(tallies)


def learn(
    tally: Tally,
    *,
    granularity: Granularity = Granularity.FUNCTION,
    overrides: Sequence[Override] = (),
    command: str = "hvcfilter learn",
) -> LearnResult:
    """The least-privilege spec for a tally, written and linted.

    Raises:
        LearnError: the tally has no calls, or an override forwards a reserved ID.
        HvcFilterError: internal error: the result fails ``check``.
    """
    learned = derive(tally, granularity, overrides)
    text, spec = spec_text(learned, command)
    return LearnResult(learned, text, spec)
