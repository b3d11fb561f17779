"""``hvcfilter simulate`` through click: formats, stdin, compression, baseline gate, exit codes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from suite_paths import EXAMPLES, ROOT, TRACES

from hvcfilter.cli import cli
from hvcfilter.cli.simulate import ReportFormat

SAMPLE = str(TRACES / "sample-6.12.txt")
SPEC = str(TRACES / "sample-filter.toml")


def _run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["simulate", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_text_report() -> None:
    code, out, _ = _run("--spec", SPEC, SAMPLE)
    assert code == 0
    assert "Filter: spec" in out
    assert "PSCI_VERSION_32" in out
    assert "Ranges never hit" in out and "0xC3000000-0xC300000F" in out
    assert "differs without this filter (3)" in out
    assert "ftrace does not record SMC function IDs" in out


def test_json_report_shape() -> None:
    code, out, _ = _run("--spec", SPEC, "--format", "json", SAMPLE)
    assert code == 0
    doc = json.loads(out)
    assert doc["summary"] == {
        "calls": 5,
        "outcomes": {"handled": 1, "not_supported": 2, "forwarded": 2, "rejected": 0},
        "skipped_lines": 0,
        "smc_without_id": 4,
        "lines": 70,
        "events": 58,
        "ignored_events": 49,
        "differs_from_default": 3,
        "baseline_changes": None,
    }
    assert {f["function_id"] for f in doc["functions"]} == {
        "0x12345678",
        "0x80000000",
        "0x84000000",
        "0xC2000005",
    }
    assert [u["first"] for u in doc["unused_ranges"]] == ["0xC3000000"]
    assert doc["table"]["kind"] == "spec"
    assert doc["baseline"] is None


def test_jsonl_streams_one_line_per_call_in_order() -> None:
    code, out, err = _run("--spec", SPEC, "--format", "jsonl", str(TRACES / "calls.jsonl"))
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(r["line"], r["outcome"]) for r in lines][:3] == [
        (2, "handled"),
        (3, "handled"),
        (4, "not_supported"),
    ]
    assert len(lines) == 9
    assert lines[6]["outcome"] == "rejected"
    # x1-x3 given: the emulator answers them; a denied call zeroes x1-x3.
    assert lines[3]["regs"] == ["0xffffffffffffffff", "0x0", "0x0", "0x0"]
    assert "replaying under spec" in err


def test_default_spec_in_cwd_and_no_filter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = _run("--format", "json", SAMPLE)
    assert code == 0
    assert json.loads(out)["table"]["kind"] == "none"
    (tmp_path / "hvcfilter.toml").write_text(Path(SPEC).read_text())
    code, out, _ = _run("--format", "json", SAMPLE)
    assert json.loads(out)["table"] == {
        "kind": "spec",
        "path": "hvcfilter.toml",
        "label": "spec hvcfilter.toml",
    }


def test_stdin_gzip() -> None:
    code, out, _ = _run(
        "--spec", SPEC, "--format", "json", "-", stdin=gzip.compress(Path(SAMPLE).read_bytes())
    )
    assert code == 0
    assert json.loads(out)["summary"]["calls"] == 5


def test_baseline_gate_both_ways(tmp_path: Path) -> None:
    code, out, _ = _run("--spec", SPEC, "--baseline", SPEC, SAMPLE)
    assert code == 0
    assert "No call's outcome changes against the baseline" in out
    other = tmp_path / "other.toml"
    other.write_text('[[range]]\nbase = 0xC2000000\nnr_functions = 0x100\naction = "deny"\n')
    code, out, _ = _run("--spec", SPEC, "--baseline", str(other), "--format", "json", SAMPLE)
    assert code == 1
    doc = json.loads(out)
    assert doc["summary"]["baseline_changes"] == 3
    assert {c["function_id"] for c in doc["baseline"]["changes"]} == {"0x84000000", "0xC2000005"}
    code, out, _ = _run("--spec", SPEC, "--baseline", str(other), "--format", "jsonl", SAMPLE)
    assert code == 1
    assert sum(json.loads(line)["changed"] for line in out.splitlines()) == 3


def test_strict_fails_on_unparseable_lines() -> None:
    malformed = str(TRACES / "malformed.txt")
    code, out, _ = _run("--spec", SPEC, malformed)
    assert code == 0
    assert "malformed.txt:3: not an ftrace event line" in out
    code, _, err = _run("--spec", SPEC, "--strict", malformed)
    assert code == 1
    assert "4 unparseable line(s)" in err
    assert _run("--spec", SPEC, "--strict", SAMPLE)[0] == 0


def test_unreadable_trace_exits_2(tmp_path: Path) -> None:
    code, _, err = _run("--spec", SPEC, str(tmp_path / "missing.txt"))
    assert code == 2
    missing = tmp_path / "missing.txt"
    assert err == f"hvcfilter: error: cannot read {missing}: no such file; check the path\n"


def test_an_unreadable_baseline_is_named_a_baseline_with_the_fix(tmp_path: Path) -> None:
    code, _, err = _run("--spec", SPEC, "--baseline", str(tmp_path), SAMPLE)
    assert code == 2
    assert (
        err
        == f"hvcfilter: error: cannot read baseline {tmp_path}: is a directory; name a file in it\n"
    )


def test_spec_and_payload_together_is_a_usage_error() -> None:
    code, _, err = _run("--spec", SPEC, "--payload", SPEC, SAMPLE)
    assert code == 2
    assert "not both" in err


def test_unknown_kernel_is_a_usage_error() -> None:
    assert _run("--kernel", "2.6", SAMPLE)[0] == 2


@pytest.mark.parametrize("fmt", list(ReportFormat))
def test_every_format(fmt: ReportFormat) -> None:
    code, out, _ = _run("--spec", SPEC, "--format", fmt.value, SAMPLE)
    assert code == 0
    assert "84000000" in out.upper()


def test_trace_format_override() -> None:
    # Forcing JSON Lines on an ftrace file: every non-comment line is unparseable, and a
    # trace of which no line is an event is refused rather than replayed as nothing.
    code, out, err = _run("--spec", SPEC, "--trace-format", "jsonl", "--format", "json", SAMPLE)
    assert code == 2 and out == ""
    assert err.startswith(
        f"hvcfilter: error: cannot read {SAMPLE}: read as jsonl, none of its 58 line(s) is an event"
    )


def test_text_colour_follows_the_shared_terminal_and_no_color_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The rule itself (terminal only, NO_COLOR wins) is tested in test_cli_check.py.
    from hvcfilter.cli import fastpath  # simulate's body, with or without click

    monkeypatch.setattr(fastpath, "use_color", lambda: True)
    code, coloured, _ = _run("--spec", SPEC, SAMPLE)
    monkeypatch.setattr(fastpath, "use_color", lambda: False)
    _, plain, _ = _run("--spec", SPEC, SAMPLE)
    assert code == 0 and "\x1b[" in coloured and "\x1b[" not in plain


@pytest.mark.parametrize(
    ("base", "nr", "shown"),
    [
        # The kernel computes base + nr - 1, which reads backwards or as every ID.
        (0xC2000000, 0, "0xC2000000 (empty)"),
        (0, 0, "0x00000000 (empty)"),
        (0xFFFFFFF0, 0x20, "0xFFFFFFF0 + 0x20 (past 0xFFFFFFFF)"),
    ],
)
def test_a_refused_empty_or_wrapping_record_is_shown_as_it_is(
    tmp_path: Path, base: int, nr: int, shown: str
) -> None:
    payload = tmp_path / "t.bin"
    payload.write_bytes(base.to_bytes(4, "little") + nr.to_bytes(4, "little") + bytes(16))
    code, out, _ = _run("--payload", str(payload), "--kernel", "7.2", SAMPLE)
    assert code == 1
    assert f"record 0 ({shown} handle, " in out


def test_refused_records_exit_1(tmp_path: Path) -> None:
    # The VMM's KVM_SET_DEVICE_ATTR would fail: a finding, whatever the output format.
    spec = tmp_path / "overlap.toml"
    spec.write_text(
        '[[range]]\naction = "deny"\nbase = 0xC2000000\nnr_functions = 0x10\n'
        '[[range]]\naction = "fwd_to_user"\nbase = 0xC200000F\nnr_functions = 2\n'
    )
    for fmt in ReportFormat:
        code, _, err = _run("--spec", str(spec), "--format", fmt.value, SAMPLE)
        assert code == 1, fmt
        assert "the kernel refuses 1 record(s) of the table" in err
    code, _, err = _run("--spec", SPEC, SAMPLE)
    assert code == 0 and "refuses" not in err


@pytest.mark.parametrize(
    ("args", "named"), [(["-", "--spec", "-"], "--spec and TRACE"), (["-", "-"], "TRACE and TRACE")]
)
def test_standard_input_can_feed_one_input_only(args: list[str], named: str) -> None:
    # `simulate - --spec -` was accepted, and the trace then failed as TOML.
    code, out, err = _run(*args, stdin=b'{"x0": "0x84000000"}\n')
    assert code == 2 and out == ""
    assert f"only one input can be - (standard input), not {named}" in err


@pytest.mark.parametrize("suffix", [".toml", ".bin"])
def test_the_baseline_and_the_payload_can_come_from_standard_input(suffix: str) -> None:
    table = (
        (ROOT / "tests" / "golden" / "minimal.bin").read_bytes()
        if suffix == ".bin"
        else (EXAMPLES / "minimal.toml").read_bytes()
    )
    code, out, err = _run(str(TRACES / "sample-6.12.txt"), "--baseline", "-", stdin=table)
    assert code in (0, 1), err
    kind = "payload" if suffix == ".bin" else "spec"
    assert f"Baseline: {kind} <stdin>" in out
    if suffix == ".bin":
        code, out, err = _run(str(TRACES / "sample-6.12.txt"), "--payload", "-", stdin=table)
        assert code in (0, 1), err
        assert "Filter: payload <stdin>" in out


def test_a_broken_payload_from_stdin_points_at_decompile_of_stdin() -> None:
    # "decompile <stdin>" pasted into a shell is a redirection from a file named stdin.
    code, _, err = _run(str(TRACES / "sample-6.12.txt"), "--payload", "-", stdin=b"\x01\x00\x03")
    assert code == 2
    assert "cannot use payload <stdin>: payload is 3 bytes" in err
    assert err.rstrip().endswith("`hvcfilter decompile -` lists every problem")


def test_a_second_simulate_of_a_large_trace_uses_the_kept_tally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tally_cache: Path
) -> None:
    # The same report, byte for byte; --no-cache neither reads nor writes the cache.
    store = tally_cache
    trace = tmp_path / "t.txt"
    trace.write_bytes((TRACES / "malformed.txt").read_bytes())
    args = [str(trace), "--spec", str(EXAMPLES / "lockdown.toml"), "--format", "json"]
    assert _run(*args, "--no-cache")[0] in (0, 1)
    assert not store.exists()
    first = _run(*args)
    assert len(list(store.glob("*.json"))) == 1
    monkeypatch.setattr("hvcfilter.trace.ftrace_tally", lambda *_a: 1 / 0)  # no second read
    assert _run(*args) == first
    monkeypatch.setenv("HVCFILTER_CACHE_DIR", "")  # turned off: the trace is read, and fails
    assert _run(*args)[0] == 3


@pytest.mark.parametrize("kind", ["dangling link", "directory"])
def test_an_unreadable_hvcfilter_toml_is_an_error_not_no_filter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    # It was skipped as if absent: the replay ran with no table and passed.
    default = tmp_path / "hvcfilter.toml"
    if kind == "directory":
        default.mkdir()
    else:
        default.symlink_to(tmp_path / "missing.toml")
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(str(TRACES / "calls.jsonl"))
    assert code == 2 and out == ""
    reason = (
        "is a directory; pass the path of a .toml spec file"
        if kind == "directory"
        else "no such file; check the path, or create the file"
    )
    assert err == f"hvcfilter: error: cannot read hvcfilter.toml: {reason}\n"


def test_a_spec_given_as_a_payload_on_stdin_is_named_a_spec() -> None:
    # From stdin there is no ".toml" to go by: the content says it is text.
    spec = (EXAMPLES / "minimal.toml").read_bytes()
    code, _, err = _run(str(TRACES / "calls.jsonl"), "--payload", "-", stdin=spec)
    assert code == 2
    assert err.rstrip().endswith("it is text, not a binary payload: a spec goes with --spec")


def test_a_payload_is_told_by_its_content_even_named_toml(tmp_path: Path) -> None:
    # As a baseline (which takes payloads) it was forced down the spec path; as --spec
    # the way out (decompile, --payload) was dropped from the message.
    payload = tmp_path / "old.toml"
    assert (
        CliRunner()
        .invoke(cli, ["compile", str(EXAMPLES / "minimal.toml"), "-o", str(payload)])
        .exit_code
        == 0
    )
    code, out, err = _run(
        str(TRACES / "calls.jsonl"), "--spec", str(EXAMPLES / "minimal.toml"),
        "--baseline", str(payload),
    )  # fmt: skip
    assert code in (0, 1), err
    assert f"Baseline: payload {payload}" in out
    code, _, err = _run(str(TRACES / "calls.jsonl"), "--spec", str(payload))
    assert code == 2
    assert err == (
        f"hvcfilter: error: {payload} is a binary payload of 1 record(s), not a spec; "
        f"`hvcfilter decompile {payload}` turns it into a spec; "
        "or simulate takes it as it is with --payload\n"
    )


def test_a_utf16_spec_as_a_baseline_is_refused_not_taken_for_a_payload(tmp_path: Path) -> None:
    # NULs in whole records is no payload unless every pad byte is zero too.
    text = (EXAMPLES / "minimal.toml").read_text()
    data = b"\xff\xfe" + text.encode("utf-16-le")
    data += " ".encode("utf-16-le") * ((-len(data) % 24) // 2)
    assert len(data) % 24 == 0
    spec = tmp_path / "u16.toml"
    spec.write_bytes(data)
    code, out, err = _run(str(TRACES / "sample-6.12.txt"), "--baseline", str(spec))
    assert code == 2 and "Baseline: payload" not in out
    assert "not UTF-8 text" in err


def test_a_broken_spec_is_refused_for_its_first_error_not_a_warning_before_it(
    tmp_path: Path,
) -> None:
    # The warning on line 5 (the kernel refuses PSCI 1.3, the VM keeps its default) read
    # as the reason, with "(and 1 more)" counting it: the spec seemed to work.
    spec = tmp_path / "warn-first.toml"
    spec.write_text('[filter]\nkernel = "6.12"\n\n[vm]\npsci_version = "1.3"\nstd = ["bogus"]\n')
    code, _, err = _run(str(TRACES / "calls.jsonl"), "--spec", str(spec))
    assert code == 2
    assert (
        err
        == f"hvcfilter: error: cannot use spec {spec}: {spec}:6:1: unknown std feature 'bogus'\n"
    )


def test_a_broken_spec_or_baseline_is_named_as_such_and_stdin_as_stdin(tmp_path: Path) -> None:
    code, _, err = _run(str(TRACES / "calls.jsonl"), "--spec", "-", stdin=b"x =\n")
    assert code == 2
    assert err.startswith("hvcfilter: error: cannot use spec <stdin>: <stdin>:1:")  # not "spec -"
    broken = tmp_path / "old.toml"
    broken.write_text("x =\n")
    code, _, err = _run(
        str(TRACES / "calls.jsonl"), "--spec", str(EXAMPLES / "minimal.toml"),
        "--baseline", str(broken),
    )  # fmt: skip
    assert code == 2
    assert err.startswith(f"hvcfilter: error: cannot use baseline {broken}: {broken}:1:")


@pytest.mark.parametrize("fmt", ["text", "json", "jsonl"])
def test_a_trace_of_which_no_line_is_an_event_is_unreadable_not_a_pass(
    tmp_path: Path, fmt: str
) -> None:
    # ftrace text whose first line starts with "{" was read as JSON Lines: every line
    # skipped, nothing replayed, exit 0 (a green CI gate over nothing).
    trace = tmp_path / "t.txt"
    trace.write_text('{"capture": "a"}\n' + Path(SAMPLE).read_text())
    code, out, err = _run("--spec", SPEC, "--format", fmt, str(trace))
    assert code == 2
    assert out == ""
    assert err.endswith(
        "is an event; the first: " + f"{trace}:1: field 'x0' is missing: "
        '{"capture": "a"}; is it a trace? --trace-format names its format\n'
    )
    assert _run("--spec", SPEC, "--trace-format", "ftrace", str(trace))[0] == 0


def test_an_empty_trace_is_still_a_clean_replay_of_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    code, out, _ = _run("--spec", SPEC, str(tmp_path / "empty.txt"))
    assert code == 0 and "0 lines: 0 events" in out


def test_names_from_the_file_system_neither_style_nor_drive_the_terminal(
    tmp_path: Path,
) -> None:
    # An ESC sequence in a trace's name reached the terminal in the list of bad lines,
    # and rich markup in a spec's name ("x[red]y.toml") lost its brackets as a style.
    trace = tmp_path / "t\x1b[31mRED.txt"
    trace.write_bytes((TRACES / "malformed.txt").read_bytes())
    spec = tmp_path / "x[red]y.toml"
    spec.write_bytes(Path(SPEC).read_bytes())
    code, out, err = _run("--spec", str(spec), str(trace))
    assert code == 0
    assert "\x1b" not in out + err
    assert f"Filter: spec {spec};" in out
    assert f"  {tmp_path}/t\\x1b[31mRED.txt:3: not an ftrace event line" in out


@pytest.mark.parametrize("empty", ["trace", "baseline"])
def test_empty_standard_input_is_unreadable_not_nothing_to_replay(empty: str) -> None:
    # A failed capture piped in replayed nothing (exit 0); an empty baseline was no filter.
    args = ["-"] if empty == "trace" else ["--baseline", "-", SAMPLE]
    code, out, err = _run("--spec", SPEC, *args, stdin=b"")
    assert code == 2 and out == ""
    shown = "<stdin>" if empty == "trace" else "baseline <stdin>"
    assert err == (
        f"hvcfilter: error: cannot read {shown}: it is empty; the command that feeds "
        "it wrote nothing (did it fail?); an input meant to be empty goes as a file\n"
    )


def test_a_missing_later_trace_is_refused_before_any_record_is_streamed() -> None:
    # --format jsonl wrote the first trace's records, then failed on the typo after it.
    code, out, err = _run("--format", "jsonl", str(TRACES / "calls.jsonl"), "missing.txt")
    assert code == 2 and out == ""
    assert err == "hvcfilter: error: cannot read missing.txt: no such file; check the path\n"


def test_one_good_trace_does_not_hide_one_that_is_no_trace(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("junk\n")
    code, out, err = _run("--spec", SPEC, "--format", "json", str(garbage), SAMPLE)
    assert code == 2 and out == ""
    assert err.startswith(f"hvcfilter: error: cannot read {garbage}: read as ftrace, none of its")


@pytest.mark.parametrize("command", ["simulate", "learn"])
def test_an_empty_fifo_is_unreadable_like_empty_stdin(tmp_path: Path, command: str) -> None:
    # `simulate <(failed-capture)` replayed nothing and exited 0; learn noted "no call".
    import os
    import subprocess
    import sys

    fifo = tmp_path / "capture"
    os.mkfifo(fifo)
    child = subprocess.Popen(
        [sys.executable, "-m", "hvcfilter", command, str(fifo)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    with fifo.open("wb"):  # the writer opens it and leaves without a byte
        pass
    out, err = child.communicate(timeout=60)
    assert child.returncode == 2 and out == ""
    assert err == (
        f"hvcfilter: error: cannot read {fifo}: it is empty; the command that feeds it wrote "
        "nothing (did it fail?); an input meant to be empty goes as a file\n"
    )


def test_a_trace_named_twice_is_refused_before_any_output(tmp_path: Path) -> None:
    # Every count doubled under one summary, exit 0; learn already refused it.
    for fmt in ("text", "jsonl"):
        code, out, err = _run("--spec", SPEC, "--format", fmt, SAMPLE, SAMPLE)
        assert (code, out) == (2, "")
        # Not even "replaying under ...": refused before anything is said or read.
        assert err == (
            f"hvcfilter: error: {SAMPLE} is named twice: its calls would be counted twice; "
            "name each trace once\n"
        )


def test_a_directory_or_a_quoted_glob_gives_its_files_as_learn_does(tmp_path: Path) -> None:
    # simulate said "is a directory; name a file in it" where learn took the files.
    traces = tmp_path / "traces"
    traces.mkdir()
    for name in ("a.txt", "b.txt"):
        (traces / name).write_bytes(Path(SAMPLE).read_bytes())
    by_name = json.loads(
        _run("--spec", SPEC, "--format", "json", str(traces / "a.txt"), str(traces / "b.txt"))[1]
    )
    for given in (str(traces), str(traces / "*.txt")):
        code, out, _ = _run("--spec", SPEC, "--format", "json", given)
        assert code == 0
        assert json.loads(out)["summary"] == by_name["summary"]
    code, out, err = _run("--spec", SPEC, str(traces / "*.gz"))
    assert (code, out) == (2, "")
    assert err == (
        f"hvcfilter: error: {traces / '*.gz'}: no such file, and no file matches it as a pattern\n"
    )
    (tmp_path / "empty").mkdir()
    code, _, err = _run("--spec", SPEC, str(tmp_path / "empty"))
    assert code == 2 and err.endswith(": the directory holds no file\n")
    # Hidden files are left out, as the glob leaves them: a .gitignore is no trace.
    (traces / ".gitignore").write_text("*.bin\n")
    code, out, _ = _run("--spec", SPEC, "--format", "json", str(traces))
    assert code == 0 and json.loads(out)["summary"] == by_name["summary"]
    # The directory and one of its files: the same file twice.
    code, _, err = _run("--spec", SPEC, str(traces), str(traces / "a.txt"))
    assert code == 2 and "is named twice" in err
