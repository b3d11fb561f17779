"""Reading the small inputs (specs, payloads, tallies), and why an input cannot be read.

A spec, a payload or a tally is read whole, from a file or from standard
input (``-``), and never exceeds :data:`MAX_INPUT`: ``hvcfilter check
/dev/zero`` or ``yes | hvcfilter check -`` is refused at that size instead
of growing until the machine runs out of memory; the bound is far above
what a spec, a payload or the tally of a whole fleet comes to. Traces are
streamed by the trace room and bounded per line instead, but every room
says why an input cannot be read in the same words, with the fix:
:func:`unreadable`.
"""

from __future__ import annotations

import errno
import sys

__all__ = [
    "MAX_INPUT",
    "EmptyStreamError",
    "InputTooLargeError",
    "read_failure",
    "read_input",
    "unreadable",
]

# The 100,000-range benchmark spec is about 6 MiB, and its payload 2.4 MiB; a tally
# of 720,000 distinct IDs (learn writes it) is 70 MB, its learned spec 137 MB.
MAX_INPUT = 256 << 20


class InputTooLargeError(OSError):
    """An input larger than any spec, payload or tally is: read no further."""


class EmptyStreamError(OSError):
    """Standard input or a pipe gave nothing: the command meant to feed it failed.

    ``git show HEAD:vm.toml | hvcfilter simulate --baseline -`` for a spec
    new in the work tree fed nothing, and the baseline became an empty table
    without a word; ``simulate <(failed-capture)`` replayed nothing. An empty
    named file stays a spec (HVF208 says it is empty) or an empty trace.
    """


def read_input(path: str) -> bytes:
    """The bytes of the file at ``path``, or of standard input for ``-``.

    Raises:
        OSError: it cannot be read, holds more than MAX_INPUT bytes
            (InputTooLargeError), or is standard input and empty
            (EmptyStreamError); :func:`unreadable` says why.
    """
    if path == "-":
        data = sys.stdin.buffer.read(MAX_INPUT + 1)
        if not data:
            raise EmptyStreamError(errno.ENODATA, "standard input is empty")
    else:
        with open(path, "rb") as file:
            data = file.read(MAX_INPUT + 1)
    if len(data) > MAX_INPUT:
        raise InputTooLargeError(errno.EFBIG, f"larger than {MAX_INPUT >> 20} MiB")
    return data


def unreadable(exc: OSError) -> str:
    """Why an input file cannot be read, and its fix where there is one: ``no such file; ...``."""
    reason, fix = read_failure(exc)
    return f"{reason}; {fix}" if fix else reason


def read_failure(exc: OSError) -> tuple[str, str | None]:
    """Why an input file cannot be read, and what a user does next (None: nothing to say).

    The reason is the C library's, lower-cased, as it reads mid-sentence:
    "cannot read vm.toml: no such file".
    """
    for kind, reason, fix in _UNREADABLE:
        if isinstance(exc, kind):
            return reason, fix
    reason = exc.strerror or str(exc)
    return reason[:1].lower() + reason[1:], None


_UNREADABLE: tuple[tuple[type[OSError], str, str], ...] = (
    (
        InputTooLargeError,
        f"larger than {MAX_INPUT >> 20} MiB, which hvcfilter reads at most",
        "check that it is a spec, payload or tally (a device or a stream that never ends?)",
    ),
    (
        EmptyStreamError,
        "it is empty",
        "the command that feeds it wrote nothing (did it fail?); an input meant to be "
        "empty goes as a file",
    ),
    (FileNotFoundError, "no such file", "check the path"),
    (IsADirectoryError, "is a directory", "name a file in it"),
    (NotADirectoryError, "a part of the path is not a directory", "check the path"),
    (PermissionError, "permission denied", "check the file's permissions"),
)
