"""``hvcfilter learn`` through click: spec and tally files, merging, --against, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from suite_paths import EXAMPLES, ROOT, TRACES

from hvcfilter.cli import cli

SAMPLE = str(TRACES / "sample-6.12.txt")
JSONL = str(TRACES / "calls.jsonl")
CSV = str(TRACES / "calls.csv")


def _run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["learn", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_writes_a_check_clean_spec(tmp_path: Path) -> None:
    out = tmp_path / "learned.toml"
    code, _, _ = _run("--kernel", "6.12", SAMPLE, "-o", str(out))
    assert code == 0
    assert "# kernel profile: 6.12" in out.read_text()
    check = CliRunner().invoke(cli, ["check", str(out)])
    assert check.exit_code == 0, check.stdout


def test_a_missing_tally_is_named_with_the_fix(tmp_path: Path) -> None:
    code, out, err = _run("--tally", str(tmp_path / "host1.json"))
    assert code == 2 and out == ""
    missing = tmp_path / "host1.json"
    assert err == f"hvcfilter: error: cannot read {missing}: no such file; check the path\n"


def test_stdin_and_same_bytes_twice() -> None:
    data = Path(SAMPLE).read_bytes()
    first = _run("-", stdin=data)
    assert first[0] == 0 and "#   <stdin>" in first[1]
    assert _run("-", stdin=data)[1] == first[1]


def test_tallies_merge_like_one_run(tmp_path: Path) -> None:
    tallies = []
    for i, trace in enumerate((SAMPLE, JSONL, CSV)):
        tallies.append(str(tmp_path / f"t{i}.json"))
        assert _run(trace, "--tally-out", tallies[-1])[0] == 0
    merged_a = _run("--tally", *tallies)[1]
    merged_b = _run("--tally", *tallies[::-1])[1]
    # A tree: two tallies merged into one tally first, then with the third.
    tree = str(tmp_path / "tree.json")
    assert _run("--tally", tallies[2], tallies[0], "--tally-out", tree)[0] == 0
    merged_c = _run("--tally", tree, tallies[1])[1]
    assert merged_a == merged_b == merged_c
    direct = _run(SAMPLE, JSONL, CSV)[1]
    # The header names the command; everything from [filter] on is the same.
    assert direct.split("[filter]", 1)[1] == merged_a.split("[filter]", 1)[1]


def test_trace_with_no_calls_writes_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# tracer: nop\n")
    out = tmp_path / "out.toml"
    code, _, err = _run(str(empty), "-o", str(out))
    assert code == 2
    assert "no calls with a function ID" in err
    assert not out.exists()
    assert _run(str(empty), "--tally-out", str(out))[0] == 2 and not out.exists()


def test_corrupt_other_version_and_mixed_tallies(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = _run("--tally", str(bad))
    assert code == 2 and "bad.json:1: not a tally" in err
    good = tmp_path / "good.json"
    assert _run("--kernel", "6.12", SAMPLE, "--tally-out", str(good))[0] == 0
    doc = json.loads(good.read_text())
    doc["version"] = 9
    (tmp_path / "v9.json").write_text(json.dumps(doc))
    code, _, err = _run("--tally", str(tmp_path / "v9.json"))
    assert code == 2 and "tally version 9" in err
    other = tmp_path / "other.json"
    assert _run("--kernel", "7.2", SAMPLE, "--tally-out", str(other))[0] == 0
    code, _, err = _run("--tally", str(good), str(other))
    # Both files named, so that the odd host of a fleet can be found.
    assert code == 2 and f"cannot merge {good} (kernel 6.12) and {other} (kernel 7.2)" in err


def test_never_overwrites_an_input(tmp_path: Path) -> None:
    trace = tmp_path / "trace.txt"
    trace.write_bytes(Path(SAMPLE).read_bytes())
    code, _, _ = _run(str(trace), "-o", str(trace))
    assert code == 2
    assert trace.read_bytes() == Path(SAMPLE).read_bytes()


@pytest.mark.parametrize("how", ["directory", "glob", "tally-out"])
def test_never_overwrites_an_input_reached_through_a_directory_or_glob(
    tmp_path: Path, how: str
) -> None:
    traces = tmp_path / "traces"
    traces.mkdir()
    trace = traces / "a.jsonl"
    trace.write_text('{"x0": "0x84000000"}\n')
    args = {
        "directory": (str(traces), "-o", str(trace)),
        "glob": (str(traces / "*.jsonl"), "-o", str(trace)),
        "tally-out": (str(traces), "--tally-out", str(trace)),
    }[how]
    code, _, stderr = _run(*args)
    assert code == 2
    assert "refusing to overwrite input" in stderr
    assert trace.read_text() == '{"x0": "0x84000000"}\n'


def test_a_tally_nested_too_deeply_is_not_a_tally(tmp_path: Path) -> None:
    tally = tmp_path / "deep.json"
    tally.write_text("[" * 100_000 + "]" * 100_000)
    code, _, stderr = _run("--tally", str(tally))
    assert code == 2
    assert "not a tally (invalid JSON: nested too deeply)" in stderr


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_against_without_an_output_reports_on_stdout(tmp_path: Path, fmt: str) -> None:
    # Nothing else is written then, so the report is the command's output.
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"x0": "0xC2000000"}\n')
    spec = tmp_path / "old.toml"
    spec.write_text('[filter]\nkernel = "6.12"\n')
    code, stdout, stderr = _run(str(trace), "--against", str(spec), "--format", fmt)
    assert code == 0 and stderr == ""
    if fmt == "json":
        assert json.loads(stdout)["calls"] == 1
    else:
        assert "against 1 traced calls" in stdout


def test_against_a_payload_says_decompile_not_an_option_learn_lacks(tmp_path: Path) -> None:
    payload = tmp_path / "vm.bin"
    compiled = CliRunner().invoke(
        cli, ["compile", str(EXAMPLES / "minimal.toml"), "-o", str(payload)]
    )
    assert compiled.exit_code == 0
    code, out, err = _run(JSONL, "--against", str(payload))
    assert code == 2 and out == ""
    assert err == (
        f"hvcfilter: error: {payload} is a binary payload of 1 record(s), not a spec; "
        f"`hvcfilter decompile {payload}` turns it into a spec\n"
    )


def test_against_report_and_tightened_spec(tmp_path: Path) -> None:
    spec = tmp_path / "old.toml"
    spec.write_text(
        '[filter]\nkernel = "6.12"\n\n[[range]]\naction = "fwd_to_user"\nbase = 0xC5000000\n'
        "nr_functions = 0x100\n"
    )
    out = tmp_path / "tight.toml"
    code, stdout, _ = _run(
        "--kernel", "6.12", SAMPLE, "--against", str(spec), "--format", "json", "-o", str(out)
    )
    assert code == 1
    doc = json.loads(stdout)
    assert doc["format"] == "hvcfilter-learn-against-v1"
    # The trace shows 0xC2000005 forwarded; without a fwd_to_user range KVM would deny it.
    assert [(c["function_id"], c["traced"], c["under_spec"]) for c in doc["would_break"]] == [
        ("0xC2000005", "forwarded", "not_supported")
    ]
    assert [r["base"] for r in doc["unused"]] == ["0xC5000000"]
    assert out.read_text().startswith("# Learned by hvcfilter")


def test_overrides_and_usage_errors() -> None:
    code, out, _ = _run(SAMPLE, "--forward", "trng", "--granularity", "service")
    assert code == 0 and 'action = "fwd_to_user"\nbase = 0x84000050' in out
    assert _run(SAMPLE, "--forward", "nope")[0] == 2
    assert _run("--tally", SAMPLE, "--kernel", "6.12")[0] == 2


def test_a_tally_can_come_from_standard_input(tmp_path: Path) -> None:
    tally = tmp_path / "t.json"
    assert _run("--kernel", "6.12", SAMPLE, "--tally-out", str(tally))[0] == 0
    result = CliRunner().invoke(cli, ["learn", "--tally", "-", "-o", "-"], input=tally.read_bytes())
    assert result.exit_code == 0, result.stderr
    assert 'kernel = "6.12"' in result.stdout


def test_a_mixed_outcome_is_noted_on_stderr(tmp_path: Path) -> None:
    smc = tmp_path / "smc.jsonl"
    smc.write_text('{"x0": "0xC2000005", "conduit": "smc"}\n')  # answered by the kernel
    result = CliRunner().invoke(cli, ["learn", "--kernel", "6.12", SAMPLE, str(smc), "-o", "-"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == (
        "hvcfilter: note: 0xC2000005 was forwarded in some calls and answered by the kernel "
        "in others; the learned table forwards it (see its header)\n"
    )

    kept = CliRunner().invoke(
        cli,
        ["learn", "--kernel", "6.12", SAMPLE, str(smc), "--handle", "0xC2000005", "-o", "-"],
    )
    assert kept.exit_code == 0, kept.stderr
    assert kept.stderr == (
        "hvcfilter: note: 0xC2000005 was forwarded in some calls and answered by the kernel "
        "in others; the learned table keeps it in the kernel (see its header)\n"
    )


def test_a_tally_given_as_a_trace_says_to_use_tally(tmp_path: Path) -> None:
    tally = tmp_path / "host.json"
    assert _run("--kernel", "6.12", SAMPLE, "--tally-out", str(tally))[0] == 0
    code, _, err = _run(str(tally))
    assert code == 2 and f"{tally} is a tally, not a trace: pass it with --tally" in err


def test_a_trace_without_calls_among_others_is_noted(tmp_path: Path) -> None:
    empty = tmp_path / "failed-host.txt"
    empty.write_text("")
    result = CliRunner().invoke(cli, ["learn", "--kernel", "6.12", SAMPLE, str(empty), "-o", "-"])
    assert result.exit_code == 0, result.stderr
    assert f"note: {empty} holds no call" in result.stderr


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--kernel", "6.12", "-", "--against", "-"], "--against and TRACE"),
        (["--kernel", "6.12", "-", "-"], "TRACE and TRACE"),
        (["--tally", "-", "-"], "TALLY and TALLY"),
    ],
)
def test_stdin_can_be_only_one_input(args: list[str], named: str) -> None:
    # The second reader of stdin would find it empty and learn from nothing.
    code, out, err = _run(*args, stdin=b'{"x0": "0x84000000", "conduit": "hvc"}\n')
    assert code == 2 and out == ""
    assert f"only one input can be - (standard input), not {named}" in err


def test_against_a_spec_on_stdin_judges_the_spec_not_an_empty_table() -> None:
    # Without --kernel the spec is read first for its kernel; stdin cannot be read
    # a second time, and the report judged an empty payload instead.
    spec = ROOT / "examples" / "lockdown.toml"
    code, out, err = _run(SAMPLE, "--against", "-", "--format", "json", stdin=spec.read_bytes())
    by_path = _run(SAMPLE, "--against", str(spec), "--format", "json")
    assert (code, err) == by_path[::2]
    piped, named = json.loads(out), json.loads(by_path[1])
    piped.pop("spec"), named.pop("spec")
    assert piped == named
    assert named["would_break"], "lockdown denies calls the sample makes"


def test_a_second_learn_of_a_large_trace_uses_the_tally_simulate_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tally_cache: Path
) -> None:
    # Relearning one capture with other flags re-read the whole trace every time.
    store = tally_cache
    trace = tmp_path / "t.txt"
    trace.write_bytes(Path(SAMPLE).read_bytes())
    args = ["--kernel", "6.12", str(trace), "-o", "-"]
    assert _run(*args, "--no-cache")[0] == 0
    assert not store.exists()
    # A stream's temporary copy is never kept: it could never be found again.
    assert _run("--kernel", "6.12", "-", "-o", "-", stdin=trace.read_bytes())[0] == 0
    assert not store.exists()
    first = CliRunner().invoke(cli, ["simulate", str(trace), "--kernel", "6.12"])
    assert first.exit_code in (0, 1), first.stderr
    assert len(list(store.glob("*.json"))) == 1
    expected = _run(*args, "--no-cache")
    monkeypatch.setattr("hvcfilter.trace.ftrace_tally", lambda *_a: 1 / 0)  # no second read
    assert _run(*args) == expected
    assert _run(*args, "--no-cache")[0] == 3


_GOOD_HVC = (
    "    vmm-100     [000] .....     1.000002: kvm_hvc_arm64: HVC at 0x0000000040000028 "
    "(r0: 0x0000000080000000, imm: 0x0)\n"
)
_CUT_HVC = (
    "    vmm-100     [000] .....     1.000003: kvm_hvc_arm64: HVC at 0x0000000040000028 "
    "(r0: 0x00000000c4000003, imm: 0x0\n"
)


def test_skipped_lines_are_told_as_simulate_tells_them(tmp_path: Path) -> None:
    # learn dropped them without a word, and the table denied the call on the line.
    trace = tmp_path / "t.txt"
    trace.write_text(_GOOD_HVC + _CUT_HVC)
    out = tmp_path / "t.toml"
    code, _, err = _run(str(trace), "-o", str(out))
    assert code == 0 and out.exists()
    assert err.startswith(
        f"hvcfilter: warning: {trace}: 1 line(s) could not be parsed and were skipped, and a "
        f"call on them is denied by the learned table; the first: {trace}:2: malformed "
        "kvm_hvc_arm64 event:"
    )
    assert err.count("\n") == 1


@pytest.mark.parametrize("tally_out", [False, True], ids=["spec", "tally"])
def test_strict_writes_nothing_when_a_line_was_skipped(tmp_path: Path, tally_out: bool) -> None:
    trace = tmp_path / "t.txt"
    trace.write_text(_GOOD_HVC + _CUT_HVC)
    out = tmp_path / "out"
    code, _, err = _run(
        str(trace), "--strict", "--tally-out" if tally_out else "-o", str(out), JSONL
    )
    assert code == 1
    assert err.endswith(
        "hvcfilter: error: 1 trace line(s) could not be parsed (--strict): nothing written\n"
    )
    assert not out.exists()
    assert _run(JSONL, "--strict", "-o", str(out))[0] == 0  # nothing skipped: written


def test_a_trace_of_which_no_line_is_an_event_is_an_error_not_a_note(tmp_path: Path) -> None:
    # A first line starting with "{" made an ftrace file JSON Lines: every line was
    # skipped, the host's calls vanished from the fleet's table, and learn exited 0.
    trace = tmp_path / "host.txt"
    trace.write_text('{"capture": "a"}\n' + Path(SAMPLE).read_text())
    code, out, err = _run(str(trace), JSONL)
    assert code == 2 and out == ""
    assert err.startswith(f"hvcfilter: error: cannot read {trace}: read as jsonl, none of its ")
    assert "is it a trace? --trace-format names its format" in err
    assert "holds no call" not in err
    code, _, _ = _run(str(trace), "--trace-format", "ftrace")
    assert code == 0


@pytest.mark.parametrize("how", ["twice", "glob", "link"])
def test_one_file_named_twice_is_refused_not_counted_twice(tmp_path: Path, how: str) -> None:
    # `learn --tally 'host*.json' host1.json` added host1's counts twice, without a word.
    tally = tmp_path / "host1.json"
    assert _run(JSONL, "--tally-out", str(tally))[0] == 0
    again = {"twice": str(tally), "glob": str(tmp_path / "host*.json"), "link": ""}[how]
    if how == "link":
        (tmp_path / "alias.json").symlink_to(tally)
        again = str(tmp_path / "alias.json")
    code, out, err = _run("--tally", str(tally), again)
    assert code == 2 and out == ""
    said = "named twice" if how != "link" else f"the same file as {tally}"
    shown = again if how == "link" else str(tally)
    assert err == (
        f"hvcfilter: error: {shown} is {said}: its calls would be counted twice; "
        "name each trace or tally once\n"
    )


def test_a_tally_with_a_key_given_twice_is_refused(tmp_path: Path) -> None:
    # json keeps the last of two keys silently; other readers keep the first.
    tally = tmp_path / "host1.json"
    assert _run(JSONL, "--tally-out", str(tally))[0] == 0
    text = tally.read_text().replace('"kernel": "7.2"', '"kernel": "6.12", "kernel": "7.2"')
    tally.write_text(text)
    code, _, err = _run("--tally", str(tally))
    assert code == 2
    assert "the key 'kernel' appears twice in one object" in err
