"""Unit tests of hvcfilter.checks: the registry, the shared analysis, lint() and explain()."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from hvcfilter import rules, smccc
from hvcfilter.diagnostics import Severity
from hvcfilter.errors import HvcFilterError, SpecError
from hvcfilter.explain import (
    FunctionExplanation,
    RuleExplanation,
    UnknownQueryError,
    explain,
    explain_id,
)
from hvcfilter.kernel import KvmVm
from hvcfilter.kernel.profiles import PROFILES, get_profile
from hvcfilter.lint import LintReport, lint, lint_file, lint_text
from hvcfilter.model import Action, VmConfig
from hvcfilter.rules import (
    CHECKS,
    Rule,
    all_rules,
    analysis,
    find_rule,
    kernel_calls,
    owners,
    register_rules,
    registry,
)
from hvcfilter.spec import INPUT_RULES, loads

# What the issue asks of each rule: only a table the kernel refuses is an error.
EXPECTED_SEVERITY = {
    "HVF201": Severity.ERROR,
    "HVF202": Severity.ERROR,
    "HVF203": Severity.ERROR,
    "HVF204": Severity.WARNING,
    "HVF205": Severity.NOTE,
    "HVF206": Severity.WARNING,
    "HVF301": Severity.WARNING,
    "HVF302": Severity.WARNING,
    "HVF303": Severity.WARNING,
    "HVF304": Severity.WARNING,
    "HVF305": Severity.WARNING,
}


def _raw(*ranges: tuple[int, int, str], kernel: str | None = None) -> str:
    head = f'[filter]\nkernel = "{kernel}"\n\n' if kernel else ""
    body = "".join(
        f'[[range]]\nbase = {b:#x}\nnr_functions = {n:#x}\naction = "{a}"\n\n' for b, n, a in ranges
    )
    return head + body


# --------------------------------------------------------------------------- registry


def test_checks_have_the_expected_codes_and_severities() -> None:
    assert {c.code: c.severity for c in CHECKS} == EXPECTED_SEVERITY


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.code)
def test_check_docstring_is_documentation_with_examples(check: rules.Check) -> None:
    doc = check.doc
    assert doc.splitlines()[0].endswith(".")
    assert "Fail:" in doc and "Pass:" in doc
    assert check.rule.summary == doc.splitlines()[0]


def test_all_rules_unique_well_formed_and_sorted() -> None:
    rules = all_rules()
    codes = [r.code for r in rules]
    names = [r.name for r in rules]
    assert codes == sorted(codes)
    assert len(set(codes)) == len(codes)
    # Names are unique across every group, so `explain NAME` is exact.
    assert len(set(names)) == len(names)
    for rule in rules:
        assert re.fullmatch(r"HVF\d{3}", rule.code)
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.name)
        assert rule.doc.strip()
    assert {r.code for r in INPUT_RULES} <= set(codes)
    assert {c.code for c in CHECKS} <= set(codes)


def test_all_rules_reads_provider_modules() -> None:
    # payload.py documents the HVF4xx codes; they are listed without importing it up front.
    assert any(r.code.startswith("HVF4") for r in all_rules())


def test_register_rules_adds_and_refuses_reuse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTERED", [])
    register_rules([Rule("HVF599", "test-only-rule", Severity.NOTE, "Only for a test.")])
    assert find_rule("HVF599") is not None
    register_rules([Rule("HVF599", "test-only-rule", Severity.NOTE, "Same again.")])  # idempotent
    with pytest.raises(ValueError, match="never reused"):
        register_rules([Rule("HVF201", "something-else", Severity.NOTE, "x")])
    with pytest.raises(ValueError, match="three digits"):
        register_rules([Rule("HVF59", "bad-code", Severity.NOTE, "x")])
    with pytest.raises(ValueError, match="kebab"):
        register_rules([Rule("HVF598", "Bad_Name", Severity.NOTE, "x")])


def test_missing_provider_module_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "RULE_PROVIDERS", [("hvcfilter.no_such_module", "RULES")])
    assert {r.code for r in all_rules()} == {r.code for r in INPUT_RULES} | {c.code for c in CHECKS}


@pytest.mark.parametrize("query", ["HVF201", "hvf201", "overlapping-ranges", "overlapping_ranges"])
def test_find_rule(query: str) -> None:
    rule = find_rule(query)
    assert rule is not None and rule.code == "HVF201"


def test_find_rule_by_name_prefers_the_lowest_code() -> None:
    rule = find_rule("reserved-range")
    assert rule is not None and rule.code == "HVF202"


def test_find_rule_unknown() -> None:
    assert find_rule("HVF999") is None


# --------------------------------------------------------------------------- kernel facts


def test_kernel_calls_follow_profile_and_vm() -> None:
    new, old = get_profile("7.2"), get_profile("6.12")
    assert 0x8400_0015 in kernel_calls(new)  # SYSTEM_OFF2 with the 1.3 default
    assert 0x8400_0015 not in kernel_calls(old)
    assert 0x8400_0015 not in kernel_calls(new, VmConfig(psci_version=(1, 1)))
    assert 0x8400_0050 in kernel_calls(new)
    assert 0x8400_0050 not in kernel_calls(new, VmConfig(bitmaps={0: 0}))
    assert 0x8600_0001 not in kernel_calls(new, VmConfig(bitmaps={2: 0x1}))
    assert 0x8600_0000 in kernel_calls(new, VmConfig(bitmaps={2: 0x1}))
    legacy = kernel_calls(new, VmConfig(psci_version=(0, 1)))
    assert 0x95C1_BA60 in legacy and 0x8400_0003 not in legacy
    assert 0x8400_000A not in kernel_calls(new, VmConfig(psci_version=(0, 2)))
    assert 0x8400_000E not in kernel_calls(new)  # SYSTEM_SUSPEND needs a capability


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_kernel_calls_agree_with_the_emulator(profile: str) -> None:
    """The linter's view of what KVM answers (kvm_calls data) must match the emulator's handlers.

    SMC avoids the HVC-only ARCH_WORKAROUND fast path; a stolen-time IPA makes PV time answer.
    """
    prof = PROFILES[profile]
    ids = sorted({e.function_id for e in smccc.catalogue().entries})
    for psci in prof.psci_versions_accepted:
        for bitmaps in ({}, {0: 0, 1: 0, 2: 0}):
            vm_config = VmConfig(psci, bitmaps)
            vm = KvmVm.from_config(prof, vm_config, stolen_time_ipa=0x1000)
            handled = {fid for fid in ids if vm.resolve(fid, "smc").outcome == "handled"}
            assert handled == set(kernel_calls(prof, vm_config)), (psci, bitmaps)


# --------------------------------------------------------------------------- analysis


def _brute_overlaps(ranges: list[tuple[int, int]]) -> set[int]:
    """Indices (in base order) of records that share an ID with an earlier one: O(n^2)."""
    order = sorted(range(len(ranges)), key=lambda i: ranges[i][0])  # ties: entry order
    hit = set()
    for pos, i in enumerate(order):
        b, n = ranges[i]
        for j in order[:pos]:
            bj, nj = ranges[j]
            if b <= bj + nj - 1 and bj <= b + n - 1:
                hit.add(i)
    return hit


@pytest.mark.parametrize("seed", range(8))
def test_overlap_sweep_matches_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    ranges = [(0xC200_0000 + rng.randrange(0, 400), rng.randrange(1, 40)) for _ in range(60)]
    text = _raw(*[(b, n, "deny") for b, n in ranges])
    report = lint_text(text)
    found = [d for d in report.diagnostics if d.code == "HVF201"]
    flagged = set()
    for diag in found:
        match = re.search(r"overlaps range\[(\d+)\]", diag.message)
        assert match is not None
        flagged.add(int(match.group(1)))
    # Every record that shares an ID with an earlier one (in base order) is named once.
    assert len(found) == len(flagged)
    assert flagged == _brute_overlaps(ranges)


def test_lookup_uses_the_installed_table() -> None:
    spec = loads(
        _raw(
            (0xC200_0000, 0x10, "deny"),
            (0xC200_0008, 0x10, "fwd_to_user"),
            (0xC200_0018, 4, "fwd_to_user"),
        )
    ).spec
    assert spec is not None
    a = analysis.analyse(spec)
    assert a.lookup(0xC200_0009) is spec.ranges[0]  # the second overlaps, so it is not installed
    assert a.lookup(0xC200_0019) is spec.ranges[2]  # installed: it only overlaps a rejected one
    assert a.lookup(0xC200_0010) is None
    assert a.action_at(0xC200_0000)[0] is Action.DENY


def test_as_written_layout_installs_in_spec_order() -> None:
    records = _raw(
        (0xC200_0008, 0x10, "fwd_to_user"), (0xC200_0000, 0x10, "deny"), (0xC200_0018, 4, "deny")
    )
    sorted_spec = loads(records).spec
    written = loads('[filter]\nlayout = "as-written"\n\n' + records).spec
    assert sorted_spec is not None and written is not None
    # Compiled by base, range[1] goes in first and range[0] is refused; in spec order
    # range[0] goes in first and range[1] is refused. range[2] is adjacent: kept either way.
    assert analysis.analyse(sorted_spec).lookup(0xC200_0009) is sorted_spec.ranges[1]
    assert analysis.analyse(sorted_spec).lookup(0xC200_0019) is sorted_spec.ranges[2]
    assert analysis.analyse(written).lookup(0xC200_0009) is written.ranges[0]
    assert analysis.analyse(written).lookup(0xC200_0019) is written.ranges[2]
    assert analysis.analyse(written).lookup(0xC200_0001) is None


def test_unsorted_and_sorted_inputs_give_the_same_findings() -> None:
    ranges = [(0xC200_0000 + 0x40 * i, 0x20 if i % 3 else 0x48, "deny") for i in range(30)]
    shuffled = ranges[:]
    random.Random(1).shuffle(shuffled)
    a = lint_text(_raw(*ranges)).diagnostics
    b = lint_text(_raw(*shuffled)).diagnostics
    assert sorted(d.code for d in a) == sorted(d.code for d in b)
    assert sum(d.code == "HVF201" for d in a) == 10


def test_analysis_is_cached_per_spec_and_released() -> None:
    spec = loads(_raw((0xC200_0000, 1, "deny"))).spec
    assert spec is not None
    assert analysis.analyse(spec) is analysis.analyse(spec)
    rules.check_spec(spec)
    assert id(spec) not in analysis._CACHE


# --------------------------------------------------------------------------- lint API


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


# --------------------------------------------------------------------------- explain


def test_explain_rule_by_code_and_name() -> None:
    by_code = explain("HVF201")
    by_name = explain("overlapping-ranges")
    assert isinstance(by_code, RuleExplanation) and by_code == by_name
    assert "Fail:" in by_code.rule.doc


def test_explain_input_and_payload_rules() -> None:
    assert isinstance(explain("HVF002"), RuleExplanation)
    assert isinstance(explain("HVF401"), RuleExplanation)


def test_explain_unknown_code_suggests() -> None:
    with pytest.raises(UnknownQueryError, match="HVF201"):
        explain("HVF209")
    assert issubclass(UnknownQueryError, HvcFilterError)


def test_explain_unknown_name_suggests() -> None:
    with pytest.raises(UnknownQueryError, match="PSCI_CPU_ON"):
        explain("psci_cpu_onn_32")


def test_explain_number_out_of_range() -> None:
    with pytest.raises(UnknownQueryError, match="32-bit"):
        explain("0x184000003")


def test_explain_id_decodes_fields() -> None:
    result = explain("0x84000003")
    assert isinstance(result, FunctionExplanation)
    item = result.functions[0]
    assert item.name == "PSCI_CPU_ON_32"
    assert item.decoded.owner == 4 and item.decoded.function_number == 3
    assert [t.name for t in item.twins] == ["PSCI_CPU_ON_64"]
    assert item.family == "PSCI"
    assert "starts a secondary vCPU" in item.kernel_default
    assert item.outcome is None


def test_explain_by_name_and_stem() -> None:
    by_name = explain("psci_cpu_on_64")
    assert isinstance(by_name, FunctionExplanation)
    assert [f.fid for f in by_name.functions] == [0xC400_0003]
    stem = explain("PSCI_CPU_ON")
    assert isinstance(stem, FunctionExplanation)
    assert [f.fid for f in stem.functions] == [0x8400_0003, 0xC400_0003]


def test_explain_reserved_hinted_and_fast_path() -> None:
    soc = explain_id(0x8000_0002)
    assert soc.reserved == (0x8000_0000, 0x8000_FFFF)
    assert "always handled by KVM" in soc.kernel_default
    hinted = explain_id(0x8401_0000)
    assert any("not 0x84000000 PSCI_VERSION_32" in n for n in hinted.notes)
    assert "PSCI code" in hinted.kernel_default
    legacy = explain_id(0x95C1_BA60)  # KVM PSCI 0.1 CPU_ON: no SMCCC call it could be a hint of
    assert not any("bits 23:16" in n for n in legacy.notes)
    wa1 = explain_id(0x8000_8000)
    assert any("answered at EL2" in n for n in wa1.notes)
    unknown = explain_id(0xC200_0005)
    assert "does not implement" in unknown.kernel_default


def test_explain_with_spec(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        _raw((0x8400_0000, 0x20, "deny"), (0x8400_0003, 1, "fwd_to_user"), kernel="6.12")
    )
    result = explain("0x84000003", path)
    assert isinstance(result, FunctionExplanation)
    item = result.functions[0]
    assert item.profile.name == "6.12"
    assert [(c.record.entry, c.installed) for c in item.covering] == [(0, True), (1, False)]
    assert item.outcome is not None and "denies it" in item.outcome
    other = explain("0xC2000000", path)
    assert isinstance(other, FunctionExplanation)
    assert other.functions[0].covering == ()
    assert other.functions[0].outcome is not None
    assert "no deny or fwd_to_user range applies" in other.functions[0].outcome


def test_explain_with_forwarding_spec() -> None:
    spec = loads('[[range]]\nservice = "psci"\naction = "fwd_to_user"\n').spec
    assert spec is not None
    item = explain_id(0xC400_0003, spec)
    assert item.outcome is not None and "KVM_EXIT_HYPERCALL" in item.outcome


def test_explain_with_broken_spec(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[[range]]\nbase = \n")
    with pytest.raises(SpecError, match=r"bad\.toml"):
        explain("0x84000000", path)
    with pytest.raises(SpecError, match="cannot read"):
        explain("0x84000000", tmp_path / "missing.toml")


def test_explain_id_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        explain_id(1 << 32)


def test_twin_pairs_include_name_pairs_with_different_stems() -> None:
    pairs = {(t.one, t.other) for t in owners._twin_pairs()}
    assert (0x8400_0003, 0xC400_0003) in pairs
    assert (0x8400_0053, 0xC400_0053) in pairs  # TRNG_RND32 / TRNG_RND64
    assert (0x8600_0000, 0xC600_0000) not in pairs  # unrelated calls that share bits
    for one, other in pairs:
        assert one ^ other == smccc.CONVENTION_BIT


def test_allow_accepts_warnings_of_its_own_range_only() -> None:
    text = """
[[range]]
action = "fwd_to_user"
functions = ["PSCI_CPU_ON_32", "PSCI_CPU_ON_64"]
allow = ["HVF303"]

[[range]]
action = "fwd_to_user"
functions = ["PSCI_CPU_OFF_32"]
"""
    found = [(d.code, d.location.key) for d in lint_text(text, "a.toml").diagnostics]
    assert ("HVF303", "range[1].functions") in found
    assert all(not (code == "HVF303" and (key or "").startswith("range[0]")) for code, key in found)


def test_filter_allow_accepts_everywhere_but_never_an_error() -> None:
    text = """
[filter]
allow = ["forwards-kernel-call", "HVF201"]

[[range]]
action = "fwd_to_user"
base = 0x84000002
nr_functions = 2

[[range]]
action = "deny"
base = 0x84000003
nr_functions = 1
"""
    codes = [d.code for d in lint_text(text, "b.toml").diagnostics]
    assert "HVF303" not in codes
    assert "HVF201" in codes and "HVF108" in codes
