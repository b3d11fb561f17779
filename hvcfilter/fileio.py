"""Files in and out: atomic writes that never leave a partial file or clobber an input.

Every command that writes a file goes through :func:`write_atomic`: the data
lands in a temporary file in the target's directory, is flushed to disk, and
only then renamed over the target, so an interrupted or failed run leaves the
old file (or no file) behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from hvcfilter.errors import HvcFilterError

__all__ = ["OutputError", "write_atomic", "write_failure"]


class OutputError(HvcFilterError):
    """An output file cannot be written, or would overwrite an input."""


def write_failure(exc: OSError, target: str | os.PathLike[str] | None = None) -> str:
    """Why an output cannot be written, as it reads after "cannot write FILE: ", with a fix.

    Worded as :func:`hvcfilter.inputs.read_failure` words inputs: lower case,
    mid-sentence, and the fix where there is one. ``target`` (None: standard
    output) tells a missing directory from a file system that refuses the name.
    """
    if isinstance(exc, FileNotFoundError) and target is not None:
        parent = os.path.dirname(os.fspath(target)) or "."
        if not os.path.isdir(parent):
            return f"no directory {parent}; create it first"
    for kind, reason, fix in _UNWRITABLE:
        if isinstance(exc, kind):
            return f"{reason}; {fix}"
    for number, reason, fix in _UNWRITABLE_ERRNOS:
        if exc.errno == number:
            return f"{reason}; {fix}"
    reason = exc.strerror or str(exc)
    return reason[:1].lower() + reason[1:]


_UNWRITABLE: tuple[tuple[type[OSError], str, str], ...] = (
    (IsADirectoryError, "is a directory", "name a file in it"),
    (NotADirectoryError, "a part of the path is not a directory", "check the path"),
    (PermissionError, "permission denied", "check the permissions of the file and its directory"),
)
_UNWRITABLE_ERRNOS: tuple[tuple[int, str, str], ...] = (
    (errno.ENOSPC, "no space left on the device", "free some space, or write elsewhere"),
    (errno.EDQUOT, "over the disk quota", "free some space, or write elsewhere"),
    (errno.EROFS, "a read-only file system", "write elsewhere"),
    (errno.ENAMETOOLONG, "file name too long for the file system", "use a shorter name"),
    (errno.ELOOP, "too many levels of symbolic links", "check the links in the path"),
)


def write_atomic(
    target: str | os.PathLike[str], data: bytes, *, inputs: Iterable[str | os.PathLike[str]] = ()
) -> None:
    """Write ``data`` to ``target`` through a temporary file and a rename.

    A symbolic link keeps pointing at the replaced file; a device or FIFO
    (``/dev/stdout``, a named pipe) is written in place, never replaced.

    Raises:
        OutputError: ``target`` is one of ``inputs``, or the write fails.
    """
    path = Path(target)
    try:
        found = path.stat()
    except FileNotFoundError:
        found = None
    except OSError as exc:  # a name too long, a loop of links: nothing can be written there
        raise OutputError(f"cannot write {target}: {write_failure(exc, target)}") from exc
    if found is not None and stat.S_ISREG(found.st_mode):  # a stream read is no file to lose
        for source in inputs:
            if _same_file(found, source):
                shown = "<stdin>" if str(source) == "-" else source
                raise OutputError(f"refusing to overwrite input {shown} with output {target}")
    if found is not None and not stat.S_ISREG(found.st_mode) and not stat.S_ISDIR(found.st_mode):
        # A device, FIFO or socket (/dev/stdout, /dev/null, a named pipe): a rename
        # would replace the node itself, and a stream has no partial file to fear.
        _write_stream(path, data)
        return
    if os.path.islink(path):
        # Replace the file the link points at (or would create), not the link.
        path = Path(os.path.realpath(path))
    directory = path.parent if str(path.parent) else Path(".")
    try:
        import tempfile  # only a command that writes a file pays for its import

        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:  # path, not target: a link's missing directory is its target's
        raise OutputError(f"cannot write {target}: {write_failure(exc, path)}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            # Keep the mode of a file being replaced; mkstemp creates 0600.
            os.chmod(temp, path.stat().st_mode & 0o7777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temp, 0o666 & ~umask)
        os.replace(temp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {target}: {write_failure(exc, path)}") from exc
        raise


def _same_file(target: os.stat_result, source: str | os.PathLike[str]) -> bool:
    """Whether ``source`` (``-``: standard input, as redirected from a file) is ``target``."""
    try:
        found = os.fstat(0) if str(source) == "-" else os.stat(source)
    except OSError:  # an input that is gone, or no stdin: not the target
        return False
    return (found.st_dev, found.st_ino) == (target.st_dev, target.st_ino)


def _write_stream(path: Path, data: bytes) -> None:
    try:
        with open(path, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {write_failure(exc, path)}") from exc
