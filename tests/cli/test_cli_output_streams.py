"""Standard output that is closed, goes away, or takes only part of a write: real processes.

These run ``python -m hvcfilter`` as a child, because what they test is the
process's own descriptor 1 (a closed one, a pipe whose reader left), which
click's test runner replaces with a buffer.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest
from suite_paths import ROOT

EXAMPLES = ROOT / "examples"
SAMPLE = ROOT / "tests" / "traces" / "sample-6.12.txt"


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


def _run_with_stdout_closed(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hvcfilter", *args],
        stdin=subprocess.DEVNULL,
        stdout=None,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        preexec_fn=lambda: os.close(1),  # `>&-`: the child starts without a descriptor 1
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["check", str(EXAMPLES / "lockdown.toml")],  # the fast path
        ["explain", "HVF201"],
        ["compile", str(EXAMPLES / "lockdown.toml"), "--format", "hex"],
        ["schema"],
        ["--version"],
    ],
    ids=lambda a: a[0],
)
def test_a_closed_stdout_is_unwritable_output_not_an_internal_error(args: list[str]) -> None:
    result = _run_with_stdout_closed(*args)
    assert result.returncode == 2, result.stderr
    assert result.stderr == "hvcfilter: error: cannot write standard output: it is closed\n"


def test_a_command_that_writes_nothing_to_stdout_still_runs_with_it_closed(
    tmp_path: Path,
) -> None:
    target = tmp_path / "hvcfilter.toml"
    result = _run_with_stdout_closed("init", str(target))
    assert result.returncode == 0, result.stderr
    assert target.is_file()


def _run_into_a_reader_that_leaves(args: list[str], *, keep: int, **env: str) -> int:
    """Run the command into a pipe, read ``keep`` bytes, close the pipe; the exit code."""
    child = subprocess.Popen(
        [sys.executable, "-m", "hvcfilter", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=_env(**env),
    )
    assert child.stdout is not None
    if keep:
        child.stdout.read(keep)
    child.stdout.close()
    return child.wait(timeout=60)


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["check", "--help"]])
def test_help_and_version_into_a_closed_pipe_exit_141_not_1(args: list[str]) -> None:
    # click answers these while parsing; a broken pipe there used to exit 1 ("findings").
    assert _run_into_a_reader_that_leaves(args, keep=0) == 141


def test_a_partial_write_under_pythonunbuffered_is_not_a_silent_success(tmp_path: Path) -> None:
    # With PYTHONUNBUFFERED, stdout's binary layer is a raw FileIO whose write may
    # take part of the data; the rest was dropped and the command exited 0.
    payload = tmp_path / "many.bin"
    record = (0x1000).to_bytes(4, "little") + (1).to_bytes(4, "little") + b"\x01" + bytes(15)
    payload.write_bytes(b"".join(
        (0x1000 + 2 * i).to_bytes(4, "little") + record[4:] for i in range(20_000)
    ))  # fmt: skip
    code = _run_into_a_reader_that_leaves(
        ["decompile", str(payload), "--kernel", "6.12"], keep=100, PYTHONUNBUFFERED="1"
    )
    assert code == 141


def test_a_report_cut_off_under_pythonunbuffered_exits_141(tmp_path: Path) -> None:
    # diff prints its report through click and a TextIOWrapper, which under
    # PYTHONUNBUFFERED sat on a raw FileIO and dropped the untaken part of a
    # write: the cut-off report exited 1 (findings) as if it had been read.
    old, new = tmp_path / "old.toml", tmp_path / "new.toml"
    head = '[filter]\nkernel = "6.12"\n'
    ranges = "".join(
        f'[[range]]\nbase = {0x1000 + 4 * i}\nnr_functions = {{n}}\naction = "deny"\n'
        for i in range(5_000)
    )
    old.write_text(head + ranges.replace("{n}", "1"))
    new.write_text(head + ranges.replace("{n}", "2"))
    code = _run_into_a_reader_that_leaves(
        ["diff", str(old), str(new)], keep=100, PYTHONUNBUFFERED="1"
    )
    assert code == 141


def _run_with_stdin_closed(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hvcfilter", *args],
        stdin=None,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        preexec_fn=lambda: os.close(0),  # `<&-`: the child starts without a descriptor 0
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["decompile", "-"],
        ["diff", "-", str(EXAMPLES / "lockdown.toml")],
        ["compile", "-"],
        ["simulate", "-", "--spec", str(EXAMPLES / "lockdown.toml")],
        ["learn", "-"],
        ["learn", str(SAMPLE), "--against", "-"],
        ["simulate", str(SAMPLE), "--spec", "-"],
        ["simulate", str(SAMPLE), "--payload", "-"],
        ["simulate", str(SAMPLE), "--baseline", "-"],
    ],
    ids=" ".join,
)
def test_a_closed_stdin_is_unreadable_input_not_an_internal_error(args: list[str]) -> None:
    result = _run_with_stdin_closed(*args)
    assert result.returncode == 2, result.stderr
    # Said once: not "cannot use spec -: <stdin>: cannot read <stdin>: ...".
    what = next((f"{a[2:]} " for a in args if a in ("--payload", "--baseline")), "")
    if args[0] == "compile":  # a spec's problems are diagnostics, in check's format
        assert "error HVF001 unreadable-file: cannot read <stdin>: it is closed" in result.stderr
    else:
        said = f"hvcfilter: error: cannot read {what}<stdin>: it is closed\n"
        assert result.stderr.endswith(said)


def test_a_command_that_reads_no_stdin_still_runs_with_it_closed() -> None:
    result = _run_with_stdin_closed("check", str(EXAMPLES / "lockdown.toml"))
    assert result.returncode == 0, result.stderr


def _many_records(tmp_path: Path) -> Path:
    payload = tmp_path / "many.bin"
    record = (1).to_bytes(4, "little") + b"\x01" + bytes(15)
    payload.write_bytes(
        b"".join((0x1000 + 2 * i).to_bytes(4, "little") + record for i in range(20_000))
    )
    return payload


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("unbuffered", ["1", ""])
@pytest.mark.parametrize(
    "args",
    [["explain", "HVF201"], ["compile", str(EXAMPLES / "lockdown.toml"), "--format", "hex"]],
    ids=lambda a: a[0],
)
def test_a_full_disk_on_stdout_is_exit_2_not_120(args: list[str], unbuffered: str) -> None:
    # Output left in the buffer failed again at exit: "Exception ignored", exit 120.
    with open("/dev/full", "wb") as full:
        result = subprocess.run(
            [sys.executable, "-m", "hvcfilter", *args],
            stdin=subprocess.DEVNULL,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(PYTHONUNBUFFERED=unbuffered),
            check=False,
            timeout=60,
        )
    assert result.returncode == 2, result.stderr
    assert (
        result.stderr
        == "hvcfilter: error: cannot write standard output: no space left on the device; "
        "free some space, or write elsewhere\n"
    )


@pytest.mark.parametrize("unbuffered", ["1", ""])
def test_a_non_blocking_stdout_that_fills_gets_all_the_output(
    tmp_path: Path, unbuffered: str
) -> None:
    import fcntl
    import time

    payload = _many_records(tmp_path)
    argv = [sys.executable, "-m", "hvcfilter", "decompile", str(payload), "--kernel", "6.12"]
    expected = subprocess.run(argv, capture_output=True, env=_env(), check=False, timeout=60)
    assert expected.returncode == 0 and len(expected.stdout) > 1 << 17  # more than a pipe holds
    read_end, write_end = os.pipe()
    flags = fcntl.fcntl(write_end, fcntl.F_GETFL)
    fcntl.fcntl(write_end, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    with subprocess.Popen(
        argv, stdout=write_end, stderr=subprocess.PIPE, env=_env(PYTHONUNBUFFERED=unbuffered)
    ) as child:
        os.close(write_end)
        time.sleep(1.0)  # let the pipe fill while nobody reads
        with os.fdopen(read_end, "rb") as pipe:
            got = pipe.read()
        _, error = child.communicate(timeout=60)
    assert child.returncode == 0, error
    assert got == expected.stdout


def _hvcfilter(
    *args: str, stdin: IO[bytes] | int = subprocess.DEVNULL
) -> subprocess.CompletedProcess[str]:
    """``python -m hvcfilter ARGS`` as a child whose descriptor 0 is ``stdin``."""
    return subprocess.run(
        [sys.executable, "-m", "hvcfilter", *args],
        stdin=stdin,
        capture_output=True,
        text=True,
        env=_env(),
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("command", "make_input"),
    [
        ("compile", lambda p: (EXAMPLES / "minimal.toml").read_bytes()),
        ("check", lambda p: (EXAMPLES / "minimal.toml").read_bytes()),
        ("decompile", lambda p: (ROOT / "tests" / "golden" / "minimal.bin").read_bytes()),
    ],
)
def test_output_onto_the_file_redirected_to_stdin_is_refused(
    tmp_path: Path, command: str, make_input: Callable[[Path], bytes]
) -> None:
    # `compile - -o s.toml < s.toml` replaced the spec with its payload: the guard
    # compared -o with named inputs only. A real process: its descriptor 0 is the file.
    target = tmp_path / "input"
    original = make_input(tmp_path)
    target.write_bytes(original)
    with target.open("rb") as stdin:
        done = _hvcfilter(command, "-", "-o", str(target), stdin=stdin)
    assert done.returncode == 2, done.stderr
    assert (
        done.stderr
        == f"hvcfilter: error: refusing to overwrite input <stdin> with output {target}\n"
    )
    assert target.read_bytes() == original


def test_output_next_to_a_redirected_stdin_is_still_written(tmp_path: Path) -> None:
    spec = tmp_path / "vm.toml"
    spec.write_bytes((EXAMPLES / "minimal.toml").read_bytes())
    with spec.open("rb") as stdin:
        done = _hvcfilter("compile", "-", "-o", str(tmp_path / "vm.bin"), stdin=stdin)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "vm.bin").read_bytes() == (
        ROOT / "tests" / "golden" / "minimal.bin"
    ).read_bytes()


@pytest.mark.parametrize("command", ["check", "compile", "decompile", "schema"])
def test_an_output_name_too_long_is_unwritable_not_an_internal_error(
    tmp_path: Path, command: str
) -> None:
    source = (
        ROOT / "tests" / "golden" / "minimal.bin"
        if command == "decompile"
        else EXAMPLES / "minimal.toml"
    )
    args = [command] if command == "schema" else [command, str(source)]
    long_name = str(tmp_path / ("a" * 300))
    done = _hvcfilter(*args, "-o", long_name)
    assert done.returncode == 2, done.stderr
    assert (
        done.stderr
        == f"hvcfilter: error: cannot write {long_name}: file name too long for the file system; "
        "use a shorter name\n"
    )


def test_sigterm_exits_143_and_leaves_no_temporary_copy(tmp_path: Path) -> None:
    # `timeout 20 hvcfilter learn -` on an endless stream was killed by the default
    # action, and its temporary copy (5.3 GB in the audit) stayed behind.
    import signal
    import time

    temp = tmp_path / "tmp"
    temp.mkdir()
    learner = subprocess.Popen(
        [sys.executable, "-m", "hvcfilter", "learn", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(TMPDIR=str(temp)),
    )
    assert learner.stdin is not None
    line = SAMPLE.read_bytes()
    for _ in range(200):  # until learn is copying standard input to its temporary file
        learner.stdin.write(line)
        learner.stdin.flush()
        if list(temp.iterdir()):
            break
        time.sleep(0.05)
    assert list(temp.iterdir()), "learn made no temporary copy"
    learner.send_signal(signal.SIGTERM)
    learner.stdin.close()
    assert learner.wait(timeout=30) == 143
    assert list(temp.iterdir()) == []


def test_a_scan_child_stopped_by_sigterm_never_runs_the_parents_exit_path(
    tmp_path: Path,
) -> None:
    # With SIGTERM turned into SystemExit, a forked scan child that its failing parent
    # stopped unwound the parent's copied stack: its finally blocks and atexit handlers.
    trace = tmp_path / "t.txt"
    head = SAMPLE.read_bytes()
    trace.write_bytes(head + b"x" * 9000 + b"\n" + head * 400)
    script = (
        "import atexit, os, sys\n"
        "parent = os.getpid()\n"
        "def said():\n"
        "    if os.getpid() != parent:\n"
        "        print('CHILD-ATEXIT', file=sys.stderr)\n"
        "atexit.register(said)\n"
        "from hvcfilter.cli._common import exit_on_sigterm\n"
        "from hvcfilter.errors import TraceError\n"
        "from hvcfilter.trace import parallel, sources, tally\n"
        "exit_on_sigterm()\n"
        "sources.CHUNK, sources.MAX_LINE = 1024, 8192\n"
        "parallel._PARALLEL_MIN, parallel._SPLIT_GUARD = 1, 0\n"
        "parallel._workers = lambda: 2\n"
        "try:\n"
        f"    tally([{str(trace)!r}])\n"
        "except TraceError as exc:\n"
        "    print('REFUSED', exc, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=_env(),
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "REFUSED" in done.stderr and "longer than 0 MiB" in done.stderr
    assert "CHILD-ATEXIT" not in done.stderr
