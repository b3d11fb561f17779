"""Stable identities of findings, for CI systems that track them across runs.

A fingerprint hashes the file, the code, the key path and the message with
every position taken out: ``range[3]`` becomes ``range[]`` and line numbers
never enter, so inserting an entry or a comment above a finding keeps its
fingerprint, while the function IDs in the message (what the finding is
about) keep different findings apart. Identical findings in one file are
numbered in order, so each fingerprint in a report is unique.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from hvcfilter.diagnostics import Diagnostic

__all__ = ["fingerprints"]

# Entry indexes move when an entry is inserted; "line 12" moves with any edit above.
_POSITIONAL = re.compile(r"\[\d+\]|\blines? \d+(?:-\d+)?")


def _identity(diag: Diagnostic) -> str:
    loc = diag.location
    key = _POSITIONAL.sub("[]", loc.key or "")
    message = _POSITIONAL.sub("[]", diag.message)
    return "\0".join((loc.file, diag.code, key, message))


def fingerprints(diagnostics: Iterable[Diagnostic]) -> list[str]:
    """One hex fingerprint per diagnostic, in order, unique within the list."""
    seen: dict[str, int] = {}
    out = []
    for diag in diagnostics:
        identity = _identity(diag)
        occurrence = seen.get(identity, 0)
        seen[identity] = occurrence + 1
        # surrogateescape: the bytes of a file name that is not UTF-8.
        key = f"{identity}\0{occurrence}".encode("utf-8", "surrogateescape")
        digest = hashlib.sha256(key).hexdigest()
        out.append(digest)
    return out
