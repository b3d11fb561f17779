"""Exception hierarchy: every failure the library reports to its caller on purpose.

The CLI turns these into one-line messages and exit code 2; anything else that
escapes is an internal error (exit code 3).
"""

from __future__ import annotations

__all__ = ["HvcFilterError", "LabError", "PayloadError", "SpecError", "TraceError"]


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
