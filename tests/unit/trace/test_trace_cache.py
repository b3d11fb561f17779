"""The tally cache: an unchanged large trace is not read again; anything doubtful is read again."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest
from suite_paths import TRACES

from hvcfilter import trace
from hvcfilter.trace import TallyCache, TraceTally, cache, default_cache

SAMPLE = TRACES / "sample-6.12.txt"
MALFORMED = TRACES / "malformed.txt"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TallyCache:
    monkeypatch.setattr(cache, "MIN_SIZE", 0)  # the sample traces are small
    return TallyCache(tmp_path / "cache")


def _unreadable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any real read of a trace fail, so that a result can only come from the cache."""

    def fail(*_args: object) -> None:
        raise AssertionError("the trace was read again")

    monkeypatch.setattr(trace, "ftrace_tally", fail)
    monkeypatch.setattr(trace, "_record_reader", lambda _fmt: fail)


def _copy(source: Path, target: Path) -> Path:
    target.write_bytes(source.read_bytes())
    return target


def test_an_unchanged_trace_is_tallied_once(
    tmp_path: Path, store: TallyCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _copy(MALFORMED, tmp_path / "t.txt")  # calls, SMC traps and bad lines
    first = trace.tally([str(path)], cache=store)
    assert first.skipped and first.calls and first.bad_lines
    _unreadable(monkeypatch)
    assert trace.tally([str(path)], cache=store) == first


def test_the_kept_tally_takes_the_name_the_trace_is_given_now(
    tmp_path: Path, store: TallyCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _copy(MALFORMED, tmp_path / "t.txt")
    trace.tally([str(path)], cache=store)
    link = tmp_path / "same-file.txt"
    link.symlink_to(path)
    _unreadable(monkeypatch)
    again = trace.tally([str(link)], cache=store)
    assert {b.source for b in again.bad_lines} == {str(link)}
    assert list(again.formats) == [str(link)]


def test_a_trace_rewritten_in_place_with_its_size_and_mtime_is_read_again(
    tmp_path: Path, store: TallyCache
) -> None:
    # The change time cannot be set back: an edit that restores size and mtime still counts.
    path = _copy(SAMPLE, tmp_path / "t.txt")
    before = trace.tally([str(path)], cache=store)
    st = path.stat()
    text = path.read_bytes()
    edited = text.replace(b"r0: 0x0000000084000000", b"r0: 0x0000000084000001", 1)
    assert edited != text and len(edited) == len(text)
    path.write_bytes(edited)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = trace.tally([str(path)], cache=store)
    assert after != before
    assert after == trace.tally([str(path)])  # what a read without the cache counts


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # torn
        lambda text: text.replace('"lines":', '"lines":-', 1),  # a negative count
        lambda text: text.replace('"hvc"', '"xyz"', 1),  # no conduit
        lambda text: "[]",  # not an entry
        # Another trace's entry under this name: its counts must not be taken.
        lambda text: text.replace('"key":"', '"key":"0', 1).replace('"lines":', '"lines":1', 1),
    ],
)
def test_a_damaged_entry_is_ignored_and_written_again(
    tmp_path: Path, store: TallyCache, damage: object
) -> None:
    path = _copy(SAMPLE, tmp_path / "t.txt")
    honest = trace.tally([str(path)], cache=store)
    (entry,) = store.directory.glob("*.json")
    assert callable(damage)
    entry.write_text(damage(entry.read_text()))
    assert trace.tally([str(path)], cache=store) == honest
    assert json.loads(entry.read_text())["lines"] == honest.lines  # rewritten whole


def test_an_entry_others_could_write_is_not_trusted(
    tmp_path: Path, store: TallyCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _copy(SAMPLE, tmp_path / "t.txt")
    trace.tally([str(path)], cache=store)
    (entry,) = store.directory.glob("*.json")
    entry.chmod(0o666)
    fd = os.open(path, os.O_RDONLY)
    key = store.key(fd, "ftrace")
    os.close(fd)
    assert key is not None and store.get(key, "t") is None
    entry.chmod(0o600)
    assert store.get(key, "t") is not None  # the same entry, trusted once only its owner writes it


def test_stdin_and_small_files_are_never_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import sys

    store = TallyCache(tmp_path / "cache")  # MIN_SIZE as shipped: the sample is far smaller
    trace.tally([str(SAMPLE)], cache=store)
    monkeypatch.setattr(cache, "MIN_SIZE", 0)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(SAMPLE.read_bytes())))
    trace.tally(["-"], cache=store)
    assert not store.directory.exists()


