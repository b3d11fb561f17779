"""Booting a real arm64 kernel under qemu-system-aarch64 and running a batch of scenarios in it.

One call of :func:`run_scenarios` builds an initramfs (busybox, the in-guest
driver, an ``/init`` script and the batch in the driver's wire format), boots
the cached kernel once under TCG with EL2 (``virtualization=on``) so that it
brings up KVM, streams the serial console until QEMU exits (the init script
powers off), and parses the result block between the driver's markers.  The
initramfs is written in the kernel's ``newc`` cpio format by this module, so
no ``cpio`` binary is needed.
"""

from __future__ import annotations

import gzip
import os
import selectors
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hvcfilter.errors import LabError
from hvcfilter.lab.cache import LabStatus, build_driver
from hvcfilter.lab.scenario import Scenario, ScenarioResult
from hvcfilter.lab.wire import parse_output, to_wire

__all__ = ["QEMU_ARGS", "LabRun", "build_initramfs", "newc_archive", "run_scenarios"]

QEMU_ARGS = (
    "-M", "virt,virtualization=on,gic-version=3",
    "-cpu", "max,pauth-impdef=on",
    "-smp", "1",
    "-m", "1024",
    "-nographic", "-no-reboot", "-nic", "none",
)  # fmt: skip
KERNEL_CMDLINE = "console=ttyAMA0 panic=-1 quiet loglevel=1"
TRACE_BEGIN = "@@HVCLAB-TRACE-BEGIN"
TRACE_END = "@@HVCLAB-TRACE-END"
TRACE_EVENTS = ("kvm_hvc_arm64", "kvm_exit", "kvm_entry", "kvm_userspace_exit")

_S_IFDIR = 0o040000
_S_IFREG = 0o100000
_S_IFCHR = 0o020000


@dataclass(frozen=True, slots=True)
class LabRun:
    """One boot of one kernel running one batch of scenarios.

    ``boot_s`` is QEMU start to the driver's first output line; ``driver_s``
    the driver's own run time for all scenarios; ``total_s`` QEMU start to
    exit.  ``trace`` holds ``/sys/kernel/tracing/trace`` when tracing was
    requested.
    """

    kernel: str
    package: str
    version: str
    release: str
    results: tuple[ScenarioResult, ...]
    boot_s: float
    driver_s: float
    total_s: float
    console: str
    trace: str | None


def newc_archive(entries: Sequence[tuple[str, int, bytes, tuple[int, int]]]) -> bytes:
    """An uncompressed ``newc`` cpio archive of (path, mode, data, (rdev major, minor)) entries."""
    out = bytearray()
    ino = 1

    def put(name: str, mode: int, data: bytes, rdev: tuple[int, int]) -> None:
        nonlocal ino
        raw = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 2 if mode & _S_IFDIR else 1, 0, len(data), 0, 0,
                  rdev[0], rdev[1], len(raw), 0)  # fmt: skip
        out.extend(b"070701" + b"".join(b"%08X" % f for f in fields))
        out.extend(raw)
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))
        ino += 1

    for name, mode, data, rdev in entries:
        put(name, mode, data, rdev)
    put("TRAILER!!!", 0, b"", (0, 0))
    out.extend(b"\0" * (-len(out) % 512))
    return bytes(out)


def _init_script(trace: bool) -> str:
    bb = "/bin/busybox"
    lines = [
        f"#!{bb} sh",
        f"{bb} mount -t proc proc /proc",
        f"{bb} mount -t sysfs sysfs /sys",
        f"{bb} mount -t devtmpfs devtmpfs /dev",
        # Keep kernel messages off the console while the driver prints results.
        "echo 1 > /proc/sys/kernel/printk",
    ]
    if trace:
        t = "/sys/kernel/tracing"
        lines += [
            f"{bb} mount -t tracefs tracefs {t} 2>/dev/null",
            f"echo 16384 > {t}/buffer_size_kb",
            *(f"echo 1 > {t}/events/kvm/{ev}/enable" for ev in TRACE_EVENTS),
        ]
    lines.append("/bin/smccc_driver /scenarios.txt")
    if trace:
        lines += [
            f"echo {TRACE_BEGIN}",
            f"{bb} cat /sys/kernel/tracing/trace",
            f"echo {TRACE_END}",
        ]
    lines.append(f"{bb} poweroff -f")
    return "\n".join(lines) + "\n"


