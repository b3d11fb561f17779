"""Unit tests of hvcfilter.lint: every file linted, reports counted and sorted."""

from __future__ import annotations

from pathlib import Path

from hvcfilter.diagnostics import Severity
from hvcfilter.lint import LintReport, lint, lint_file, lint_text


def _raw(*ranges: tuple[int, int, str], kernel: str | None = None) -> str:
    head = f'[filter]\nkernel = "{kernel}"\n\n' if kernel else ""
    body = "".join(
        f'[[range]]\nbase = {b:#x}\nnr_functions = {n:#x}\naction = "{a}"\n\n' for b, n, a in ranges
    )
    return head + body


def test_lint_checks_every_file_even_after_failures(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(_raw((0xC200_0000, 0x10, "deny")))
    bad = tmp_path / "bad.toml"
    bad.write_text("[[range]]\nbase = 0x8400000G\n")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    report = lint([tmp_path / "missing.toml", bad, binary, good, tmp_path])
    assert [f.path for f in report.files] == [
        str(tmp_path / "missing.toml"),
        str(bad),
        str(binary),
        str(good),
        str(tmp_path),
    ]
    assert [f.diagnostics[0].code if f.diagnostics else None for f in report.files] == [
        "HVF001",
        "HVF002",
        "HVF001",
        None,
        "HVF001",
    ]
    assert report.unreadable
    assert report.files[3].spec is not None


def test_report_counts_and_failed() -> None:
    warn_only = lint_text('[[range]]\nfunction = "PSCI_CPU_ON_64"\naction = "fwd_to_user"\n')
    report = LintReport((warn_only,))
    assert report.count(Severity.ERROR) == 0
    assert report.count(Severity.WARNING) == 2  # HVF301 and HVF303
    assert not report.failed()
    assert report.failed(strict=True)
    erroneous = LintReport((lint_text(_raw((0x8000_0000, 1, "deny"))),))
    assert erroneous.failed()
    assert not LintReport(()).failed(strict=True)


def test_diagnostics_are_sorted_by_position() -> None:
    text = _raw((0x8000_0000, 1, "deny"), (0xC200_0000, 0, "deny"), (0x8400_0010, 0x20, "deny"))
    found = lint_text(text, "f.toml").diagnostics
    assert found == tuple(sorted(found, key=lambda d: d.sort_key()))
    assert [d.location.line for d in found] == sorted(d.location.line or 0 for d in found)


def test_lint_file_reads_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(_raw((0x8000_0000, 1, "deny")))
    report = lint_file(path)
    assert [d.code for d in report.diagnostics] == ["HVF202"]
    assert report.diagnostics[0].location.file == str(path)
    assert report.diagnostics[0].location.line == 2


def test_clean_spec_has_no_findings() -> None:
    text = """
[filter]
kernel = "6.12"

[[range]]
owner = "sip"
action = "fwd_to_user"

[[range]]
functions = ["PSCI_CPU_ON_32", "PSCI_CPU_ON_64"]
action = "deny"
"""
    assert [d.code for d in lint_text(text).diagnostics] == ["HVF302"]


def test_messages_name_ranges_in_hex_with_catalogue_names() -> None:
    diag = next(
        d
        for d in lint_text(
            _raw((0x8400_0000, 0x20, "deny"), (0x8400_0003, 1, "fwd_to_user"))
        ).diagnostics
        if d.code == "HVF201"
    )
    assert diag.message.startswith(
        "range[0] (deny 0x84000000-0x8400001F) overlaps range[1] "
        "(fwd_to_user 0x84000003 PSCI_CPU_ON_32) at 0x84000003 PSCI_CPU_ON_32"
    )
    assert diag.hint


def test_kernel_override_judges_the_vm_settings_too(tmp_path: Path) -> None:
    # --kernel used to swap the profile only after [vm] had been checked against the
    # spec's own kernel: PSCI 1.3 (7.2 only) passed for 6.12 and was flagged for 7.2.
    for_72 = tmp_path / "a.toml"
    sip = '[[range]]\nowner = "sip"\naction = "deny"\n'
    for_72.write_text(f'[filter]\nkernel = "7.2"\n[vm]\npsci_version = "1.3"\n{sip}')
    for_612 = tmp_path / "b.toml"
    for_612.write_text(f'[filter]\nkernel = "6.12"\n[vm]\npsci_version = "1.3"\n{sip}')
    flagged = lint_file(for_72, kernel="6.12").diagnostics
    assert [d.code for d in flagged] == ["HVF107"] and "kernel 6.12 refuses" in flagged[0].message
    assert lint_file(for_612, kernel="7.2").diagnostics == ()
    assert [d.code for d in lint_file(for_612).diagnostics] == ["HVF107"]  # its own kernel