def test_a_compressed_trace_is_kept_by_its_file(
    tmp_path: Path, store: TallyCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.txt.gz"
    path.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    first = trace.tally([str(path)], cache=store)
    _unreadable(monkeypatch)
    assert trace.tally([str(path)], cache=store) == first


def test_the_cache_keeps_the_entries_used_last(
    tmp_path: Path, store: TallyCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache, "MAX_ENTRIES", 2)
    paths = [_copy(SAMPLE, tmp_path / f"t{i}.txt") for i in range(3)]
    for path in paths:
        trace.tally([str(path)], cache=store)
    assert len(list(store.directory.glob("*.json"))) == 2
    _unreadable(monkeypatch)
    trace.tally([str(paths[2])], cache=store)  # the newest is still there


def test_a_directory_that_cannot_be_written_only_costs_the_cache(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    store = TallyCache(blocker / "cache")
    assert trace.tally([str(SAMPLE)], cache=store) == trace.tally([str(SAMPLE)])


def test_other_parser_code_is_another_cache(
    tmp_path: Path, store: TallyCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A checkout's edit keeps the version string: the parser files' own times decide.
    path = _copy(SAMPLE, tmp_path / "t.txt")
    fd = os.open(path, os.O_RDONLY)
    room = tmp_path / "room"
    room.mkdir()
    (room / "ftrace.py").write_text("# parser")
    monkeypatch.setattr(cache, "__file__", str(room / "cache.py"))
    monkeypatch.setattr(cache, "_fingerprint", None)
    before = store.key(fd, "ftrace")
    (room / "ftrace.py").write_text("# parser, edited")
    monkeypatch.setattr(cache, "_fingerprint", None)
    assert store.key(fd, "ftrace") != before
    os.close(fd)


def test_where_the_cache_lives(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HVCFILTER_CACHE_DIR", "")
    assert default_cache() is None
    monkeypatch.setenv("HVCFILTER_CACHE_DIR", str(tmp_path))
    found = default_cache()
    assert found is not None and found.directory == tmp_path
    monkeypatch.delenv("HVCFILTER_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    found = default_cache()
    assert found is not None and found.directory == tmp_path / "xdg" / "hvcfilter" / "traces"


def test_a_cached_tally_merges_as_a_read_one_does(tmp_path: Path, store: TallyCache) -> None:
    # Two files, the second from the cache: bad lines and counts as if both were read.
    a, b = _copy(MALFORMED, tmp_path / "a.txt"), _copy(SAMPLE, tmp_path / "b.txt")
    trace.tally([str(b)], cache=store)
    mixed = trace.tally([str(a), str(b)], cache=store)
    plain = trace.tally([str(a), str(b)])
    assert mixed == plain
    assert isinstance(mixed, TraceTally)


def test_eviction_touches_only_the_caches_own_entries(
    tmp_path: Path, store: TallyCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    # HVCFILTER_CACHE_DIR may be a directory of the user's: their JSON files stay.
    monkeypatch.setattr(cache, "MAX_ENTRIES", 1)
    store.directory.mkdir()
    mine = [store.directory / f"config{i}.json" for i in range(5)]
    for path in mine:
        path.write_text("{}")
    (store.directory / f"{'a' * 40}.json").symlink_to(tmp_path / "gone")  # dangling
    for i in range(3):
        trace.tally([str(_copy(SAMPLE, tmp_path / f"t{i}.txt"))], cache=store)
    assert all(path.exists() for path in mine)
    entries = [p for p in store.directory.iterdir() if cache._ENTRY.fullmatch(p.name)]
    assert len(entries) == 1  # the dangling link did not stop eviction


@pytest.mark.parametrize("plant", ["fifo", "symlink", "huge"])
def test_a_planted_entry_is_not_read(
    tmp_path: Path, store: TallyCache, monkeypatch: pytest.MonkeyPatch, plant: str
) -> None:
    # A FIFO under an entry's name hung simulate; a link to a huge file was read whole.
    path = _copy(SAMPLE, tmp_path / "t.txt")
    honest = trace.tally([str(path)])
    fd = os.open(path, os.O_RDONLY)
    key = store.key(fd, "ftrace")
    os.close(fd)
    assert key is not None
    store.directory.mkdir()
    entry = store.directory / f"{key}.json"
    if plant == "fifo":
        os.mkfifo(entry)
    elif plant == "symlink":
        target = tmp_path / "elsewhere.json"
        target.write_text("{}")
        entry.symlink_to(target)
    else:
        monkeypatch.setattr(cache, "_MAX_ENTRY", 16)
        entry.write_text(" " * 17 + "{}")
    assert store.get(key, str(path)) is None
    if plant != "fifo":  # a FIFO cannot be replaced by the rename, and need not be
        assert trace.tally([str(path)], cache=store) == honest


def test_no_cache_without_a_usable_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HVCFILTER_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # ignored, as the XDG spec says
    monkeypatch.setenv("HOME", "")  # would read as "/"
    assert default_cache() is None
