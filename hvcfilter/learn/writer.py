"""Writing a learned table: a commented, deterministic spec, checked before it is returned.

The header says which traces, how many calls, the kernel profile and the
command that made it; each record's ``comment`` says what it denies or
forwards, and each span left open (no record: KVM answers it) is a comment
block naming the calls seen there, how often and in how many traces. The
values are written by :func:`hvcfilter.spec.writer.dump_document`; the text
is then linted, and a table the linter calls wrong for its kernel is an
internal error, never a file.
"""

from __future__ import annotations

from collections.abc import Sequence

from hvcfilter import smccc
from hvcfilter.diagnostics import Severity
from hvcfilter.errors import HvcFilterError
from hvcfilter.learn.derive import Learned, LearnedRange, SeenCall
from hvcfilter.lint import lint_text
from hvcfilter.model import FilterSpec
from hvcfilter.spec.writer import dump_document
from hvcfilter.table.effective import covered_calls
from hvcfilter.utf8 import valid_unicode

__all__ = ["spec_text"]

# More calls than this in one span are summarised, so that a comment stays readable.
_MAX_LISTED = 12


def _times(n: int, what: str) -> str:
    return f"{n:,} {what}" if n == 1 else f"{n:,} {what}s"


def _call_text(call: SeenCall) -> str:
    label = (
        f"{call.name} ({smccc.format_id(call.function_id)})"
        if call.name
        else (smccc.format_id(call.function_id))
    )
    seen = _times(call.traces, "trace")
    return f"{label}: {_times(call.count, 'call')} in {'at least ' * call.traces_lower_bound}{seen}"


def _calls_lines(calls: Sequence[SeenCall]) -> list[str]:
    lines = [f"#   {_call_text(c)}" for c in calls[:_MAX_LISTED]]
    if len(calls) > _MAX_LISTED:
        rest = calls[_MAX_LISTED:]
        lines.append(
            f"#   ... and {len(rest)} more IDs ({_times(sum(c.count for c in rest), 'call')})"
        )
    return lines


def _span_text(span: LearnedRange) -> str:
    if span.first == span.last:
        return smccc.format_id(span.first)
    return f"{smccc.format_id(span.first)}-{smccc.format_id(span.last)}"


def _deny_comment(span: LearnedRange) -> str:
    names = covered_calls(span.first, span.last)
    if not names:
        return "denied: no guest called these IDs"
    shown = ", ".join(names[:3]) + (
        f", ... ({len(names)} well-known calls)" if len(names) > 3 else ""
    )
    return f"denied: no guest called these IDs ({shown})"


def _forward_comment(span: LearnedRange) -> str:
    if not span.calls:
        return "forwarded to the VMM (--forward); not seen in the traces"
    return (
        "forwarded to the VMM: "
        + "; ".join(_call_text(c) for c in span.calls[:4])
        + (f"; ... {len(span.calls) - 4} more" if len(span.calls) > 4 else "")
    )


def _comment_safe(text: str) -> str:
    """User text (file names, the command line) for one line of a TOML comment.

    A newline would end the comment and let the rest of a file name be read
    as TOML (a ``[[range]]`` of the attacker's choice), and TOML forbids
    other control characters in comments: every character that is not
    printable is written as its Python escape (``\\n``, ``\\x01``).
    """
    text = valid_unicode(text)  # a file name's undecodable bytes: U+FFFD, as elsewhere
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _header(learned: Learned, command: str) -> list[str]:
    tally = learned.tally
    traces = sorted(set(tally.traces))
    ids = _times(len(learned_ids(learned)), "function ID")
    lines = [
        "# Learned by hvcfilter: the least-privilege table for the calls in these traces.",
        f"# command: {_comment_safe(command)}",
        f"# kernel profile: {learned.kernel}; granularity: {learned.granularity.value}",
        f"# {_times(tally.call_count, 'call')} to {ids} in {_times(len(tally.traces), 'trace')}:",
    ]
    lines += [f"#   {_comment_safe(t)}" for t in traces[:_MAX_LISTED]]
    if len(traces) > _MAX_LISTED:
        lines.append(f"#   ... and {len(traces) - _MAX_LISTED} more")
    if tally.smc_without_id:
        lines.append(
            f"# {_times(tally.smc_without_id, 'SMC')} without a function ID (ftrace records none)"
            " could not be learned from"
        )
    for o in learned.overrides:
        verb = "forwarded" if o.action == "fwd_to_user" else "kept in the kernel"
        lines.append(f"# override: {_comment_safe(o.label)} {verb}")
    for forwarded, *outcome in (
        (
            True,
            "# or another VMM's table): a table gives an ID one action, and this one forwards",
            "# them, so the calls the kernel answered will reach the VMM:",
        ),
        (
            False,
            "# or another VMM's table): a table gives an ID one action, and --handle keeps",
            "# them in the kernel, so the calls that were forwarded will not reach the VMM:",
        ),
    ):
        mixed = learned.mixed_calls_kept(forwarded=forwarded)
        if mixed:
            lines.append(
                "# forwarded in some calls and answered by the kernel in others (another conduit,"
            )
            lines += [*outcome, *_calls_lines(mixed)]
    if learned.reserved_calls:
        lines.append("# seen in the ranges KVM reserves (always answered by the kernel):")
        lines += _calls_lines(learned.reserved_calls)
    lines.append("# Everything else a table can touch is denied.")
    return lines


def learned_ids(learned: Learned) -> set[int]:
    """The distinct function IDs of the tally."""
    return {fid for fid, _conduit, _outcome in learned.tally.calls}


def spec_text(learned: Learned, command: str) -> tuple[str, FilterSpec]:
    """The learned table as spec text, and the spec it loads as; same input, same bytes.

    Raises:
        HvcFilterError: internal error: the linter finds an error in the learned table.
    """
    text = _text(learned, command, allow=False)
    report = lint_text(text, "<learned>")
    if any(d.code == "HVF206" for d in report.diagnostics):
        # A deny range starts right after a kept ID, inside its block, by design:
        # say so once in [filter] rather than warn about every such range.
        text = _text(learned, command, allow=True)
        report = lint_text(text, "<learned>")
    errors = [d for d in report.diagnostics if d.severity is Severity.ERROR]
    if errors or report.spec is None:
        what = errors[0].message if errors else "it does not load"
        raise HvcFilterError(f"internal error: the learned table fails check: {what}")
    return text, report.spec


def _text(learned: Learned, command: str, *, allow: bool) -> str:
    blocks = ["\n".join(_header(learned, command)) + "\n"]
    table: dict[str, object] = {"name": "learned", "kernel": learned.kernel}
    if allow:
        table["allow"] = ["crosses-boundary"]
    blocks.append(dump_document({"filter": table}))
    for span in learned.spans:
        if span.action == "handle":
            head = f"# kept in the kernel (no record): {_span_text(span)}"
            blocks.append("\n".join([head, *_calls_lines(span.calls)]) + "\n")
            continue
        comment = _deny_comment(span) if span.action == "deny" else _forward_comment(span)
        entry = {
            "action": span.action,
            "base": span.first,
            "nr_functions": span.last - span.first + 1,
            "comment": comment,
        }
        blocks.append(dump_document({"range": [entry]}))
    return "\n".join(blocks)
