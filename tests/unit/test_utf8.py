"""Text for UTF-8 documents: every undecodable byte or lone surrogate shows as U+FFFD."""

from __future__ import annotations

import json

from hvcfilter.utf8 import json_text, utf8_document, valid_unicode


def test_a_file_names_undecodable_byte_is_one_replacement_character() -> None:
    name = b"trace-\xfe.txt".decode("utf-8", "surrogateescape")
    assert valid_unicode(name) == "trace-\ufffd.txt"


def test_a_lone_surrogate_beside_an_escaped_byte_is_one_replacement_character_each() -> None:
    # A JSON input's "\ud800" is no escaped byte; the fallback once encoded the
    # whole text with surrogatepass and gave each surrogate three U+FFFD.
    text = "a\ud800b" + b"\xfe".decode("utf-8", "surrogateescape") + "c"
    assert valid_unicode(text) == "a\ufffdb\ufffdc"


def test_documents_are_strict_utf8_and_json_has_no_surrogate_escape() -> None:
    text = "x\udcfe\ud800y"
    assert utf8_document(text).decode("utf-8") == "x\ufffd\ufffdy"
    encoded = json_text({"file": text})
    assert "\\ud" not in encoded
    assert json.loads(encoded) == {"file": "x\ufffd\ufffdy"}


def test_visible_escapes_what_would_drive_a_terminal_and_keeps_the_rest() -> None:
    from hvcfilter.utf8 import visible

    assert visible("plain name.toml") == "plain name.toml"
    assert visible("x\x1b[31mRED\x07") == "x\\x1b[31mRED\\x07"
    assert visible("a\u202eb\x85c") == "a\\u202eb\\x85c"  # a bidi override, a C1 control
    assert visible("tab\there\nnext") == "tab\there\nnext"
    # A file name that is not UTF-8 keeps its bytes, printed as they are by surrogateescape.
    assert visible("caf\udce9.toml") == "caf\udce9.toml"