def build_initramfs(busybox: Path, driver: Path, wire: str, *, trace: bool = False) -> bytes:
    """A gzip-compressed initramfs with busybox, the driver, ``/init`` and the scenario batch.

    Raises:
        LabError: busybox or the driver cannot be read.
    """
    try:
        bb = busybox.read_bytes()
        drv = driver.read_bytes()
    except OSError as e:
        raise LabError(f"cannot read lab files: {e}") from e
    entries: list[tuple[str, int, bytes, tuple[int, int]]] = [
        (d, _S_IFDIR | 0o755, b"", (0, 0)) for d in ("bin", "dev", "proc", "sys", "tmp")
    ]
    entries += [
        ("dev/console", _S_IFCHR | 0o600, b"", (5, 1)),
        ("bin/busybox", _S_IFREG | 0o755, bb, (0, 0)),
        ("bin/smccc_driver", _S_IFREG | 0o755, drv, (0, 0)),
        ("init", _S_IFREG | 0o755, _init_script(trace).encode(), (0, 0)),
        ("scenarios.txt", _S_IFREG | 0o644, wire.encode(), (0, 0)),
    ]
    return gzip.compress(newc_archive(entries), compresslevel=1)


def _boot(cmd: list[str], timeout_s: float) -> tuple[str, float, float]:
    """Run QEMU, collecting the console; returns (text, boot seconds, total seconds)."""
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
    except OSError as e:
        raise LabError(f"cannot start {cmd[0]}: {e}") from e
    assert proc.stdout is not None
    buf = bytearray()
    boot_s = 0.0
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        while True:
            left = timeout_s - (time.monotonic() - t0)
            if left <= 0:
                proc.kill()
                proc.wait()
                tail = "\n".join(buf.decode("utf-8", "replace").splitlines()[-15:])
                raise LabError(
                    f"QEMU did not finish within {timeout_s:.0f} s; console tail:\n{tail}"
                )
            if not sel.select(timeout=min(left, 1.0)):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            buf.extend(chunk)
            if not boot_s and b"@@HVCLAB-BEGIN" in buf:
                boot_s = time.monotonic() - t0
        rc = proc.wait(timeout=max(1.0, timeout_s - (time.monotonic() - t0)))
    except subprocess.TimeoutExpired as e:
        proc.kill()
        proc.wait()
        raise LabError("QEMU closed its console but did not exit") from e
    finally:
        # Whatever stopped the wait (an interrupt, an error), no QEMU outlives it.
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sel.close()
        proc.stdout.close()
    total = time.monotonic() - t0
    text = buf.decode("utf-8", "replace")
    if rc != 0:
        tail = "\n".join(text.splitlines()[-15:])
        raise LabError(f"QEMU exited with status {rc}; console tail:\n{tail}")
    return text, boot_s, total


def _extract_trace(console: str) -> str | None:
    text = console.replace("\r", "")
    start = text.find(TRACE_BEGIN + "\n")
    end = text.find(TRACE_END, start + 1)
    if start < 0 or end < 0:
        return None
    return text[start + len(TRACE_BEGIN) + 1 : end]


def run_scenarios(
    lab: LabStatus,
    kernel: str,
    scenarios: Sequence[Scenario],
    *,
    trace: bool = False,
    call_timeout_ms: int = 200,
    timeout_s: float | None = None,
) -> LabRun:
    """Boot ``kernel`` once and run every scenario in it, returning the parsed results.

    ``call_timeout_ms`` bounds each ``KVM_RUN`` inside the guest (a halted vCPU
    after CPU_SUSPEND or CPU_OFF waits this long); ``timeout_s`` bounds the
    whole boot (default: 120 s plus 0.25 s per step).

    Raises:
        LabError: the lab is not prepared for this kernel, QEMU fails or times
            out, or the driver's output is missing or malformed.
    """
    info = lab.kernel(kernel)
    qemu = lab.host_tools.get("qemu-system-arm") or shutil.which("qemu-system-aarch64")
    if qemu is None:
        raise LabError("qemu-system-aarch64 is not installed (package qemu-system-arm)")
    if lab.busybox is None:
        raise LabError(
            f"busybox is not in the lab cache {lab.cache_dir}; run `hvcfilter lab setup`"
        )
    driver = lab.driver or build_driver(lab.cache_dir, lambda _m: None)
    wire = to_wire(scenarios, timeout_ms=call_timeout_ms)
    nsteps = sum(len(s.steps) for s in scenarios)
    limit = timeout_s if timeout_s is not None else 120.0 + 0.25 * nsteps
    initrd = build_initramfs(lab.busybox, driver, wire, trace=trace)
    with tempfile.TemporaryDirectory(prefix="hvcfilter-lab-") as tmp:
        initrd_path = Path(tmp) / "initramfs.cpio.gz"
        initrd_path.write_bytes(initrd)
        cmd = [qemu, *QEMU_ARGS, "-kernel", str(info.image), "-initrd", str(initrd_path),
               "-append", KERNEL_CMDLINE]  # fmt: skip
        console, boot_s, total_s = _boot(cmd, limit)
    parsed = parse_output(console, scenarios)
    return LabRun(
        kernel=kernel,
        package=info.package,
        version=info.version,
        release=parsed.release,
        results=parsed.results,
        boot_s=boot_s,
        driver_s=parsed.driver_us / 1e6,
        total_s=total_s,
        console=console,
        trace=_extract_trace(console) if trace else None,
    )
