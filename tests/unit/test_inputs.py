"""Small inputs: read whole, size-capped; why one cannot be read is said with its fix."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hvcfilter import inputs
from hvcfilter.inputs import (
    EmptyStreamError,
    InputTooLargeError,
    read_failure,
    read_input,
    unreadable,
)


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda p: p / "missing.toml", "no such file; check the path"),
        (lambda p: p, "is a directory; name a file in it"),
        (lambda p: p / "file" / "x", "a part of the path is not a directory; check the path"),
    ],
    ids=["missing", "directory", "file-as-directory"],
)
def test_an_unreadable_input_is_told_with_its_fix(
    tmp_path: Path, make: Callable[[Path], Path], said: str
) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError) as caught:
        make(tmp_path).read_bytes()
    assert unreadable(caught.value) == said


def test_other_read_failures_keep_the_c_library_reason_without_a_made_up_fix() -> None:
    # EIO has no fix to suggest; its reason reads mid-sentence, lower-cased.
    assert read_failure(OSError(5, "Input/output error")) == ("input/output error", None)
    assert unreadable(OSError(5, "Input/output error")) == "input/output error"


def test_an_input_over_the_cap_is_refused_unread_past_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inputs, "MAX_INPUT", 8)
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * 9)
    with pytest.raises(InputTooLargeError) as caught:
        read_input(str(big))
    assert unreadable(caught.value).startswith(
        "larger than 256 MiB, which hvcfilter reads at most;"
    )
    (tmp_path / "ok.toml").write_bytes(b"#" * 8)
    assert read_input(str(tmp_path / "ok.toml")) == b"#" * 8


def test_standard_input_is_capped_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # An endless stream (yes | hvcfilter check -) stops at the cap, not at the memory's end.
    class Endless(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
            buffer[:] = b"y" * len(buffer)
            return len(buffer)

    monkeypatch.setattr(inputs, "MAX_INPUT", 1 << 16)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(Endless())))  # type: ignore[type-var]
    with pytest.raises(InputTooLargeError):
        read_input("-")


def test_empty_standard_input_is_refused_but_an_empty_file_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `git show HEAD:new.toml | hvcfilter simulate --baseline -` fed nothing, and the
    # baseline was an empty table without a word; an empty file is a spec (HVF208).
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    with pytest.raises(EmptyStreamError) as caught:
        read_input("-")
    assert unreadable(caught.value) == (
        "it is empty; the command that feeds it wrote nothing (did it fail?); "
        "an input meant to be empty goes as a file"
    )
    (tmp_path / "empty.toml").write_bytes(b"")
    assert read_input(str(tmp_path / "empty.toml")) == b""
