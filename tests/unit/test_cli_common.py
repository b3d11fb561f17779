"""The CLI's error mapping: which exception becomes which exit code."""

from __future__ import annotations

import errno

import pytest

from hvcfilter.cli._common import ExitCode, guarded
from hvcfilter.errors import SpecError


def _exit_code(exc: BaseException) -> int | str | None:
    @guarded
    def command() -> None:
        raise exc

    with pytest.raises(SystemExit) as info:
        command()
    return info.value.code


def test_deliberate_errors_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_code(SpecError("bad spec")) == ExitCode.USAGE
    assert capsys.readouterr().err == "hvcfilter: error: bad spec\n"


def test_unexpected_errors_are_internal_without_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _exit_code(ZeroDivisionError("oops")) == ExitCode.INTERNAL
    err = capsys.readouterr().err
    assert "internal error: ZeroDivisionError: oops" in err and "Traceback" not in err


def test_a_closed_pipe_ends_like_sigpipe_not_like_findings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Keep the test runner's own stdout: the handler points fd 1 at /dev/null.
    monkeypatch.setattr("os.dup2", lambda *_: None)
    assert _exit_code(BrokenPipeError()) == 141


def test_interrupt_is_130(capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_code(KeyboardInterrupt()) == 130


def test_a_full_disk_on_stdout_is_unwritable_output_not_an_internal_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # What writing to `> /dev/full` raises.
    assert _exit_code(OSError(errno.ENOSPC, "No space left on device")) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert (
        err == "hvcfilter: error: cannot write standard output: no space left on the device; "
        "free some space, or write elsewhere\n"
    )


def test_other_os_errors_stay_internal() -> None:
    assert _exit_code(OSError(errno.EBADF, "Bad file descriptor")) == ExitCode.INTERNAL
