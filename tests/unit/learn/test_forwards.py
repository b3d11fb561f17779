"""Which traced HVCs were forwarded (learn.forwards), and inputs that can be read only once."""

from __future__ import annotations

import io
import os
import sys
import threading
from pathlib import Path

import pytest
from suite_paths import TRACES

from hvcfilter.learn.forwards import forwarded_calls
from hvcfilter.learn.run import tally_traces

_EXIT = "kvm_exit: TRAP: HSR_EC: 0x{ec:04x} (X), PC: 0x0000000040000028"
_HVC = "kvm_hvc_arm64: HVC at 0x0000000040000028 (r0: 0x{x0:016x}, imm: 0x0)"
_FWD = "kvm_userspace_exit: reason KVM_EXIT_HYPERCALL (3)"


def _trace(tmp_path: Path, events: list[str], *, tgid: bool = False) -> str:
    head = "    vmm-138     (    138) [000] ....." if tgid else "    vmm-138     [000] ....."
    lines = [f"{head}     2.{i:06d}: {e}" for i, e in enumerate(events)]
    path = tmp_path / "t.txt"
    path.write_text("# tracer: nop\n" + "\n".join(lines) + "\n")
    return str(path)


def test_a_forward_is_found_in_the_record_tgid_layout(tmp_path: Path) -> None:
    # The "(tgid)" column hid the pid, so no forward was ever found in such traces.
    events = [_EXIT.format(ec=0x16), _HVC.format(x0=0xC200_0005), _FWD]
    assert forwarded_calls(_trace(tmp_path, events, tgid=True)) == {0xC200_0005: 1}


def test_a_later_trap_is_not_the_hvcs_forward(tmp_path: Path) -> None:
    # Without kvm_entry events: a handled HVC, then an SMC (no ID) that is forwarded.
    events = [_EXIT.format(ec=0x16), _HVC.format(x0=0x8400_0000), _EXIT.format(ec=0x17), _FWD]
    assert forwarded_calls(_trace(tmp_path, events)) == {}


def _forwards(tally: object) -> set[int]:
    return {fid for fid, _conduit, outcome in tally.calls if outcome == "forwarded"}  # type: ignore[attr-defined]


def test_a_fifo_is_read_once_and_keeps_its_forwards(tmp_path: Path) -> None:
    # The second pass over a FIFO waited for a writer forever; over a pipe it found nothing.
    fifo = tmp_path / "trace.fifo"
    os.mkfifo(fifo)
    data = (TRACES / "sample-6.12.txt").read_bytes()
    threading.Thread(target=lambda: fifo.write_bytes(data), daemon=True).start()
    result: list[object] = []
    # In a thread of its own, so that a regression fails the test instead of hanging it.
    learner = threading.Thread(
        target=lambda: result.append(tally_traces([str(fifo)], kernel="6.12")), daemon=True
    )
    learner.start()
    learner.join(timeout=30)
    assert result, "learn blocked on the FIFO"
    (tally,) = result
    assert _forwards(tally) == {0xC200_0005}
    assert tally.traces == (str(fifo),)  # type: ignore[attr-defined]


def test_standard_input_keeps_its_forwards(monkeypatch: pytest.MonkeyPatch) -> None:
    data = (TRACES / "sample-6.12.txt").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    tally = tally_traces(["-"], kernel="6.12")
    assert _forwards(tally) == {0xC200_0005}
    assert tally.traces == ("<stdin>",)
