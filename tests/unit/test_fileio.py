"""Atomic output files: never a partial file, never an input, never a replaced device or link."""

from __future__ import annotations

import errno
import os
import stat
import threading
from pathlib import Path

import pytest

from hvcfilter.fileio import OutputError, write_atomic, write_failure


def test_writes_and_replaces_a_regular_file(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_refuses_to_overwrite_an_input(tmp_path: Path) -> None:
    source = tmp_path / "spec.toml"
    source.write_bytes(b"spec")
    with pytest.raises(OutputError, match="refusing to overwrite input"):
        write_atomic(source, b"report", inputs=[source])
    assert source.read_bytes() == b"spec"


def test_missing_directory_is_an_output_error_that_names_it(tmp_path: Path) -> None:
    target = tmp_path / "nowhere" / "out.bin"
    with pytest.raises(OutputError) as caught:
        write_atomic(target, b"x")
    assert str(caught.value) == (
        f"cannot write {target}: no directory {tmp_path / 'nowhere'}; create it first"
    )


def test_a_directory_as_the_target_is_told_to_name_a_file(tmp_path: Path) -> None:
    with pytest.raises(OutputError) as caught:
        write_atomic(tmp_path, b"x")
    assert str(caught.value) == f"cannot write {tmp_path}: is a directory; name a file in it"


def test_a_file_as_a_directory_of_the_path_is_named_so(tmp_path: Path) -> None:
    (tmp_path / "afile").write_bytes(b"")
    target = tmp_path / "afile" / "out.bin"
    with pytest.raises(OutputError) as caught:
        write_atomic(target, b"x")
    assert str(caught.value) == (
        f"cannot write {target}: a part of the path is not a directory; check the path"
    )


def test_a_dangling_link_names_the_directory_its_target_lacks(tmp_path: Path) -> None:
    # The link's own directory exists: the one to create is where it points.
    link = tmp_path / "out.bin"
    link.symlink_to(tmp_path / "nodir" / "x.bin")
    with pytest.raises(OutputError) as caught:
        write_atomic(link, b"x")
    assert str(caught.value) == (
        f"cannot write {link}: no directory {tmp_path / 'nodir'}; create it first"
    )


@pytest.mark.parametrize(
    ("exc", "said"),
    [
        (FileNotFoundError(errno.ENOENT, "No such file or directory"), "no such file or directory"),
        (PermissionError(errno.EACCES, "Permission denied"), "permission denied; check the "),
        (OSError(errno.ENOSPC, "No space left on device"), "no space left on the device; free "),
        (OSError(errno.EROFS, "Read-only file system"), "a read-only file system; write "),
        (OSError(errno.ELOOP, "Too many levels"), "too many levels of symbolic links; check "),
        (OSError(errno.EIO, "Input/output error"), "input/output error"),
    ],
)
def test_write_failures_read_mid_sentence(exc: OSError, said: str) -> None:
    # Standard output (no target) has no directory to blame for ENOENT.
    assert write_failure(exc).startswith(said)


def test_a_symlink_keeps_pointing_at_the_new_content(tmp_path: Path) -> None:
    real = tmp_path / "real.bin"
    real.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to(real.name)
    write_atomic(link, b"new")
    assert link.is_symlink()
    assert real.read_bytes() == b"new"


def test_a_fifo_is_written_in_place_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    write_atomic(fifo, b"payload")
    reader.join(timeout=10)
    assert received == [b"payload"]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
