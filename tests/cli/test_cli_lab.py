"""CLI tests for ``hvcfilter lab setup|status`` and ``hvcfilter verify``: exit codes and output.

No QEMU: ``verify`` runs against a fake lab whose "real" answers come from the
emulator (see tests/unit/verify/test_verify.py), wired in by monkeypatching the
library functions the CLI calls.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from lab_fakes import emulator_run, fake_status
from suite_paths import ROOT

from hvcfilter import verify as verify_api
from hvcfilter.api import replay
from hvcfilter.cli import cli
from hvcfilter.cli.lab import ReportFormat
from hvcfilter.lab import LabStatus, lab_status

EXAMPLES = ROOT / "examples"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def fake_lab(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """Point ``verify``/``conformance`` at an emulated lab; ``flip`` makes one call diverge."""
    settings: dict[str, Any] = {"flip": None}
    real_verify, real_conformance = verify_api.verify, verify_api.conformance

    def fake_verify(*args: Any, **kwargs: Any) -> Any:
        kernels = args[2] if len(args) > 2 else ()
        profile = verify_api.emulator_profile(kernels[0]) if kernels else "6.12"
        kwargs.pop("cache_dir", None)
        run_fn = emulator_run(profile, flip=settings["flip"])
        return real_verify(*args, **kwargs, lab=fake_status(tmp_path), run=run_fn)

    monkeypatch.setattr(verify_api, "verify", fake_verify)
    monkeypatch.setattr(
        verify_api,
        "conformance",
        functools.partial(real_conformance, lab=fake_status(tmp_path), run=emulator_run("6.12")),
    )
    return settings


@pytest.mark.parametrize("fmt", list(ReportFormat))
def test_verify_agreeing_lab_exits_0(fake_lab: dict[str, Any], fmt: ReportFormat) -> None:
    code, out, err = run("verify", str(EXAMPLES / "deny-all-but-arch.toml"), "--format", fmt.value)
    assert code == 0, out + err
    if fmt is ReportFormat.JSON:
        doc = json.loads(out)
        assert doc["ok"] is True and doc["kernels"][0]["kernel"] == "7.2"  # the default profile
    else:
        assert "Agreement per kernel" in out and "agree with the emulator" in out
    assert "HVF302" in err  # the spec's warning is still shown


def test_verify_divergence_exits_1_and_prints_it(fake_lab: dict[str, Any]) -> None:
    fake_lab["flip"] = 0
    code, out, _ = run("verify", str(EXAMPLES / "minimal.toml"), "--kernel", "7.3")
    assert code == 1
    assert "1 divergent step(s)" in out and "x0" in out and "emulated:" in out
    assert "compared with emulator profile 7.2" in out


def test_verify_with_trace(fake_lab: dict[str, Any], tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"x0": "0x84000000", "conduit": "smc"}\n{"x0": "0xC2000005"}\n')
    code, out, err = run("verify", str(EXAMPLES / "minimal.toml"), str(trace), "--kernel", "7.2")
    assert code == 0, out + err
    assert "2 distinct calls" in out


def test_verify_spec_with_errors_exits_1(fake_lab: dict[str, Any], tmp_path: Path) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text('[[range]]\naction = "deny"\nbase = 0x80000000\nnr_functions = 4\n')
    code, out, err = run("verify", str(spec))
    assert code == 1 and "error" in err and out == ""


def test_verify_unreadable_spec_exits_2(fake_lab: dict[str, Any], tmp_path: Path) -> None:
    code, _, err = run("verify", str(tmp_path / "missing.toml"))
    assert code == 2 and "HVF001" in err


def test_verify_without_lab_exits_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    code, _, err = run("verify", str(EXAMPLES / "minimal.toml"))
    assert code == 2 and "hvcfilter lab setup" in err


def test_verify_conformance(fake_lab: dict[str, Any]) -> None:
    code, out, _ = run("verify", "--conformance", "--count", "5", "--seed", "2", "--kernel", "6.12")
    assert code == 0 and "conformance seed 2" in out
    code, _, err = run("verify", "--conformance", str(EXAMPLES / "minimal.toml"))
    assert code == 2 and "--conformance takes no SPEC" in err


def test_verify_rejects_unknown_kernel() -> None:
    code, _, err = run("verify", str(EXAMPLES / "minimal.toml"), "--kernel", "5.4")
    assert code == 2 and "5.4" in err


@pytest.mark.parametrize("fmt", list(ReportFormat))
def test_lab_status_not_ready_exits_1(tmp_path: Path, fmt: ReportFormat) -> None:
    code, out, _ = run("lab", "status", "--cache", str(tmp_path), "--format", fmt.value)
    assert code == 1
    if fmt is ReportFormat.JSON:
        assert json.loads(out)["ready"] is False
    else:
        assert "not ready" in out


def test_lab_status_ready_exits_0(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("hvcfilter.lab.lab_status", lambda _cache: fake_status(tmp_path))
    code, out, _ = run("lab", "status")
    assert code == 0 and "ready" in out and "kernel 7.3" in out


def test_lab_setup_reports_progress(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def fake_prepare(cache: Path | None, kernels: Any, progress: Any) -> LabStatus:
        seen.update(cache=cache, kernels=tuple(kernels))
        progress("downloading linux-image-6.12")
        return fake_status(tmp_path)

    monkeypatch.setattr("hvcfilter.lab.prepare_lab", fake_prepare)
    code, out, err = run("lab", "setup", "--cache", str(tmp_path), "--kernel", "7.3")
    assert code == 0 and "ready" in out and "downloading linux-image-6.12" in err
    assert seen == {"cache": tmp_path, "kernels": ("7.3",)}
    code, _, _ = run("lab", "setup", "--cache", str(tmp_path))
    assert seen["kernels"] == ("6.1", "6.12", "7.2")


def test_lab_setup_failure_exits_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from hvcfilter.errors import LabError

    def failing(*_: Any, **__: Any) -> LabStatus:
        raise LabError("run: sudo apt-get install -y qemu-system-arm")

    monkeypatch.setattr("hvcfilter.lab.prepare_lab", failing)
    code, _, err = run("lab", "setup", "--cache", str(tmp_path))
    assert code == 2 and "sudo apt-get install" in err


def test_lab_status_of_real_cache_is_consistent() -> None:
    # Whatever this machine has, the exit code must match the status.
    code, _, _ = run("lab", "status")
    assert code == (0 if lab_status().ready else 1)


def test_verify_save_trace_needs_guest(tmp_path: Path) -> None:
    code, _, err = run(
        "verify", str(EXAMPLES / "minimal.toml"), "--save-trace", str(tmp_path / "t")
    )
    assert code == 2 and "--save-trace needs --guest" in err
    assert not (tmp_path / "t").exists()


def test_verify_guest_without_lab_exits_2_with_the_setup_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    code, _, err = run("verify", "--guest", str(EXAMPLES / "minimal.toml"))
    assert code == 2 and "hvcfilter lab setup" in err and "Traceback" not in err


def test_verify_guest_save_trace_writes_one_file_per_kernel(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from hvcfilter.verify import guest as guest_mod

    def fake(spec: str, kernels: tuple[str, ...], **_: Any) -> guest_mod.GuestResult:
        reports = tuple(
            guest_mod.GuestReport(
                k,
                True,
                True,
                1,
                1,
                "0",
                1.0,
                "0 0 0",
                "SHUTDOWN",
                (),
                (),
                (),
                (),
                (),
                trace=f"# tracer: nop\n trace of {k}\n",
            )
            for k in kernels or ("6.12",)  # the spec's own profile
        )
        return guest_mod.GuestResult(spec, True, False, (), reports)

    monkeypatch.setattr(guest_mod, "verify_guest", fake)
    one = tmp_path / "one.txt"
    code, _, _ = run("verify", "--guest", str(EXAMPLES / "minimal.toml"), "--save-trace", str(one))
    assert code == 0 and one.read_text() == "# tracer: nop\n trace of 6.12\n"
    both = tmp_path / "guest.txt"
    args = ["--kernel", "6.12", "--kernel", "7.2", "--save-trace", str(both)]
    code, _, _ = run("verify", "--guest", str(EXAMPLES / "minimal.toml"), *args)
    assert code == 0 and not both.exists()
    assert (tmp_path / "guest.7.2.txt").read_text().endswith("trace of 7.2\n")
    assert (tmp_path / "guest.6.12.txt").read_text().endswith("trace of 6.12\n")


def test_lab_boot_calls_without_lab_exits_2_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "boot-calls.json"
    code, _, err = run("lab", "boot-calls", "-o", str(out))
    assert code == 2 and "hvcfilter lab setup" in err
    assert not out.exists()


def test_verify_guest_save_trace_jsonl_keeps_smc_calls_and_ftrace_warns(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from hvcfilter.verify import guest as guest_mod

    smc = guest_mod.GuestCall(
        0, "smc", 0x8400000A, "PSCI_FEATURES_32", "handle", "kernel", 0, None, "kernel",
        args=(0xC4000003, 0, 0), predicted_x0=0,
    )  # fmt: skip
    received: dict[str, Any] = {}

    def fake(spec: str, kernels: tuple[str, ...], **kw: Any) -> guest_mod.GuestResult:
        received.update(kw)
        report = guest_mod.GuestReport(
            "6.12", True, True, 1, 1, "0", 1.0, "0 0 0", "SHUTDOWN", (), (smc,), (), (), (),
            trace="# tracer: nop\n", conduit="smc",
        )  # fmt: skip
        return guest_mod.GuestResult(spec, True, False, (), (report,))

    monkeypatch.setattr(guest_mod, "verify_guest", fake)
    spec = str(EXAMPLES / "minimal.toml")
    jsonl = tmp_path / "guest.jsonl"
    code, _, err = run("verify", "--guest", spec, "--conduit", "smc", "--save-trace", str(jsonl))
    assert code == 0 and received["conduit"] == "smc" and "warning" not in err
    # The saved calls replay as what they were: one SMC PSCI_FEATURES(CPU_ON_64), handled.
    report = replay([str(jsonl)], kernel="6.12")
    assert report.summary.calls == 1 and report.summary.outcomes["handled"] == 1
    (row,) = [json.loads(ln) for ln in jsonl.read_text().splitlines() if not ln.startswith("#")]
    assert row == {"x0": "0x8400000a", "x1": "0xc4000003", "x2": "0x0", "x3": "0x0",
                   "conduit": "smc", "imm": 0, "vcpu": 0}  # fmt: skip
    ftrace = tmp_path / "guest.txt"
    code, _, err = run("verify", "--guest", spec, "--conduit", "smc", "--save-trace", str(ftrace))
    assert code == 0 and "the 1 SMC calls are not in the saved trace" in err and ".jsonl" in err
