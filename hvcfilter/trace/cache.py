"""A cache of large traces' tallies, so that replaying one capture under spec after spec is instant.

The tally of a trace (:class:`TraceTally`: its distinct calls and counts,
its skipped lines) does not depend on the filter table, and ``simulate``
is most often run again and again on one capture while its spec is being
edited. A trace file of at least :data:`MIN_SIZE` bytes is tallied once;
the tally is kept as a small JSON file and used again while the trace is
the same file, unchanged: same device, inode, size, modification and
change times (the change time cannot be set back by hand, so an edit in
place that restores the size and mtime is still seen), read in the same
format by the same parser code.

The cache only ever saves time: an entry that is missing, unreadable,
malformed, written by other parser code, or not the user's own is ignored
and written again, and a directory that cannot be written is not used.
Standard input, FIFOs and small files are never cached.

Where: ``$HVCFILTER_CACHE_DIR``, else ``$XDG_CACHE_HOME/hvcfilter/traces``,
else ``~/.cache/hvcfilter/traces``; ``HVCFILTER_CACHE_DIR=""`` (or
``simulate --no-cache``) turns it off. It keeps the :data:`MAX_ENTRIES`
tallies used last.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections import Counter
from pathlib import Path
from typing import Any, cast

from hvcfilter.smccc import CONDUITS, MODES, CallKey, Conduit, Mode
from hvcfilter.trace.events import BadLine, TraceTally

# hashlib, json and tempfile are imported where they are used: every simulate
# imports this module, and only large traces reach the cache (about 10 ms).

__all__ = ["MAX_ENTRIES", "MIN_SIZE", "TallyCache", "default_cache"]

# Smaller traces are tallied in less time than the cache's own file work saves.
MIN_SIZE = 4 << 20
MAX_ENTRIES = 32
# Bumped when an entry's layout changes; the parser code's own fingerprint covers the rest.
_LAYOUT = 1
_COUNTS = ("lines", "comments", "events", "smc_without_id", "skipped")
# An entry's name (see TallyCache.key), and the most an entry may hold: far
# more than the tally of any real trace (100,000 distinct calls is 5 MB).
_ENTRY = re.compile(r"[0-9a-f]{40}\.json")
_MAX_ENTRY = 64 << 20


class TallyCache:
    """Tallies of trace files by what the file is, in one directory."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def key(self, fd: int, trace_format: str) -> str | None:
        """The entry name for the open trace ``fd`` read as ``trace_format``; None: not cached."""
        try:
            st = os.fstat(fd)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode) or st.st_size < MIN_SIZE:
            return None
        import hashlib

        identity = (
            _LAYOUT,
            _code_fingerprint(),
            trace_format,
            st.st_dev,
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
        )
        return hashlib.sha256(repr(identity).encode()).hexdigest()[:40]

    def get(self, key: str, name: str) -> TraceTally | None:
        """The tally kept under ``key``, its lines named ``name``; None if none can be trusted."""
        import json

        path = self.directory / f"{key}.json"
        try:
            # Never through a link, never blocking on a FIFO planted under the name.
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            with open(fd, "rb") as entry:
                st = os.fstat(fd)
                # Only a plain file of the user's own that nobody else could have written.
                if (
                    not stat.S_ISREG(st.st_mode)
                    or st.st_uid != os.getuid()
                    or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
                    or st.st_size > _MAX_ENTRY
                ):
                    return None
                document = json.loads(entry.read(_MAX_ENTRY + 1))
            tally = _from_json(document, key, name)
        except (OSError, ValueError, TypeError, KeyError):
            return None
        if tally is not None:
            with contextlib.suppress(OSError):
                os.utime(path)  # used last: kept longest
        return tally

    def put(self, key: str, tally: TraceTally) -> None:
        """Keep ``tally`` under ``key``; silently nothing if the directory cannot be written."""
        import json
        import tempfile

        data = json.dumps(_to_json(tally, key), separators=(",", ":")).encode()
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".entry-", suffix=".tmp")
        except OSError:
            return
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temporary, self.directory / f"{key}.json")
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            return
        self._evict()

    def _evict(self) -> None:
        # Only the cache's own entries, by their name: HVCFILTER_CACHE_DIR may be a
        # directory that holds other JSON files, and those are the user's.
        entries: list[tuple[int, Path]] = []
        with contextlib.suppress(OSError):
            for path in self.directory.iterdir():
                if _ENTRY.fullmatch(path.name):
                    with contextlib.suppress(OSError):
                        entries.append((path.lstat().st_mtime_ns, path))
        entries.sort(reverse=True)
        for _, stale in entries[MAX_ENTRIES:]:
            with contextlib.suppress(OSError):
                stale.unlink()


