"""Booting a Linux guest under the lab's own VMM, inside the lab VM, under a filter table.

:func:`run_guest` compiles ``guest/guest_vmm.c`` with the table's C header (the
code ``hvcfilter compile --format c`` emits, passed in as text), builds the
guest's initramfs and device tree, and boots the lab VM once with an ``/init``
that runs the VMM on the same kernel Image, with ftrace's ``kvm_hvc_arm64``
event on. The result keeps the console split into the guest's own lines and
the VMM's ``@@VMM`` event lines, plus the trace, in which kprobes on
``handle_hvc`` and ``handle_smc`` (:mod:`hvcfilter.lab.call_probe`) add each
call's registers.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from hvcfilter.errors import LabError
from hvcfilter.lab import fdt
from hvcfilter.lab.btf import BtfError, BtfTypes
from hvcfilter.lab.cache import LabStatus
from hvcfilter.lab.call_probe import (
    VCPU_MEMBERS,
    VCPU_STRUCT,
    CallSample,
    VcpuLayout,
    call_samples,
    probe_definitions,
)
from hvcfilter.lab.runner import _S_IFCHR, _S_IFDIR, _S_IFREG, _boot, _extract_trace, newc_archive

__all__ = ["GUEST_CFLAGS", "GuestRun", "VmmEvent", "build_vmm", "run_guest", "vmm_source"]

GUEST_CFLAGS = ("-static", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread")
RAM_BASE, RAM_SIZE = 0x80000000, 0x10000000
INITRD_OFF, DTB_OFF = 0x08000000, RAM_SIZE - 0x200000
UART, GICD, GICR = 0x09000000, 0x08000000, 0x080A0000
BOOTARGS = "console=ttyS0 earlycon=uart8250,mmio,0x9000000 panic=-1 quiet rdinit=/init"
OUTER_QEMU = (
    "-M",
    "virt,virtualization=on,gic-version=3",
    "-cpu",
    "max,pauth-impdef=on",
    "-smp",
    "2",
    "-m",
    "2048",
    "-nographic",
    "-no-reboot",
    "-nic",
    "none",
)
OUTER_CMDLINE = "console=ttyAMA0 panic=-1 quiet loglevel=1"
ONLINE_MARK = "@@GUEST-ONLINE"
INIT_MARK = "@@GUEST-INIT"
RC_MARK = "@@GUEST-VMM-RC"
NOPROBE_MARK = "@@HVCLAB-NOPROBE"
STDERR_BEGIN, STDERR_END = "@@HVCLAB-STDERR-BEGIN", "@@HVCLAB-STDERR-END"


@dataclass(frozen=True, slots=True)
class VmmEvent:
    """One ``@@VMM`` line: its kind (INSTALL, FWD, EXIT, UNHANDLED) and its fields."""

    kind: str
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GuestRun:
    """One guest boot: what the guest console said, the VMM's events and the lab's trace."""

    kernel: str
    guest_console: tuple[str, ...]
    events: tuple[VmmEvent, ...]
    vmm_rc: int | None
    trace: str | None
    seconds: float
    console: str
    # Why the guest's registers were not probed (no BTF, a refused kprobe); None when they were.
    probe_error: str | None = None
    # What the VMM wrote to stderr (kept off the console).
    vmm_stderr: tuple[str, ...] = ()

    @property
    def call_samples(self) -> tuple[CallSample, ...]:
        """Each HVC's and SMC's registers as the exit-handler probes saw them, in trace order."""
        return call_samples((self.trace or "").splitlines())

    @property
    def booted(self) -> bool:
        """The guest reached its init."""
        return any(INIT_MARK in ln for ln in self.guest_console)

    @property
    def cpus_online(self) -> str | None:
        """``/sys/devices/system/cpu/online`` as the guest printed it."""
        for ln in self.guest_console:
            if ONLINE_MARK in ln:
                return ln.split(ONLINE_MARK, 1)[1].strip() or None
        return None

    @property
    def exit_reason(self) -> str | None:
        """How the VMM stopped: SHUTDOWN, RESET, TIMEOUT, ERROR, CPU_OFF; None if it never said."""
        for ev in self.events:
            if ev.kind == "EXIT" and ev.fields:
                return ev.fields[0]
        return None


def vmm_source() -> str:
    """The guest VMM's C source, shipped as package data."""
    return (resources.files("hvcfilter.lab") / "guest" / "guest_vmm.c").read_text("utf-8")


