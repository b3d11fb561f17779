"""Exception hierarchy: every failure the library reports to its caller on purpose.

The CLI turns these into one-line messages and exit code 2; anything else that
escapes is an internal error (exit code 3).
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
