"""Preparing the real-kernel lab: host tools, Debian arm64 kernels, busybox and the in-guest driver.

Everything the lab boots comes from Debian's archive.  Host tools (QEMU, the
aarch64 cross compiler and static C library) are installed with the system's
``apt-get`` when running as root; otherwise :class:`LabError` names the exact
``sudo apt-get install`` command.  Kernels and busybox are arm64 packages
fetched with a *private* apt configuration under the cache directory (own
state, cache and source list, ``APT::Architecture "arm64"``), so the system's
apt sources are never touched, then unpacked with ``dpkg-deb`` into the cache.
:func:`prepare_lab` is idempotent: with everything present it runs no
external command except a cheap compiler check of the driver's hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from hvcfilter.errors import LabError

__all__ = [
    "DEFAULT_KERNELS",
    "HOST_PACKAGES",
    "KERNELS",
    "KernelInfo",
    "KernelSource",
    "LabStatus",
    "default_cache_dir",
    "driver_source",
    "lab_status",
    "prepare_lab",
]

ARCHIVE = "http://deb.debian.org/debian"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
SUITES = ("bookworm", "bookworm-backports", "trixie", "sid", "experimental")
# Host package -> a file it provides, to tell whether it is installed.
HOST_PACKAGES: dict[str, str] = {
    "qemu-system-arm": "qemu-system-aarch64",
    "gcc-aarch64-linux-gnu": "aarch64-linux-gnu-gcc",
    "libc6-dev-arm64-cross": "/usr/aarch64-linux-gnu/lib/libc.a",
}
BUSYBOX_PACKAGE = "busybox-static"
BUSYBOX_SUITE = "trixie"
DRIVER_CFLAGS = ("-static", "-O2", "-Wall")


@dataclass(frozen=True, slots=True)
class KernelSource:
    """Where one lab kernel comes from: a package-name pattern in a suite and the Image's path."""

    key: str
    suite: str
    package_re: str
    image_re: str
    note: str


KERNELS: dict[str, KernelSource] = {
    k.key: k
    for k in (
        KernelSource(
            "6.1",
            "bookworm",
            r"^linux-image-6\.1\.0-[0-9]+-arm64-unsigned$",
            r"^(\./)?boot/vmlinuz-",
            "Debian bookworm 6.1 (LTS; no SMCCC filter, which arrived in 6.4)",
        ),
        KernelSource(
            "6.12",
            "bookworm-backports",
            r"^linux-image-6\.12\.[0-9]+\+deb12-arm64-unsigned$",
            r"^(\./)?boot/vmlinuz-",
            "Debian bookworm-backports 6.12 (the reference's kernel)",
        ),
        KernelSource(
            "6.12-trixie",
            "trixie",
            r"^linux-image-6\.12\.[0-9]+\+deb13-arm64-unsigned$",
            r"^(\./)?boot/vmlinuz-",
            "Debian trixie 6.12",
        ),
        KernelSource(
            "7.2",
            "sid",
            r"^linux-binary-unsigned-7\.2\.[0-9]+\+deb[0-9]+-arm64$",
            r"^(\./)?usr/lib/modules/[^/]+/vmlinuz\.unsigned$",
            "Debian sid 7.2",
        ),
        KernelSource(
            "7.3",
            "experimental",
            r"^linux-binary-unsigned-7\.3(\.[0-9]+)?(\+deb[0-9]+)?-arm64$",
            r"^(\./)?usr/lib/modules/[^/]+/vmlinuz\.unsigned$",
            "Debian experimental 7.3 (release candidates)",
        ),
    )
}
# Every kernel with a profile of its own; 6.1 is the one without the SMCCC filter.
DEFAULT_KERNELS = ("6.1", "6.12", "7.2")


@dataclass(frozen=True, slots=True)
class KernelInfo:
    """One unpacked kernel in the cache."""

    key: str
    package: str
    version: str
    image: Path