def build_vmm(cache: Path, table_h: str) -> Path:
    """Compile the VMM with ``table_h`` as its ``table.h`` (once per source and table).

    Raises:
        LabError: the cross compiler is missing or refuses the code (its message).
    """
    src = vmm_source()
    key = hashlib.sha256(f"{src}\0{table_h}\0{GUEST_CFLAGS}".encode()).hexdigest()[:16]
    out = cache / "guest" / f"guest_vmm-{key}"
    if out.is_file():
        return out
    gcc = shutil.which("aarch64-linux-gnu-gcc")
    if gcc is None:
        raise LabError("aarch64-linux-gnu-gcc is not installed; run `hvcfilter lab setup`")
    import subprocess

    with tempfile.TemporaryDirectory(prefix="hvcfilter-vmm-") as tmp:
        (Path(tmp) / "table.h").write_text(table_h, "utf-8")
        (Path(tmp) / "guest_vmm.c").write_text(src, "utf-8")
        binary = Path(tmp) / "guest_vmm"
        proc = subprocess.run(
            [gcc, *GUEST_CFLAGS, "-I", tmp, "-o", str(binary), str(Path(tmp) / "guest_vmm.c")],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-10:])
            raise LabError(f"compiling the guest VMM with the table's C failed:\n{tail}")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp_out = out.with_name(f".{out.name}.tmp{os.getpid()}")
        shutil.copyfile(binary, tmp_out)
        tmp_out.chmod(0o755)
        os.replace(tmp_out, out)
    return out


def _guest_initramfs(busybox: bytes) -> bytes:
    bb = "/bin/busybox"
    init = "\n".join(
        [
            f"#!{bb} sh",
            f"{bb} mount -t proc proc /proc",
            f"{bb} mount -t sysfs sysfs /sys",
            f"{bb} mount -t devtmpfs devtmpfs /dev",
            # Through printk (level 2 passes "quiet"), so the lines cannot interleave with
            # the kernel's own messages the way the tty's buffered output does.
            f"echo '<2>{INIT_MARK}' > /dev/kmsg",
            f'echo "<2>{ONLINE_MARK} $({bb} cat /sys/devices/system/cpu/online)" > /dev/kmsg',
            f"{bb} poweroff -f",
            "",
        ]
    )
    entries = [(d, _S_IFDIR | 0o755, b"", (0, 0)) for d in ("bin", "dev", "proc", "sys")]
    entries += [
        ("dev/console", _S_IFCHR | 0o600, b"", (5, 1)),
        ("bin/busybox", _S_IFREG | 0o755, busybox, (0, 0)),
        ("init", _S_IFREG | 0o755, init.encode(), (0, 0)),
    ]
    return gzip.compress(newc_archive(entries), compresslevel=6)


def _outer_init(
    cpus: int, policy: int, hold: int, timeout_s: int, probes: tuple[str, ...] = ()
) -> str:
    bb = "/bin/busybox"
    t = "/sys/kernel/tracing"
    # A probe the kernel refuses leaves a marker instead of failing the boot: the
    # report then says why the guest's x0 was not observed.
    add_probes = [
        f"echo '{p}' >> {t}/dynamic_events 2>/dev/null || echo {NOPROBE_MARK}" for p in probes
    ]
    return "\n".join(
        [
            f"#!{bb} sh",
            f"{bb} mount -t proc proc /proc",
            f"{bb} mount -t sysfs sysfs /sys",
            f"{bb} mount -t devtmpfs devtmpfs /dev",
            f"{bb} mount -t tracefs tracefs {t} 2>/dev/null",
            "echo 1 > /proc/sys/kernel/printk",
            f"echo 8192 > {t}/buffer_size_kb",
            # One clock for every CPU: a vCPU thread's events stay in order when it migrates.
            f"echo global > {t}/trace_clock",
            f"echo 1 > {t}/events/kvm/kvm_hvc_arm64/enable",
            *add_probes,
            *([f"echo 1 > {t}/events/hvcfilter/enable"] if probes else []),
            "echo @@HVCLAB-BEGIN",
            # stderr apart from the console, so that a crash's message is reported as the VMM's.
            f"/bin/guest_vmm /guest/Image /guest/initrd.gz /guest/guest.dtb {cpus} {policy} {hold} "
            f"{timeout_s} 2>/vmm.stderr",
            f"echo {RC_MARK} $?",
            f"echo {STDERR_BEGIN}",
            f"{bb} cat /vmm.stderr",
            f"echo {STDERR_END}",
            "echo @@HVCLAB-TRACE-BEGIN",
            f"{bb} cat {t}/trace",
            "echo @@HVCLAB-TRACE-END",
            f"{bb} poweroff -f",
            "",
        ]
    )


def _split_console(
    text: str,
) -> tuple[tuple[str, ...], tuple[VmmEvent, ...], int | None, tuple[str, ...]]:
    """The guest's console lines, the VMM's events, its exit status and its stderr."""
    body = text.replace("\r", "")
    start = body.find("@@HVCLAB-BEGIN")
    end = body.find("@@HVCLAB-TRACE-BEGIN")
    body = body[start if start >= 0 else 0 : end if end >= 0 else len(body)]
    guest: list[str] = []
    events: list[VmmEvent] = []
    stderr: list[str] | None = None
    err_lines: list[str] = []
    rc: int | None = None
    for line in body.splitlines():
        if line.startswith(STDERR_BEGIN):
            stderr = err_lines
        elif line.startswith(STDERR_END):
            stderr = None
        elif stderr is not None:
            stderr.append(line)
        elif line.startswith("@@VMM "):
            parts = line.split()
            events.append(VmmEvent(parts[1] if len(parts) > 1 else "", tuple(parts[2:])))
        elif line.startswith(RC_MARK):
            try:
                rc = int(line.split()[1])
            except (IndexError, ValueError):
                rc = None
        elif line and not line.startswith("@@HVCLAB-BEGIN"):
            guest.append(line)
    return tuple(guest), tuple(events), rc, tuple(err_lines)


