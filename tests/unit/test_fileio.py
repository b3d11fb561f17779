"""Atomic output files: never a partial file, never an input, never a replaced device or link."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from hvcfilter.fileio import OutputError, write_atomic


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


def test_missing_directory_is_an_output_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="cannot write"):
        write_atomic(tmp_path / "nowhere" / "out.bin", b"x")


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
