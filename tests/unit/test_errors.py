"""errno names as every report prints them; why an input cannot be read, with its fix."""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

import pytest

from hvcfilter.errors import errno_name, read_failure, unreadable


def test_errno_names() -> None:
    assert errno_name(errno.EEXIST) == "EEXIST"
    assert errno_name(errno.EBUSY) == "EBUSY"
    assert errno_name(0) == "0"
    assert errno_name(9999) == "9999"


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
