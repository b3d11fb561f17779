"""Text for documents that must be valid UTF-8: C, Rust, JSON, TOML, XML.

A file name that is not UTF-8 reaches Python with its undecodable bytes as
surrogates (PEP 383). Reports for people print the name's own bytes; the
documents here cannot hold them, so they show U+FFFD instead of failing or
writing what a strict parser refuses.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["json_text", "utf8_document", "valid_unicode", "visible"]


def valid_unicode(text: str) -> str:
    """``text`` with each undecodable byte of a file name as U+FFFD.

    A file name that is not UTF-8 reaches Python with its bytes as surrogates
    (PEP 383), which UTF-8 cannot hold: a document that must be valid UTF-8
    (C, Rust, JSON, TOML, XML) shows U+FFFD there rather than failing.
    """
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a lone surrogate from elsewhere (a JSON input's "\ud800")
        # One U+FFFD for it; the escaped bytes beside it are replaced as above.
        # (surrogatepass would give each of them three: one per byte of its encoding.)
        import re

        plain = re.sub("[\ud800-\udc7f\udd00-\udfff]", "\ufffd", text)
        return plain.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def json_text(document: object, **options: Any) -> str:
    """``json.dumps(document, **options)`` with file names' undecodable bytes as U+FFFD.

    ``json.dumps`` writes a file name's surrogates (see :func:`valid_unicode`)
    as ``\\udcfe`` escapes, which strict parsers (serde_json, Go's
    encoding/json) refuse as lone surrogates. Only a text holding a ``\\ud``
    escape is looked at again, so a plain document costs one extra scan.
    """
    text = json.dumps(document, **options)
    if "\\ud" not in text:
        return text
    return json.dumps(_valid_strings(document), **options)


def _valid_strings(value: object) -> object:
    if isinstance(value, str):
        return valid_unicode(value)
    if isinstance(value, dict):
        return {_valid_strings(k): _valid_strings(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_valid_strings(v) for v in value]
    return value


def utf8_document(text: str) -> bytes:
    """``text`` as valid UTF-8 (see :func:`valid_unicode`)."""
    return valid_unicode(text).encode("utf-8")


def visible(text: str) -> str:
    """``text`` with control and format characters written as escapes (``\\x1b``, ``\\u202e``).

    Names and lines from anywhere reach a terminal: printed as they are, an
    ESC sequence in a file name or a trace line would drive the terminal that
    shows the report, and a bidi override would make it read as something
    else. Tabs and newlines stay, and so do a file name's undecodable bytes
    (surrogates), which reports for people print as the bytes they are.
    """
    if text.isprintable():
        return text
    return "".join(
        char
        if char.isprintable() or char in "\t\n" or "\udc80" <= char <= "\udcff"
        else (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")
        for char in text
    )
