"""Files in and out: atomic writes that never leave a partial file or clobber an input.

Every command that writes a file goes through :func:`write_atomic`: the data
lands in a temporary file in the target's directory, is flushed to disk, and
only then renamed over the target, so an interrupted or failed run leaves the
old file (or no file) behind.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from hvcfilter.errors import HvcFilterError

__all__ = ["OutputError", "write_atomic"]


class OutputError(HvcFilterError):
    """An output file cannot be written, or would overwrite an input."""


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
    for source in inputs:
        with contextlib.suppress(OSError):
            if path.exists() and os.path.samefile(path, source):
                raise OutputError(f"refusing to overwrite input {source} with output {target}")
    try:
        mode: int | None = path.stat().st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        # A device, FIFO or socket (/dev/stdout, /dev/null, a named pipe): a rename
        # would replace the node itself, and a stream has no partial file to fear.
        _write_stream(path, data)
        return
    if path.is_symlink():
        # Replace the file the link points at, not the link.
        path = Path(os.path.realpath(path))
    directory = path.parent if str(path.parent) else Path(".")
    try:
        import tempfile  # only a command that writes a file pays for its import

        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
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
            raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
        raise


def _write_stream(path: Path, data: bytes) -> None:
    try:
        with open(path, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