def default_cache() -> TallyCache | None:
    """The cache at its usual place (see the module), or None when turned off."""
    configured = os.environ.get("HVCFILTER_CACHE_DIR")
    if configured is not None:
        return TallyCache(configured) if configured else None
    base = os.environ.get("XDG_CACHE_HOME")
    if not base or not os.path.isabs(base):  # the XDG spec ignores a relative value
        try:
            home = Path.home()
        except (RuntimeError, KeyError):  # no HOME and no passwd entry: nowhere to keep it
            return None
        if os.environ.get("HOME") == "" or not home.is_absolute():  # HOME="" reads as "/"
            return None
        base = str(home / ".cache")
    return TallyCache(Path(base) / "hvcfilter" / "traces")


_fingerprint: str | None = None


def _code_fingerprint() -> str:
    """The parser code's version: its files' sizes and times, so that an edit is a new cache.

    A release's version string would miss a change made in a checkout, and a
    tally from other parser code may count other things.
    """
    global _fingerprint  # noqa: PLW0603 - computed once per process
    if _fingerprint is None:
        import hashlib

        from hvcfilter import __version__

        room = Path(__file__).resolve().parent
        parts = [__version__]
        for source in sorted(room.glob("*.py")):
            st = source.stat()
            parts.append(f"{source.name}:{st.st_size}:{st.st_mtime_ns}")
        _fingerprint = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    return _fingerprint


def _to_json(tally: TraceTally, key: str) -> dict[str, Any]:
    return {
        "key": key,
        "lines": tally.lines,
        "comments": tally.comments,
        "events": tally.events,
        "smc_without_id": tally.smc_without_id,
        "skipped": tally.skipped,
        "calls": [
            [fid, conduit, imm, mode, n] for (fid, conduit, imm, mode), n in tally.calls.items()
        ],
        "bad_lines": [[b.line, b.text, b.reason] for b in tally.bad_lines],
    }


def _from_json(document: Any, key: str, name: str) -> TraceTally | None:
    """The tally of an entry, or None if it is not exactly what :func:`_to_json` writes."""
    if not isinstance(document, dict) or document.get("key") != key:
        return None
    counts = [
        document[field] for field in ("lines", "comments", "events", "smc_without_id", "skipped")
    ]
    if not all(type(n) is int and n >= 0 for n in counts):
        return None
    calls: Counter[CallKey] = Counter()
    for row in document["calls"]:
        fid, conduit, imm, mode, n = row
        if not (
            type(fid) is int
            and 0 <= fid <= 0xFFFF_FFFF
            and conduit in CONDUITS
            and type(imm) is int
            and 0 <= imm <= 0xFFFF
            and mode in MODES
            and type(n) is int
            and n > 0
        ):
            return None
        calls[(fid, cast("Conduit", conduit), imm, cast("Mode", mode))] = n
    bad_lines = []
    for line, text, reason in document["bad_lines"]:
        if type(line) is not int or not isinstance(text, str) or not isinstance(reason, str):
            return None
        bad_lines.append(BadLine(name, line, text, reason))
    lines, comments, events, smc_without_id, skipped = counts
    return TraceTally(lines, comments, events, smc_without_id, skipped, calls, bad_lines)
