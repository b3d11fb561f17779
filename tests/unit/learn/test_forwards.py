"""Which traced HVCs were forwarded (learn.forwards), and inputs that can be read only once."""

from __future__ import annotations

import gzip
import io
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from suite_paths import TRACES

from hvcfilter.learn import forwards
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


@pytest.mark.parametrize("kernel", ["6.12.95", "7.2.13"])
def test_a_real_record_tgid_trace_keeps_its_forward(kernel: str) -> None:
    # The lab's capture with record-tgid on, a fwd_to_user range over 0xC2000000+0x100.
    assert forwarded_calls(str(TRACES / f"record-tgid-{kernel}.txt")) == {0xC200_0005: 1}


def test_a_later_trap_is_not_the_hvcs_forward(tmp_path: Path) -> None:
    # Without kvm_entry events: a handled HVC, then an SMC (no ID) that is forwarded.
    events = [_EXIT.format(ec=0x16), _HVC.format(x0=0x8400_0000), _EXIT.format(ec=0x17), _FWD]
    assert forwarded_calls(_trace(tmp_path, events)) == {}


def test_an_interrupted_run_after_an_hvc_ends_it_as_handled(tmp_path: Path) -> None:
    # An HVC KVM handled, then KVM_RUN returned EINTR: 6.12.95 and 7.2.13 trace that
    # as "reason restart (4)" (the lab, a halted vCPU). A later HYPERCALL exit of the
    # same thread without a new HVC (an SMC's) is not that HVC's forward.
    restart = "kvm_userspace_exit: reason restart (4)"
    events = [_EXIT.format(ec=0x16), _HVC.format(x0=0x8400_0001), restart, _FWD]
    path = _trace(tmp_path, events)
    assert forwarded_calls(path) == {}
    assert forwards._forwards_by_line(path) == {}  # the line pass agrees with the read-back
    events = [_EXIT.format(ec=0x16), _HVC.format(x0=0xC200_0005), _FWD, restart]
    assert forwarded_calls(_trace(tmp_path, events)) == {0xC200_0005: 1}


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


def _random_trace(rng: random.Random, lines: int) -> bytes:
    """Threads interleaved, every event kind the line pass acts on, and decoys."""
    pids = [rng.choice((7, 138, 139, 1400, 99999)) for _ in range(3)]
    kinds = [
        _EXIT.format(ec=0x16),
        _EXIT.format(ec=0x17),
        "kvm_entry: PC: 0x0000000040000028",
        _FWD,
        _FWD,
        "kvm_userspace_exit: reason KVM_EXIT_MMIO (6)",
        f"{_FWD} KVM_EXIT_HYPERCALL",  # counted once
        "sched_switch: prev_comm=KVM_EXIT_HYPERCALL next_pid=1",
        "kvm_hvc_arm64: HVC at 0x1 (r0: 0x{x0:x}, imm: 0x0) kvm_userspace_exit KVM_EXIT_HYPERCALL",
        # Malformed: the tally skips it, so it neither starts nor ends a pending forward.
        "kvm_hvc_arm64: HVC at 0x1 (r0: 0x{x0:x}, imm: 0x12345) CORRUPTED",
        "# vmm-1 [000] 2.0: kvm_hvc_arm64: HVC at 0x1 (r0: 0x{x0:x}, imm: 0x0)",
    ]
    out = [b"\xef\xbb\xbf# tracer: nop\n"] if rng.random() < 0.3 else []
    for i in range(lines):
        pid = rng.choice(pids)
        roll = rng.random()
        if roll < 0.3:
            event = _HVC.format(x0=rng.choice((0x8400_0000, 0xC200_0005, 0xC600_0000)))
        elif roll < 0.95:
            event = rng.choice(kinds).format(x0=rng.randrange(1 << 32))
        else:
            out.append(b"garbage %d KVM_EXIT_HYPERCALL kvm_exit\n" % i)
            continue
        head = (
            f"    vmm-{pid}     [00{i % 4}] ....."
            if rng.random() < 0.8
            else f"  a-b-{pid} ({pid}) [000]"
        )
        pad = "x" * rng.choice((0, 0, 5000))  # lines longer than a read-back block
        out.append(f"{head}     2.{i:06d}: {event}{pad}\n".encode())
    data = b"".join(out)
    return data[:-1] if rng.random() < 0.3 else data  # a last line without its newline


@pytest.mark.parametrize("seed", range(40))
def test_reading_back_from_the_markers_finds_what_the_line_pass_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    # Small blocks, so that lines and markers straddle the reads. No budget: these
    # traces are dense with markers and long lines, and the walks, not the
    # fallback (tested below), are what is compared.
    monkeypatch.setattr(forwards, "_BLOCK", 1 << 10)
    monkeypatch.setattr(forwards, "_WALK_BLOCK", 64)
    monkeypatch.setattr(forwards, "_MIN_BUDGET", 1 << 40)
    rng = random.Random(seed)
    path = tmp_path / "t.txt"
    path.write_bytes(_random_trace(rng, rng.choice((1, 5, 200, 2000))))
    by_line = forwards._forwards_by_line(str(path))
    assert forwards._read_back_forwards(str(path)) == by_line
    assert forwarded_calls(str(path)) == by_line


