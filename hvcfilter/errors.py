"""Exception hierarchy: every failure the library reports to its caller on purpose.

The CLI turns these into one-line messages and exit code 2; anything else that
escapes is an internal error (exit code 3). Reading an input is each room's
own (a spec, a payload, a trace), but why one cannot be read is said one way
everywhere, with its fix: :func:`unreadable`.
"""

from __future__ import annotations

import errno

__all__ = [
    "HvcFilterError",
    "LabError",
    "PayloadError",
    "SpecError",
    "TraceError",
    "errno_name",
    "read_failure",
    "unreadable",
]


class HvcFilterError(Exception):
    """Base class of every error hvcfilter raises deliberately."""


class SpecError(HvcFilterError):
    """A spec file cannot be read or understood."""


class PayloadError(HvcFilterError):
    """A binary payload of ``struct kvm_smccc_filter`` records is malformed."""


class TraceError(HvcFilterError):
    """A trace file cannot be read."""


class LabError(HvcFilterError):
    """The real-kernel lab cannot be prepared or run."""


def errno_name(code: int) -> str:
    """The symbolic name of an errno as the kernel returns it: ``EEXIST``; ``0`` for success."""
    if not code:
        return "0"
    return errno.errorcode.get(code, str(code))


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
    (FileNotFoundError, "no such file", "check the path"),
    (IsADirectoryError, "is a directory", "name a file in it"),
    (NotADirectoryError, "a part of the path is not a directory", "check the path"),
    (PermissionError, "permission denied", "check the file's permissions"),
)
