"""Unit tests (no QEMU) for the lab's cache, initramfs, generator, comparison and probes."""

from __future__ import annotations

import errno
import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest

from hvcfilter.errors import LabError
from hvcfilter.kernel.profiles import get_profile
from hvcfilter.lab import cache
from hvcfilter.lab.crosscheck import compare, default_vm_factory, replay
from hvcfilter.lab.probes import (
    discovery_scenarios,
    probe_scenarios,
    system_suspend_scenarios,
    tabulate,
)
from hvcfilter.lab.random_scenarios import generate
from hvcfilter.lab.runner import LabRun, build_initramfs, newc_archive
from hvcfilter.lab.scenario import (
    Call,
    CallOutcome,
    ErrnoResult,
    GetFwBitmap,
    HasDeviceAttr,
    RegValue,
    Scenario,
    ScenarioResult,
    SetFilter,
    VmConfig,
)
from hvcfilter.lab.serial import scenario_from_dict, scenario_to_dict
from hvcfilter.lab.wire import parse_output, to_wire

FIXTURES = Path(__file__).parent / "fixtures"


def _newc_names(blob: bytes) -> dict[str, bytes]:
    """Minimal newc reader: name -> data."""
    out: dict[str, bytes] = {}
    pos = 0
    while True:
        assert blob[pos : pos + 6] == b"070701"
        fields = [int(blob[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        size, namesize = fields[6], fields[11]
        name_start = pos + 110
        name = blob[name_start : name_start + namesize - 1].decode()
        data_start = (name_start + namesize + 3) & ~3
        if name == "TRAILER!!!":
            return out
        out[name] = blob[data_start : data_start + size]
        pos = (data_start + size + 3) & ~3


def test_newc_archive_round_trip() -> None:
    blob = newc_archive([("a", 0o100644, b"xyz", (0, 0)), ("dir", 0o040755, b"", (0, 0))])
    assert len(blob) % 512 == 0
    assert _newc_names(blob) == {"a": b"xyz", "dir": b""}


def test_initramfs_contents(tmp_path: Path) -> None:
    bb, drv = tmp_path / "busybox", tmp_path / "drv"
    bb.write_bytes(b"BB")
    drv.write_bytes(b"DRV")
    wire = to_wire([Scenario("s", (SetFilter(1, 1, 1),))])
    files = _newc_names(gzip.decompress(build_initramfs(bb, drv, wire, trace=True)))
    assert files["bin/busybox"] == b"BB" and files["bin/smccc_driver"] == b"DRV"
    assert files["scenarios.txt"].decode() == wire
    init = files["init"].decode()
    assert "kvm_hvc_arm64/enable" in init and init.rstrip().endswith("poweroff -f")
    plain = _newc_names(gzip.decompress(build_initramfs(bb, drv, wire)))["init"].decode()
    assert "tracing" not in plain


def test_initramfs_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LabError):
        build_initramfs(tmp_path / "nope", tmp_path / "nope2", "")


def test_default_cache_dir_honours_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.default_cache_dir() == tmp_path / "hvcfilter" / "lab"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.default_cache_dir() == tmp_path / "home" / ".cache" / "hvcfilter" / "lab"


def test_status_of_empty_cache(tmp_path: Path) -> None:
    st = cache.lab_status(tmp_path)
    assert st.kernels == {} and st.busybox is None and st.driver is None
    assert not st.ready and "driver" in st.missing
    with pytest.raises(LabError, match="lab setup"):
        st.kernel("6.12")
    assert json.loads(json.dumps(st.to_dict()))["ready"] is False


def test_status_sees_cached_kernel(tmp_path: Path) -> None:
    kdir = tmp_path / "kernels" / "7.2"
    kdir.mkdir(parents=True)
    (kdir / "Image").write_bytes(b"img")
    (kdir / "meta.json").write_text(json.dumps({"package": "p", "version": "v"}))
    st = cache.lab_status(tmp_path)
    assert st.kernel("7.2").image == kdir / "Image"


def test_unknown_kernel_rejected(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="unknown lab kernel"):
        cache.prepare_lab(tmp_path, ["5.4"])


def test_not_root_gets_sudo_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "_host_tools", lambda: {"qemu-system-arm": None, "cpio-x": "/x"})
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(LabError, match=r"sudo apt-get install -y qemu-system-arm$"):
        cache._ensure_host_tools(lambda _m: None)


def test_private_apt_config_stays_in_cache(tmp_path: Path) -> None:
    env = cache._apt_env(tmp_path)
    conf = Path(env["APT_CONFIG"]).read_text()
    assert Path(env["APT_CONFIG"]).is_relative_to(tmp_path)
    assert 'APT::Architecture "arm64";' in conf and 'Check-Valid-Until "false"' in conf
    paths = re.findall(r'"(/[^"]*)"', conf)
    assert paths and all(p.startswith(str(tmp_path)) for p in paths)
    sources = (tmp_path / "apt" / "etc" / "sources.list").read_text()
    assert "sid main" in sources and "signed-by=/usr/share/keyrings/" in sources


def test_driver_source_is_package_data() -> None:
    src = cache.driver_source()
    assert "KVM_SET_DEVICE_ATTR" in src and "@@HVCLAB-BEGIN" in src


def test_generate_is_reproducible_and_valid() -> None:
    a, b = generate(7, 40), generate(7, 40)
    assert a == b and a != generate(8, 40)
    assert len({s.name for s in a}) == 40
    assert to_wire(a).count("\nE") == 40
    modes = {s.vcpu_mode for s in generate(1, 200)}
    assert modes == {"a64", "a32", "t32"}
    with pytest.raises(ValueError):
        generate(1, -1)


def test_probe_batch_builds() -> None:
    scs = probe_scenarios()
    assert len({s.name for s in scs}) == len(scs)
    assert to_wire(scs).count("\nS ") == len(scs)


class _FakeResult:
    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


class _FakeVm:
    """Answers like the 6.12 kernel for a few calls; wrong on purpose for 0x84000000."""

    def set_filter(self, base: int, nr_functions: int, action: int, pad: bytes = bytes(15)) -> int:
        return errno.EEXIST if base == 0 and nr_functions == 0 else 0

    def has_device_attr(self, group: int, attr: int) -> int:
        return 0 if group == attr == 0 else errno.ENXIO

    def set_fw_bitmap(self, reg: int, value: int) -> int:
        return 0

    def fw_bitmap(self, reg: int) -> int:
        if reg > 2:
            raise LabError("no such register")
        return 1

    def set_psci_version(self, version: str) -> int:
        return 0

    def run(self) -> None:
        return None

    def call(self, x0: int, x1: int | None = None, x2: int | None = None,
             x3: int | None = None, *, conduit: str = "hvc", imm: int = 0,
             mode: str = "a64") -> _FakeResult:  # fmt: skip
        if x0 & 0xFFFF_FFFF == 0xC200_0005:
            return _FakeResult(exit="hypercall", nr=0xC200_0005, flags=int(conduit == "smc"),
                               x0=None, x1=x1, x2=x2, x3=x3, event_type=None)  # fmt: skip
        return _FakeResult(exit="none", nr=None, flags=None, x0=0x10001, x1=0, x2=0, x3=0,
                           event_type=None)  # fmt: skip


def _fixture(kernel: str) -> tuple[list[Scenario], list[ScenarioResult]]:
    scs = [
        scenario_from_dict(d) for d in json.loads((FIXTURES / "sample_scenarios.json").read_text())
    ]
    out = parse_output((FIXTURES / f"console-{kernel}.txt").read_text(), scs)
    return scs, list(out.results)


def test_compare_finds_divergences() -> None:
    sc = Scenario("c", (SetFilter(0, 0, 0), GetFwBitmap(3), Call(0xC200_0005), Call(0x8400_0000)))
    real = ScenarioResult("c", (
        ErrnoResult(errno.EINVAL),
        RegValue(0, 0),
        CallOutcome("hypercall", 0xC200_0005, 0, True, 0x5A5A_0002, 0x1111, 0x2222, 0x3333,
                    None, None, None, None, 0, 0),
        CallOutcome("none", None, None, None, 0x10003, 0, 0, 0, None, None, None, None, 0, 0),
    ))  # fmt: skip
    cmp = compare(sc, real, _FakeVm)
    fields = [(d.step, d.field) for d in cmp.divergences]
    assert fields == [(0, "errno"), (1, "exception"), (3, "x0")]
    assert not cmp.ok and "real=0x10003" in str(cmp.divergences[-1])


def test_compare_agrees_with_matching_emulator() -> None:
    scs, results = _fixture("6.12")
    cmp = compare(scs[0], results[0], _FakeVm)
    # Only SMCCC_VERSION (steps 2-3) answers 0x10001 in the fake; the rest must diverge.
    assert all(d.step not in (2, 3, 6, 7, 9) for d in cmp.divergences)
    assert any(d.step == 4 for d in cmp.divergences)


def test_compare_rejects_a_result_of_another_scenario() -> None:
    scs, results = _fixture("6.12")
    with pytest.raises(LabError):
        compare(scs[0], results[1], _FakeVm)


def test_default_vm_factory_shapes_the_vm_like_the_lab_one() -> None:
    # The lab creates extra vCPUs powered off and may leave out PSCI 0.2: the
    # emulated VM must be the same, or CPU_ON/AFFINITY_INFO answers differ.
    vm = default_vm_factory("6.12", VmConfig(extra_vcpus=2, psci_0_2=False))()
    assert vm.call(0x84000004, 1, 0).x0 == -1 & 0xFFFF_FFFF_FFFF_FFFF  # PSCI 0.2 call absent
    assert vm.set_psci_version("0.1") == 0
    vm2 = default_vm_factory("6.12", VmConfig(extra_vcpus=1))()
    assert vm2.call(0x84000004, 1, 0).x0 == 1  # AFFINITY_INFO: vCPU 1 exists and is off


def test_replay_records_emulator_errors() -> None:
    out = replay(Scenario("r", (GetFwBitmap(0), GetFwBitmap(9))), _FakeVm())
    assert out[0] == 1 and isinstance(out[1], LabError)


def test_tabulate_fixture() -> None:
    scs, r612 = _fixture("6.12")
    _, r72 = _fixture("7.2")
    runs = [LabRun(k, "p", "v", rel, tuple(res), 0.0, 0.0, 0.0, "", None)
            for k, rel, res in (("6.12", "6.12.95", r612), ("7.2", "7.2.13", r72))]  # fmt: skip
    table = tabulate(scs, runs)
    assert "| install-edges | filter 0x0+0x0 a=0 | EEXIST | EINVAL |" in table
    assert "FWD nr=0xc2000005 fl=1 pc+=1" in table


@pytest.mark.parametrize("kernel", ["6.12", "7.2", "7.3"])
def test_probe_console_fixture_parses(kernel: str) -> None:
    """The captured probe runs still match probe_scenarios(); regenerate both together."""
    scs = probe_scenarios()
    out = parse_output((FIXTURES / f"console-probes-{kernel}.txt").read_text(), scs)
    by_name = {r.name: r for r in out.results}
    # PSCI_VERSION 0.1 is refused on a PSCI 0.2 vCPU and taken on a PSCI 0.1 one.
    assert by_name["psci-version-0.1"].steps[0] == ErrnoResult(errno.EINVAL)
    assert by_name["no-psci-0.2-set-0.1"].steps[0] == ErrnoResult(0)
    # The register is not locked by the first run.
    assert by_name["psci-version-after-run-1.0"].steps[1] == ErrnoResult(0)
    later = by_name["psci-version-after-run-1.0"].steps[2]
    assert isinstance(later, CallOutcome) and later.x0 == 0x10000
    zero = by_name["install-before-run"].steps[0]
    assert zero == ErrnoResult(errno.EEXIST if kernel == "6.12" else errno.EINVAL)


def test_has_device_attr_step_on_the_wire_in_json_and_on_the_emulator() -> None:
    sc = Scenario("probe", (HasDeviceAttr(0, 0), HasDeviceAttr(1, 2)))
    wire = to_wire([sc])
    assert "\nA 0 0\nA 1 2\n" in wire
    assert scenario_from_dict(scenario_to_dict(sc)) == sc
    console = "@@HVCLAB-BEGIN 1\nU 6.1.0-50-arm64\nS 0\nA 22\nA 22\nE 0 5\n@@HVCLAB-END 1 9\n"
    (res,) = parse_output(console, [sc]).results
    assert res.steps == (ErrnoResult(errno.EINVAL), ErrnoResult(errno.EINVAL))
    assert compare(sc, res, default_vm_factory("6.1", sc.config)).ok
    bad = compare(sc, res, default_vm_factory("6.12", sc.config))
    assert [(d.step, d.real, d.emulated) for d in bad.divergences] == [
        (0, errno.EINVAL, 0),
        (1, errno.EINVAL, errno.ENXIO),
    ]


def test_6_1_is_a_bookworm_kernel() -> None:
    src = cache.KERNELS["6.1"]
    assert src.suite == "bookworm" and "bookworm" in cache.SUITES
    assert re.match(src.package_re, "linux-image-6.1.0-50-arm64-unsigned")
    assert not re.match(src.package_re, "linux-image-6.1.0-50-cloud-arm64-unsigned")
    assert re.match(src.image_re, "./boot/vmlinuz-6.1.0-50-arm64")


def test_system_suspend_capability_goes_on_the_wire_and_into_json() -> None:
    sc = Scenario("s", (Call(0xC400_000E),), VmConfig(system_suspend=True))
    assert to_wire([sc]).splitlines()[1] == "S 0 a64 1 0 1"
    assert scenario_from_dict(scenario_to_dict(sc)) == sc
    # A driver that cannot enable the capability says so; the scenario has no steps.
    console = "@@HVCLAB-BEGIN 1\nU 6.12.95\nS 0\nX 22 enable_cap\nE 0 5\n@@HVCLAB-END 1 9\n"
    (res,) = parse_output(console, [sc]).results
    assert (res.setup_errno, res.setup_step, res.steps) == (errno.EINVAL, "enable_cap", ())
    said = compare(sc, res, default_vm_factory("6.12", sc.config))
    assert not said.ok
    assert "KVM_ENABLE_CAP(KVM_CAP_ARM_SYSTEM_SUSPEND) failed on the real kernel (EINVAL)" in str(
        said
    )


@pytest.mark.parametrize("kernel", ["6.1", "6.12", "7.2"])
def test_system_suspend_with_the_capability_matches_real_kernels(kernel: str) -> None:
    """Consoles of real 6.1.176, 6.12.95 and 7.2.13 kernels (lab, Dec 2026) against the emulator.

    The reference says only that SYSTEM_SUSPEND exits with type 5 and no
    register change when the VMM enabled KVM_CAP_ARM_SYSTEM_SUSPEND; these
    runs asked the rest of the kernel.
    """
    scs = system_suspend_scenarios()
    parsed = parse_output((FIXTURES / f"console-suspend-{kernel}.txt").read_text(), scs)
    assert get_profile(parsed.release).name == kernel  # "6.1" would match a 6.12 console
    by_name = {r.name: r for r in parsed.results}
    for sc in scs:
        assert compare(sc, by_name[sc.name], default_vm_factory(kernel, sc.config)).ok, sc.name
    # What the consoles say, read by hand: PSCI_FEATURES answers 0 for both IDs.
    features = by_name["suspend-cap-features-a64"].steps
    assert [s.x0 for s in features[:2] if isinstance(s, CallOutcome)] == [0, 0]
    # The exit is a SUSPEND system event with no data, x0 left as the function ID...
    (event, _) = by_name["suspend-cap-a64-64"].steps
    assert isinstance(event, CallOutcome)
    assert (event.exit, event.event_type, event.event_ndata, event.event_x0) == (
        "system_event",
        5,
        0,
        0xC400_000E,
    )
    # ... but the SMC32 ID from AArch64 narrows x1-x3 to 32 bits first: registers change.
    (narrowed, _) = by_name["suspend-cap-a64-32"].steps
    assert isinstance(narrowed, CallOutcome)
    assert (narrowed.x1, narrowed.x2, narrowed.x3) == (0x4000_0000, 0x2222, 0x3)
    # PSCI 0.2 has no SYSTEM_SUSPEND, capability or not.
    refused = by_name["suspend-cap-psci-0.2"].steps[2]
    assert isinstance(refused, CallOutcome) and refused.x0 == 0xFFFF_FFFF_FFFF_FFFF
    # With the filter (6.4+), a forward range wins over the capability.
    forwarded = by_name["suspend-cap-filter-2"].steps[3]
    assert isinstance(forwarded, CallOutcome)
    assert forwarded.exit == ("system_event" if kernel == "6.1" else "hypercall")


@pytest.mark.parametrize("kernel", ["6.12", "7.2"])
def test_discovery_answers_ignore_the_filter_on_real_kernels(kernel: str) -> None:
    """Consoles of real 6.12.95 and 7.2.13 kernels (lab, Dec 2026): HVF307's premise.

    PSCI_FEATURES and TRNG_FEATURES, asked about calls a deny (action 1) or a
    forward (action 2) range covers, and KVM_FEATURES with the PTP call
    covered, answer as with no filter at all.
    """
    scs = discovery_scenarios()
    parsed = parse_output((FIXTURES / f"console-discovery-{kernel}.txt").read_text(), scs)
    assert get_profile(parsed.release).name == kernel
    for sc, res in zip(scs, parsed.results, strict=True):
        assert compare(sc, res, default_vm_factory(kernel, sc.config)).ok, sc.name
        installs = [r for r in res.steps if isinstance(r, ErrnoResult)]
        answers = [r.x0 for r in res.steps if isinstance(r, CallOutcome)]
        assert installs and all(r.errno == 0 for r in installs)
        # CPU_SUSPEND_64, CPU_OFF, SYSTEM_RESET2_64 offered; SYSTEM_OFF2 only on 7.2
        # (with its flag bit); then TRNG_GET_UUID, RND32, RND64; then KVM_FEATURES'
        # bitmap with bit 1, PTP, still set.
        off2 = 0x1 if kernel == "7.2" else 0xFFFF_FFFF_FFFF_FFFF
        assert answers == [0, 0, 0, off2, 0, 0, 0, 0b11], sc.name
