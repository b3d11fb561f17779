"""The lab's QEMU runner leaves no process behind, whatever interrupts its wait."""

from __future__ import annotations

import selectors
import subprocess
import sys
from typing import Any

import pytest

from hvcfilter.lab import runner


class _InterruptedSelector:
    """A selector whose first wait is interrupted, as by Ctrl-C."""

    def register(self, *_: Any) -> None:
        pass

    def select(self, timeout: float) -> list[Any]:
        raise KeyboardInterrupt

    def close(self) -> None:
        pass


def test_an_interrupted_wait_kills_the_child(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = real_popen(*args, **kwargs)
        started.append(proc)
        return proc

    monkeypatch.setattr(subprocess, "Popen", popen)
    monkeypatch.setattr(selectors, "DefaultSelector", _InterruptedSelector)
    with pytest.raises(KeyboardInterrupt):
        runner._boot([sys.executable, "-c", "import time; time.sleep(60)"], 120.0)
    (proc,) = started
    assert proc.poll() is not None  # killed and reaped, not left sleeping
