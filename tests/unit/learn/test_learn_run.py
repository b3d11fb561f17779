"""Learning end to end: round trip through simulate, unseen IDs denied, determinism, against."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from suite_paths import TRACES

from hvcfilter import api
from hvcfilter.diagnostics import Severity
from hvcfilter.learn import parse_override
from hvcfilter.learn.against import against
from hvcfilter.learn.run import expand_paths, learn, tally_traces
from hvcfilter.replay import Replayer
from hvcfilter.table.files import load_table
from hvcfilter.trace import CallKey, TraceTally

SAMPLE = str(TRACES / "sample-6.12.txt")
TRACE_SET = [SAMPLE, str(TRACES / "calls.jsonl"), str(TRACES / "calls.csv")]


@pytest.mark.parametrize("granularity", ["function", "service", "owner"])
@pytest.mark.parametrize("traces", [[SAMPLE], TRACE_SET[1:]], ids=["ftrace", "jsonl+csv"])
def test_round_trip_through_simulate(tmp_path: Path, granularity: str, traces: list[str]) -> None:
    result = api.learn(traces, kernel="6.12", granularity=granularity)
    spec = tmp_path / "learned.toml"
    spec.write_text(result.text)
    report = api.replay(traces, spec=str(spec))
    assert report.summary.calls > 0
    forwarded = {fid for fid, _c, outcome in result.learned.tally.calls if outcome == "forwarded"}
    for row in report.functions:  # no call changes what it got in the trace
        expected = "forwarded" if row.function_id in forwarded else row.default_outcome
        assert row.outcome == expected, row
    assert not any(r.errno for r in report.install)
    lint = api.lint([spec])
    assert lint.files[0].count(Severity.ERROR) == 0
    assert result.spec.profile.name == "6.12"


def test_the_sample_trace_shows_a_forwarded_call() -> None:
    tally = tally_traces([SAMPLE], kernel="6.12")
    assert tally.calls[(0xC2000005, "hvc", "forwarded")].count == 2
    assert (0x84000000, "hvc", "forwarded") not in tally.calls


def test_an_unseen_id_is_denied_and_seen_ones_keep_their_outcome(tmp_path: Path) -> None:
    spec = tmp_path / "learned.toml"
    spec.write_text(api.learn([SAMPLE], kernel="6.12").text)
    replayer = Replayer(load_table(str(spec)))
    calls: Counter[CallKey] = Counter(
        {(0x84000050, "hvc", 0, "a64"): 1, (0x84000000, "hvc", 0, "a64"): 1}
    )
    rows = {r.function_id: r for r in replayer.report(TraceTally(calls=calls)).functions}
    assert rows[0x84000050].action == "deny" and rows[0x84000050].outcome == "not_supported"
    assert rows[0x84000050].default_outcome == "handled"
    assert rows[0x84000000].record is None and rows[0x84000000].outcome == "handled"


def test_learning_is_deterministic_whatever_the_order_and_jobs() -> None:
    one = learn(tally_traces(TRACE_SET, kernel="6.12")).text
    assert learn(tally_traces(TRACE_SET[::-1], kernel="6.12", jobs=2)).text == one


def test_comments_name_the_calls_with_counts_and_traces() -> None:
    text = api.learn(TRACE_SET, kernel="6.12").text
    assert "# kernel profile: 6.12; granularity: function" in text
    assert "#   PSCI_VERSION_32 (0x84000000): 5 calls in 3 traces" in text
    assert 'comment = "denied: no guest called these IDs' in text


def test_directories_and_globs_expand_sorted(tmp_path: Path) -> None:
    for name in ("b.txt", "a.txt"):
        (tmp_path / name).write_text("")
    assert expand_paths([str(tmp_path)]) == [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]
    assert expand_paths([str(tmp_path / "*.txt")]) == expand_paths([str(tmp_path)])


def test_against_lists_broken_calls_and_unused_ranges(tmp_path: Path) -> None:
    spec = tmp_path / "old.toml"
    spec.write_text(
        '[filter]\nkernel = "6.12"\n\n'
        '[[range]]\naction = "deny"\nbase = 0x84000000\nnr_functions = 1\n\n'
        '[[range]]\naction = "deny"\nbase = 0xC5000000\nnr_functions = 0x100\n\n'
        '[[range]]\naction = "fwd_to_user"\nbase = 0xC2000005\nnr_functions = 1\n'
    )
    report = against(tally_traces([SAMPLE], kernel="6.12"), str(spec))
    # 0xC2000005 was forwarded in the trace and the spec forwards it: not broken.
    assert [(c.function_id, c.traced, c.under_spec) for c in report.would_break] == [
        (0x84000000, "handled", "not_supported"),
    ]
    # An unused deny range is least privilege already: no finding.
    assert report.unused == ()
    # The tightened spec keeps what the spec forwards and guests call forwarded.
    assert 'action = "fwd_to_user"\nbase = 0xC2000005' in report.tightened.text


def test_against_lets_a_handle_override_beat_what_the_spec_forwards(tmp_path: Path) -> None:
    spec = tmp_path / "old.toml"
    spec.write_text(
        '[filter]\nkernel = "6.12"\n\n'
        '[[range]]\naction = "fwd_to_user"\nbase = 0xC2000005\nnr_functions = 1\n'
    )
    tally = tally_traces([SAMPLE], kernel="6.12")
    report = against(tally, str(spec), overrides=[parse_override("0xC2000005", "handle")])
    assert "base = 0xC2000005" not in report.tightened.text
    learned = {(s.first, s.last): s.action for s in report.tightened.learned.spans}
    assert learned[(0xC2000005, 0xC2000005)] == "handle"


def test_names_and_the_command_cannot_add_toml_to_the_learned_spec() -> None:
    # A newline in a trace's file name or in the command line (an -o name) ended the
    # header comment, and the rest was read as TOML: a [[range]] of the name's choice.
    injected = '\n[[range]]\naction = "deny"\nbase = 0x84000000\nnr_functions = 1\n#'
    from hvcfilter.learn.tally import CallCount, Tally

    tally = Tally("6.12", (f"a{injected}.jsonl", "b\x01\udcfe.jsonl"), {
        (0x8400_0000, "hvc", "kernel"): CallCount(3, 1),
    })  # fmt: skip
    result = learn(tally, command=f"hvcfilter learn t.jsonl -o 'o{injected}.toml'")
    import tomllib

    ranges = tomllib.loads(result.text)["range"]
    assert not any(r["base"] == 0x8400_0000 for r in ranges)  # PSCI_VERSION stays open
    assert "a\\n[[range]]" in result.text and "b\\x01\ufffd.jsonl" in result.text


def test_an_id_forwarded_in_some_calls_and_answered_in_others_is_said_so() -> None:
    # One table cannot tell conduits (or VMMs) apart: the SMC calls the kernel answered
    # will now be forwarded, and the spec's header says which IDs.
    from hvcfilter.learn.tally import CallCount, Tally

    tally = Tally("6.12", ("a.txt", "b.jsonl"), {
        (0xC200_0005, "hvc", "forwarded"): CallCount(2, 1),
        (0xC200_0005, "smc", "kernel"): CallCount(1, 1),
        (0x8400_0000, "hvc", "kernel"): CallCount(5, 2),
    })  # fmt: skip
    result = learn(tally)
    assert [c.function_id for c in result.learned.mixed_calls] == [0xC200_0005]
    header = result.text.split("[filter]")[0]
    assert "forwarded in some calls and answered by the kernel in others" in header
    # Two rows: how many traces saw the ID is a lower bound, and said so.
    assert "0xC2000005: 3 calls in at least 1 trace" in header
    assert "PSCI_VERSION_32 (0x84000000): 5 calls in 2 traces" in result.text


def test_a_mixed_id_kept_in_the_kernel_by_handle_is_said_so_not_forwarded() -> None:
    # --handle wins over the forwarded calls: the header must say the table keeps the
    # ID in the kernel (the forwarded calls are lost to the VMM), not that it forwards it.
    from hvcfilter.learn.tally import CallCount, Tally

    tally = Tally("6.12", ("a.txt", "b.jsonl"), {
        (0xC200_0005, "hvc", "forwarded"): CallCount(2, 1),
        (0xC200_0005, "smc", "kernel"): CallCount(1, 1),
    })  # fmt: skip
    result = learn(tally, overrides=[parse_override("0xC2000005", "handle")])
    learned = result.learned
    assert [c.function_id for c in learned.mixed_calls_kept(forwarded=False)] == [0xC200_0005]
    assert learned.mixed_calls_kept(forwarded=True) == ()
    header = result.text.split("[filter]")[0]
    assert "--handle keeps\n# them in the kernel, so the calls that were forwarded" in header
    assert "this one forwards" not in header


def test_a_full_temporary_directory_is_not_blamed_on_the_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A stream is copied before it is read twice; ENOSPC there is the temporary
    # directory's, and "cannot read <stdin>" sent users to look at their trace.
    import errno
    import io
    import sys
    import tempfile

    from hvcfilter.errors import TraceError

    class FullDisk(io.BytesIO):
        name = "/tmp/hvcfilter-learn-x.trace"

        def write(self, _data: object) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", lambda **_kw: FullDisk())
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'{"x0": "0x84000000"}\n')))
    with pytest.raises(TraceError) as caught:
        tally_traces(["-"], kernel="6.12")
    message = str(caught.value)
    assert message.startswith("cannot copy <stdin> to a temporary file in ")
    assert "no space left on the device" in message and "set TMPDIR" in message


def test_an_unreadable_stream_is_still_blamed_on_the_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import errno
    import io
    import sys

    from hvcfilter.errors import TraceError

    class Failing(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, _buffer: object) -> int:
            raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(Failing())))
    with pytest.raises(TraceError, match=r"^cannot read <stdin>: input/output error$"):
        tally_traces(["-"], kernel="6.12")


def test_no_usable_temporary_directory_is_said_so_not_an_internal_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import io
    import sys
    import tempfile

    from hvcfilter.errors import TraceError

    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.setattr(tempfile, "_candidate_tempdir_list", lambda: [str(tmp_path / "gone")])
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'{"x0": "0x84000000"}\n')))
    said = r"^cannot copy <stdin> to a temporary file: no usable temporary directory found in "
    with pytest.raises(TraceError, match=said):
        tally_traces(["-"], kernel="6.12")


def test_against_its_own_learned_table_finds_nothing(tmp_path: Path) -> None:
    # Every deny range of a learned table is unused by construction; listing them as
    # "privilege to take away" made --against of learn's own output exit 1.
    tally = tally_traces([str(TRACES / "calls.jsonl")], kernel="7.2")
    spec = tmp_path / "learned.toml"
    spec.write_text(learn(tally).text)
    report = against(tally, str(spec))
    assert (report.would_break, report.unused, report.refused) == ((), (), ())
    assert not report.findings


def test_against_lists_an_unused_forward_as_privilege(tmp_path: Path) -> None:
    spec = tmp_path / "old.toml"
    spec.write_text(
        '[filter]\nkernel = "6.12"\n\n'
        '[[range]]\naction = "fwd_to_user"\nbase = 0xC5000000\nnr_functions = 0x10\n'
    )
    report = against(tally_traces([SAMPLE], kernel="6.12"), str(spec))
    assert [(r.base, r.nr_functions, r.action_label) for r in report.unused] == [
        (0xC5000000, 0x10, "fwd_to_user")
    ]
