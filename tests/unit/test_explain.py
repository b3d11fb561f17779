"""Unit tests of hvcfilter.explain: rules documented, function IDs decoded, with or without spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from hvcfilter.errors import HvcFilterError, SpecError
from hvcfilter.explain import (
    FunctionExplanation,
    RuleExplanation,
    UnknownQueryError,
    explain,
    explain_id,
)
from hvcfilter.render.explain import ExplainFormat, render_explanation
from hvcfilter.spec import loads


def _raw(*ranges: tuple[int, int, str], kernel: str | None = None) -> str:
    head = f'[filter]\nkernel = "{kernel}"\n\n' if kernel else ""
    body = "".join(
        f'[[range]]\nbase = {b:#x}\nnr_functions = {n:#x}\naction = "{a}"\n\n' for b, n, a in ranges
    )
    return head + body


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


@pytest.mark.parametrize("query", ["0x\uff18\uff14", "\u0661\u0662\u0663"])
def test_explain_takes_only_ascii_numbers(query: str) -> None:
    # int() reads full-width and Arabic-Indic digits: U+FF18 U+FF14 would decode as 0x84.
    with pytest.raises(UnknownQueryError, match="is not a diagnostic code"):
        explain(query)


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


def test_explain_on_a_kernel_without_the_filter_installs_nothing() -> None:
    # 6.1 refuses every record with EINVAL (observed on 6.1.176): the deny does not apply.
    spec = loads(
        '[filter]\nkernel = "6.1"\n[[range]]\nfunction = "PSCI_CPU_ON_32"\naction = "deny"\n'
    ).spec
    assert spec is not None
    item = explain_id(0x8400_0003, spec)
    assert [c.installed for c in item.covering] == [False]
    assert item.outcome is not None
    assert "no SMCCC filter" in item.outcome and "EINVAL" in item.outcome
    assert "denies" not in item.outcome and "starts a secondary vCPU" in item.outcome
    assert any("by SMC the guest gets NOT_SUPPORTED" in n for n in item.notes)
    text = render_explanation(FunctionExplanation("0x84000003", (item,)), ExplainFormat.TEXT)
    assert "rejected by the kernel (kernel 6.1 has no SMCCC filter)" in text
    # A kernel with the filter has no such SMC note.
    assert not any("by SMC" in n for n in explain_id(0x8400_0003).notes)


@pytest.mark.parametrize("query", ["A" * 100_000, "0x" + "F" * 5_000])
def test_an_unknown_query_is_quoted_cut_not_echoed_whole(query: str) -> None:
    with pytest.raises(UnknownQueryError) as caught:
        explain(query)
    message = str(caught.value)
    assert query[:50] in message and len(message) < 200