@dataclass(frozen=True, slots=True)
class LabStatus:
    """What the lab cache holds and which host tools are present."""

    cache_dir: Path
    host_tools: dict[str, str | None]
    kernels: dict[str, KernelInfo]
    busybox: Path | None
    busybox_version: str | None
    driver: Path | None
    missing: tuple[str, ...] = field(default=())

    @property
    def ready(self) -> bool:
        """Whether at least one kernel can be booted."""
        return not self.missing_for_boot() and bool(self.kernels)

    def missing_for_boot(self) -> list[str]:
        """Host tools and cache items a boot needs that are absent."""
        out = [name for name, path in self.host_tools.items() if path is None]
        if self.busybox is None:
            out.append(BUSYBOX_PACKAGE)
        if self.driver is None:
            out.append("driver")
        return out

    def kernel(self, key: str) -> KernelInfo:
        """The cached kernel ``key``.

        Raises:
            LabError: the kernel is not in the cache.
        """
        try:
            return self.kernels[key]
        except KeyError:
            have = ", ".join(self.kernels) or "none"
            raise LabError(
                f"kernel {key!r} is not in the lab cache {self.cache_dir} (have: {have}); "
                f"run `hvcfilter lab setup --kernel {key}`"
            ) from None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary (for ``hvcfilter lab status --format json``)."""
        return {
            "cache_dir": str(self.cache_dir),
            "ready": self.ready,
            "host_tools": dict(self.host_tools),
            "kernels": {
                k: {"package": v.package, "version": v.version, "image": str(v.image)}
                for k, v in self.kernels.items()
            },
            "busybox": str(self.busybox) if self.busybox else None,
            "busybox_version": self.busybox_version,
            "driver": str(self.driver) if self.driver else None,
            "missing": self.missing_for_boot(),
        }


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/hvcfilter/lab``, else ``~/.cache/hvcfilter/lab``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hvcfilter" / "lab"


def driver_source() -> str:
    """The in-guest driver's C source, shipped as package data."""
    return (resources.files("hvcfilter.lab") / "driver" / "smccc_driver.c").read_text("utf-8")


def _tool_path(probe: str) -> str | None:
    if probe.startswith("/"):
        return probe if Path(probe).exists() else None
    return shutil.which(probe)


def _host_tools() -> dict[str, str | None]:
    return {pkg: _tool_path(probe) for pkg, probe in HOST_PACKAGES.items()}


def _read_meta(path: Path) -> dict[str, str] | None:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _driver_hash() -> str:
    src = driver_source().encode()
    return hashlib.sha256(src + " ".join(DRIVER_CFLAGS).encode()).hexdigest()[:16]


def lab_status(cache_dir: Path | None = None) -> LabStatus:
    """Inspect the lab cache and host tools without changing anything.

    Raises:
        LabError: never for a missing or empty cache (that is a status); only
            if the driver source is missing from the installed package.
    """
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    kernels: dict[str, KernelInfo] = {}
    for key in KERNELS:
        meta = _read_meta(cache / "kernels" / key / "meta.json")
        image = cache / "kernels" / key / "Image"
        if meta and image.is_file():
            kernels[key] = KernelInfo(key, meta["package"], meta["version"], image)
    bb_meta = _read_meta(cache / "busybox" / "meta.json")
    busybox = cache / "busybox" / "busybox"
    drv = cache / "driver" / f"smccc_driver-{_driver_hash()}"
    tools = _host_tools()
    st = LabStatus(
        cache_dir=cache,
        host_tools=tools,
        kernels=kernels,
        busybox=busybox if bb_meta and busybox.is_file() else None,
        busybox_version=bb_meta["version"] if bb_meta else None,
        driver=drv if drv.is_file() else None,
    )
    return LabStatus(
        st.cache_dir,
        st.host_tools,
        st.kernels,
        st.busybox,
        st.busybox_version,
        st.driver,
        tuple(st.missing_for_boot()),
    )