def test_walks_over_budget_fall_back_to_the_line_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One thread's HVC, then thousands of another thread's lines, then its forward.
    lines = [f"    vmm-1     [000] .....     2.0: {_HVC.format(x0=0xC200_0005)}"]
    lines += [f"    vmm-2     [001] .....     2.{i}: kvm_entry: PC: 0x0" for i in range(5000)]
    lines += [f"    vmm-1     [000] .....     3.0: {_FWD}"] * 3
    path = tmp_path / "t.txt"
    path.write_text("\n".join(lines) + "\n")
    assert forwards._read_back_forwards(str(path)) == {0xC200_0005: 1}
    monkeypatch.setattr(forwards, "_MIN_BUDGET", -path.stat().st_size + 100 * 64)
    assert forwards._read_back_forwards(str(path)) is None
    assert forwarded_calls(str(path)) == {0xC200_0005: 1}  # the line pass decided


def test_compressed_traces_take_the_line_pass(tmp_path: Path) -> None:
    events = [_EXIT.format(ec=0x16), _HVC.format(x0=0xC200_0005), _FWD]
    plain = _trace(tmp_path, events)
    packed = tmp_path / "t.txt.gz"
    packed.write_bytes(gzip.compress(Path(plain).read_bytes()))
    assert forwards._read_back_forwards(str(packed)) is None
    assert forwarded_calls(str(packed)) == {0xC200_0005: 1}


def test_a_huge_line_before_many_exits_is_not_read_back_once_per_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each exit's walk went back over the whole 4 MiB line (one thread each, none with
    # an HVC before): 2,000 exits read 8 GB, 4 KiB at a time, re-copying what it had.
    huge = b"x" * (4 << 20) + b" KVM_EXIT_HYPERCALL\n"
    exits = b"".join(
        b"    vmm-%d     [000] .....     2.0: %s\n" % (10 + i, _FWD.encode()) for i in range(2000)
    )
    path = tmp_path / "t.txt"
    path.write_bytes(huge + exits)
    limit = 6 * path.stat().st_size
    read = [0]
    real_pread = os.pread

    def counted(fd: int, length: int, offset: int) -> bytes:
        data = real_pread(fd, length, offset)
        read[0] += len(data)
        if read[0] > limit:
            raise AssertionError(
                f"read back {read[0]:,} bytes of a {path.stat().st_size:,}-byte file"
            )
        return data

    monkeypatch.setattr(os, "pread", counted)
    assert forwarded_calls(str(path)) == forwards._forwards_by_line(str(path)) == {}


def test_marker_lines_the_line_pass_ignores_count_against_the_budget(tmp_path: Path) -> None:
    # Uncharged, a file of bare markers took 20 times the line pass, and never gave up.
    path = tmp_path / "t.txt"
    path.write_bytes(b"KVM_EXIT_HYPERCALL\n" * 100_000)
    assert forwards._read_back_forwards(str(path)) is None
    assert forwarded_calls(str(path)) == {}


def test_a_fifo_is_not_opened_for_the_read_back(tmp_path: Path) -> None:
    # Opening it lost what its writer wrote (peeked and dropped), or waited for one.
    fifo = tmp_path / "t.fifo"
    os.mkfifo(fifo)
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(forwards._read_back_forwards(str(fifo))))
    worker.daemon = True  # left behind, blocked in open(), if the FIFO is opened
    worker.start()
    worker.join(timeout=5)
    assert result == [None]


@pytest.mark.parametrize("compressed", [False, True], ids=["read-back", "line-pass"])
def test_a_skipped_hvc_line_does_not_make_the_exit_after_it_a_forward(
    tmp_path: Path, compressed: bool
) -> None:
    # The forwards pass read "HVC ... r0: X" more loosely than the tally: a corrupt
    # line the tally skipped made PSCI_VERSION, answered by the kernel, "forwarded".
    lines = [
        f"    vmm-100     [000] .....     1.000002: {_HVC.format(x0=0x8400_0000)}",
        "    vmm-100     [000] .....     1.000003: kvm_entry: PC: 0x000000004000002c",
        "    vmm-100     [000] .....     1.000005: kvm_hvc_arm64: HVC at 0x0000000040000028 "
        "(r0: 0x0000000084000000, imm: 0x12345) CORRUPTED",
        f"    vmm-100     [000] .....     1.000006: {_FWD}",
        # A comment shaped like an event is no HVC either, as the tally reads it.
        f"# vmm-100     [000] .....     1.000007: {_HVC.format(x0=0xC200_0005)}",
        f"    vmm-100     [000] .....     1.000008: {_FWD}",
    ]
    data = ("\n".join(lines) + "\n").encode()
    path = tmp_path / ("t.txt.gz" if compressed else "t.txt")
    path.write_bytes(gzip.compress(data) if compressed else data)
    assert forwarded_calls(str(path)) == {}
    assert forwards._forwards_by_line(str(path)) == {}


def test_a_pseudo_file_of_size_zero_keeps_its_forwards(tmp_path: Path) -> None:
    # tracefs's trace (and procfs files) say they hold 0 bytes: the forwards pass
    # read up to that size, found nothing, and learned forwarded calls as the kernel's.
    # /proc/PID/cmdline stands in for tracefs here: regular, size 0, full of text.
    text = (TRACES / "sample-6.12.txt").read_text()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "\n" + text])
    try:
        pseudo = f"/proc/{holder.pid}/cmdline"
        for _ in range(100):  # until the child has exec'd and its cmdline is the text
            if text[:40] in Path(pseudo).read_text(errors="replace"):
                break
            time.sleep(0.05)
        assert os.stat(pseudo).st_size == 0
        tally = tally_traces([pseudo], kernel="6.12")
    finally:
        holder.kill()
        holder.wait()
    assert _forwards(tally) == {0xC200_0005}