def run_guest(
    lab: LabStatus,
    kernel: str,
    table_h: str,
    *,
    cpus: int = 1,
    psci_policy: bool = False,
    hold_secondaries: bool = False,
    timeout_s: float = 120.0,
    conduit: str = "hvc",
) -> GuestRun:
    """Boot ``kernel`` as the lab VM and, inside it, as a KVM guest of the lab's VMM.

    ``conduit`` is the SMCCC conduit the guest's device tree names (``hvc``, ``smc``).

    ``timeout_s`` bounds the guest (the VMM stops it); the lab VM gets 60 s more.

    Raises:
        LabError: the lab is not prepared, the VMM does not compile, QEMU fails.
    """
    info = lab.kernel(kernel)
    qemu = lab.host_tools.get("qemu-system-arm") or shutil.which("qemu-system-aarch64")
    if qemu is None or lab.busybox is None:
        raise LabError("the lab is not set up (QEMU or busybox missing); run `hvcfilter lab setup`")
    vmm = build_vmm(lab.cache_dir, table_h)
    try:
        busybox = lab.busybox.read_bytes()
        image = info.image.read_bytes()
        vmm_bin = vmm.read_bytes()
    except OSError as e:
        raise LabError(f"cannot read lab files: {e}") from e
    initrd = _guest_initramfs(busybox)
    probes, probe_error = _register_probes(info.image)
    dtb = fdt.guest_tree(
        cpus=cpus,
        ram_base=RAM_BASE,
        ram_size=RAM_SIZE,
        initrd=(RAM_BASE + INITRD_OFF, RAM_BASE + INITRD_OFF + len(initrd)),
        uart=UART,
        gicd=GICD,
        gicr=GICR,
        bootargs=BOOTARGS,
        conduit=conduit,
    )
    entries = [(d, _S_IFDIR | 0o755, b"", (0, 0)) for d in ("bin", "dev", "proc", "sys", "guest")]
    entries += [
        ("dev/console", _S_IFCHR | 0o600, b"", (5, 1)),
        ("bin/busybox", _S_IFREG | 0o755, busybox, (0, 0)),
        ("bin/guest_vmm", _S_IFREG | 0o755, vmm_bin, (0, 0)),
        ("guest/Image", _S_IFREG | 0o644, image, (0, 0)),
        ("guest/initrd.gz", _S_IFREG | 0o644, initrd, (0, 0)),
        ("guest/guest.dtb", _S_IFREG | 0o644, dtb, (0, 0)),
        (
            "init",
            _S_IFREG | 0o755,
            _outer_init(
                cpus, int(psci_policy), int(hold_secondaries), max(1, round(timeout_s)), probes
            ).encode(),
            (0, 0),
        ),
    ]
    outer = gzip.compress(newc_archive(entries), compresslevel=1)
    with tempfile.TemporaryDirectory(prefix="hvcfilter-guest-") as tmp:
        path = Path(tmp) / "initramfs.cpio.gz"
        path.write_bytes(outer)
        cmd = [
            qemu,
            *OUTER_QEMU,
            "-kernel",
            str(info.image),
            "-initrd",
            str(path),
            "-append",
            OUTER_CMDLINE,
        ]
        t0 = time.monotonic()
        console, boot_s, _total = _boot(cmd, timeout_s + 60.0)
        del t0
    guest, events, rc, stderr = _split_console(console)
    if probes and NOPROBE_MARK in console:
        probe_error = "the lab kernel refused the exit-handler kprobes"
    return GuestRun(
        kernel,
        guest,
        events,
        rc,
        _extract_trace(console),
        _total - boot_s,
        console,
        probe_error,
        stderr,
    )


@functools.cache
def _vcpu_layout(image_path: Path, size: int, mtime_ns: int) -> VcpuLayout:
    """Where a vCPU keeps the guest's registers, its index and the syndrome, from the Image's BTF.

    Parsed once per Image version (the BTF of a Debian kernel is 3-5 MB).
    """
    del size, mtime_ns  # part of the cache key only
    types = BtfTypes(image_path.read_bytes())
    return VcpuLayout(*(types.offset(VCPU_STRUCT, member) for member in VCPU_MEMBERS))


def _register_probes(image_path: Path) -> tuple[tuple[str, ...], str | None]:
    """The kprobe definitions for this kernel, or why there are none."""
    try:
        st = image_path.stat()
        layout = _vcpu_layout(image_path, st.st_size, st.st_mtime_ns)
    except (OSError, BtfError) as e:
        return (), f"the guest's registers cannot be located in this kernel: {e}"
    return probe_definitions(layout), None