def _run(cmd: Sequence[str], *, env: dict[str, str] | None = None, what: str) -> str:
    try:
        proc = subprocess.run(
            list(cmd), env=env, capture_output=True, text=True, check=False, timeout=1800
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LabError(f"{what}: cannot run {cmd[0]}: {e}") from e
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise LabError(f"{what} failed ({' '.join(cmd)}, exit {proc.returncode}):\n{tail}")
    return proc.stdout


def _ensure_host_tools(progress: Callable[[str], None]) -> None:
    missing = [pkg for pkg, path in _host_tools().items() if path is None]
    if not missing:
        return
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if os.geteuid() != 0:
        raise LabError(
            "the lab needs host packages that are not installed; run:\n"
            f"  sudo apt-get install -y {' '.join(missing)}"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    policy = _run(["apt-cache", "policy", *missing], env=env, what="apt-cache policy")
    if "Candidate: (none)" in policy or not re.search(r"Candidate: \S", policy):
        progress("apt-get update (system)")
        _run(["apt-get", "update"], env=env, what="apt-get update")
    progress(f"installing host packages: {' '.join(missing)}")
    _run(cmd, env=env, what="apt-get install")
    still = [pkg for pkg, path in _host_tools().items() if path is None]
    if still:
        raise LabError(f"installed {' '.join(missing)} but still missing: {' '.join(still)}")


def _apt_env(cache: Path) -> dict[str, str]:
    """Write the private apt configuration (once) and return an environment that uses it."""
    apt = cache / "apt"
    for sub in (
        "state/lists/partial",
        "cache/archives/partial",
        "etc/apt.conf.d",
        "etc/preferences.d",
        "etc/sources.list.d",
        "etc/trusted.gpg.d",
    ):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    status = apt / "state" / "status"
    if not status.exists():
        status.touch()
    sources = "".join(f"deb [signed-by={KEYRING}] {ARCHIVE} {suite} main\n" for suite in SUITES)
    _write_atomic(apt / "etc" / "sources.list", sources.encode())
    conf = f"""// hvcfilter lab: private apt configuration; never used for the system.
Dir "{apt}/";
Dir::State "{apt}/state/";
Dir::State::status "{status}";
Dir::Cache "{apt}/cache/";
Dir::Etc "{apt}/etc/";
Dir::Etc::sourcelist "{apt}/etc/sources.list";
Dir::Etc::sourceparts "{apt}/etc/sources.list.d/";
Dir::Etc::main "{apt}/etc/apt.conf";
Dir::Etc::parts "{apt}/etc/apt.conf.d/";
Dir::Etc::preferences "{apt}/etc/preferences";
Dir::Etc::preferencesparts "{apt}/etc/preferences.d/";
Dir::Etc::trusted "{apt}/etc/trusted.gpg";
Dir::Etc::trustedparts "{apt}/etc/trusted.gpg.d/";
APT::Architecture "arm64";
APT::Architectures {{ "arm64"; }};
APT::Sandbox::User "root";
Acquire::Check-Valid-Until "false";
Acquire::Languages "none";
"""
    if os.geteuid() != 0:
        conf = conf.replace('APT::Sandbox::User "root";\n', "")
    _write_atomic(apt / "apt.conf", conf.encode())
    env = dict(os.environ, APT_CONFIG=str(apt / "apt.conf"), DEBIAN_FRONTEND="noninteractive")
    return env


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"[0-9]+", name))


def _pick_package(env: dict[str, str], src: KernelSource) -> tuple[str, str]:
    out = _run(
        ["apt-cache", "search", "--names-only", src.package_re],
        env=env,
        what=f"apt-cache search for kernel {src.key}",
    )
    names = [ln.split(" ", 1)[0] for ln in out.splitlines() if ln.strip()]
    names = [n for n in names if re.match(src.package_re, n)]
    if not names:
        raise LabError(
            f"no package matching {src.package_re} in Debian {src.suite} for kernel {src.key}"
        )
    name = max(names, key=_version_key)
    show = _run(
        ["apt-cache", "show", "--no-all-versions", name], env=env, what=f"apt-cache show {name}"
    )
    m = re.search(r"^Version: (\S+)", show, re.M)
    return name, m.group(1) if m else "?"


def _download(env: dict[str, str], spec: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    before = set(dest.glob("*.deb"))
    proc_env = dict(env)
    try:
        subprocess.run(
            ["apt-get", "download", spec],
            cwd=dest,
            env=proc_env,
            capture_output=True,
            text=True,
            check=True,
            timeout=1800,
        )
    except subprocess.CalledProcessError as e:
        tail = "\n".join((e.stderr or "").strip().splitlines()[-6:])
        raise LabError(f"apt-get download {spec} failed:\n{tail}") from e
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LabError(f"apt-get download {spec}: {e}") from e
    new = sorted(set(dest.glob("*.deb")) - before)
    name = spec.split("/", 1)[0].split("=", 1)[0]
    hits = new or sorted(dest.glob(f"{name}_*.deb"))
    if not hits:
        raise LabError(f"apt-get download {spec} produced no .deb in {dest}")
    return hits[-1]


def _extract_member(deb: Path, member_re: str, out: Path) -> str:
    """Extract the first file of ``deb`` whose path matches ``member_re`` to ``out``."""
    try:
        proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    except OSError as e:
        raise LabError(f"cannot run dpkg-deb: {e}") from e
    assert proc.stdout is not None
    found = None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for info in tar:
                if info.isfile() and re.match(member_re, info.name):
                    fobj = tar.extractfile(info)
                    if fobj is None:
                        continue
                    _write_atomic(out, fobj.read())
                    found = info.name
                    break
    except tarfile.TarError as e:
        raise LabError(f"cannot read {deb}: {e}") from e
    finally:
        proc.stdout.close()
        proc.kill()
        proc.wait()
    if found is None:
        raise LabError(f"{deb.name} has no file matching {member_re}")
    return found


def build_driver(cache: Path, progress: Callable[[str], None]) -> Path:
    """Compile the in-guest driver into the cache (once per source hash).

    Raises:
        LabError: the cross compiler is missing or fails.
    """
    out = cache / "driver" / f"smccc_driver-{_driver_hash()}"
    if out.is_file():
        return out
    gcc = shutil.which("aarch64-linux-gnu-gcc")
    if gcc is None:
        raise LabError("aarch64-linux-gnu-gcc is not installed (package gcc-aarch64-linux-gnu)")
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.parent / "smccc_driver.c"
    _write_atomic(src, driver_source().encode())
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    progress("compiling the in-guest driver")
    _run([gcc, *DRIVER_CFLAGS, "-o", str(tmp), str(src)], what="compiling smccc_driver.c")
    os.replace(tmp, out)
    return out


def prepare_lab(
    cache_dir: Path | None,
    kernels: Sequence[str] = DEFAULT_KERNELS,
    progress: Callable[[str], None] = lambda _msg: None,
) -> LabStatus:
    """Make the lab ready: host tools, the requested kernels, busybox and the driver.

    Idempotent: what is already in the cache is not fetched again, and a fully
    prepared lab returns without running apt.

    Raises:
        LabError: an unknown kernel key, missing host tools when not root
            (with the ``sudo apt-get install`` command), or a failing
            apt/dpkg/compiler step.
    """
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    unknown = [k for k in kernels if k not in KERNELS]
    if unknown:
        raise LabError(f"unknown lab kernel(s) {', '.join(unknown)}; known: {', '.join(KERNELS)}")
    _ensure_host_tools(progress)
    status = lab_status(cache)
    todo = [k for k in kernels if k not in status.kernels]
    need_busybox = status.busybox is None
    if todo or need_busybox:
        env = _apt_env(cache)
        progress("apt-get update (private arm64 configuration)")
        _run(["apt-get", "update"], env=env, what="apt-get update (lab)")
        debs = cache / "debs"
        for key in todo:
            src = KERNELS[key]
            name, version = _pick_package(env, src)
            progress(f"downloading {name} {version}")
            deb = _download(env, name, debs)
            progress(f"unpacking the kernel Image from {deb.name}")
            kdir = cache / "kernels" / key
            member = _extract_member(deb, src.image_re, kdir / "Image")
            meta = {"package": name, "version": version, "member": member, "deb": deb.name}
            _write_atomic(kdir / "meta.json", json.dumps(meta, indent=2).encode())
            deb.unlink()  # the Image is all we need; 6.12's .deb is ~90 MB
        if need_busybox:
            progress(f"downloading {BUSYBOX_PACKAGE} from {BUSYBOX_SUITE}")
            deb = _download(env, f"{BUSYBOX_PACKAGE}/{BUSYBOX_SUITE}", debs)
            bdir = cache / "busybox"
            _extract_member(deb, r"^(\./)?(usr/)?bin/busybox$", bdir / "busybox")
            version = deb.name.split("_")[1].replace("%3a", ":")
            meta = {"package": BUSYBOX_PACKAGE, "version": version, "deb": deb.name}
            _write_atomic(bdir / "meta.json", json.dumps(meta, indent=2).encode())
            deb.unlink()
    build_driver(cache, progress)
    return lab_status(cache)
