"""Rendering for ``verify --guest``: a per-kernel summary and call list, or JSON for tools.

Text: per kernel, whether the guest booted and powered off, its CPUs and
time, why it failed, every call (vCPU, conduit, ID and name, the table's
action, who answered, the x0 it got and the emulator's prediction, the
arguments it passed), the mismatches, and the console tail (the
whole console with ``console=True``). JSON follows the issue's contract:
``{"format", "ok", "guests": [...]}``.
"""

from __future__ import annotations

from dataclasses import asdict

from hvcfilter.errors import errno_name
from hvcfilter.utf8 import json_text
from hvcfilter.verify.guest import GuestReport, GuestResult

__all__ = ["GUEST_FORMAT_TAG", "guest_calls_jsonl", "guest_json", "guest_text"]

GUEST_FORMAT_TAG = "hvcfilter-verify-guest-v1"


def _x0(value: int | None) -> str:
    if value is None:
        return "?"
    return "-1" if value == (1 << 64) - 1 else f"{value:#x}"


_CONDUIT_NOTE = {"smc": " (SMC conduit)"}


def _args(args: tuple[int, int, int] | None) -> str:
    """The guest's x1-x3, up to the last nonzero one (most calls pass none)."""
    if not args or not any(args):
        return ""
    last = max(i for i, a in enumerate(args) if a)
    return " " + " ".join(f"x{i + 1}={a:#x}" for i, a in enumerate(args[: last + 1]))


def _predicted(x0: int | None, predicted: int | None) -> str:
    """The emulator's x0 where it differs from what the call got (or the call's is unknown)."""
    if predicted is None or predicted == x0:
        return ""
    return f", x0={_x0(predicted)}"


def _install(g: GuestReport) -> str:
    if g.filter_available is False:
        err = errno_name(g.probe_errno or 0)
        return (
            f"SMCCC filter unavailable (KVM_HAS_DEVICE_ATTR: {err}; the filter arrived in "
            "Linux 6.4), table not installed: the guest ran with the kernel's default handling"
        )
    return f"table install: {g.install}"


def _kernel_text(g: GuestReport, console: bool) -> list[str]:
    state = "booted" if g.booted else "did not boot"
    off = "powered off" if g.powered_off else f"did not power off ({g.exit_reason or 'no exit'})"
    online = g.cpus_online if g.cpus_online is not None else "?"
    out = [
        f"Linux {g.kernel}{_CONDUIT_NOTE.get(g.conduit, '')}: {state}, {off}, {online}"
        f" of {g.cpus} CPUs online, {g.seconds:.1f} s; {_install(g)}",
    ]
    out += [f"  why: {r}" for r in g.reasons]
    out.append(f"  {len(g.calls)} calls:")
    for c in g.calls:
        out.append(
            f"    vcpu{c.vcpu} {c.conduit} {c.function_id:#010x} {c.name or '?':<28} "
            f"{c.action:<11} {c.answered_by:<6} x0={_x0(c.x0)} "
            f"(emulator: {c.predicted_by}{_predicted(c.x0, c.predicted_x0)}){_args(c.args)}"
        )
    notes = sorted({c.x0_note for c in g.calls if c.x0 is None and c.x0_note})
    out += [f"  x0 ?: {note}" for note in notes]
    out += [f"  MISMATCH {m}" for m in g.mismatches]
    lines = g.console if console else g.console_tail
    out.append("  console:" if console else "  console tail:")
    out += [f"    | {ln}" for ln in lines]
    return out


def guest_text(result: GuestResult, *, console: bool = False) -> str:
    """The report for people, plain text."""
    out: list[str] = []
    for g in result.guests:
        out += _kernel_text(g, console)
    total = sum(len(g.mismatches) for g in result.guests)
    out.append("ok" if result.ok else f"FAILED ({total} mismatches)")
    return "\n".join(out) + "\n"


def guest_json(result: GuestResult) -> str:
    """The report for tools, tagged ``hvcfilter-verify-guest-v1``."""
    guests = []
    for g in result.guests:
        doc = asdict(g)
        doc.pop("console")
        doc["console_tail"] = list(g.console_tail)
        guests.append(doc)
    return (
        json_text(
            {"format": GUEST_FORMAT_TAG, "spec": result.spec, "ok": result.ok, "guests": guests},
            indent=2,
        )
        + "\n"
    )


def guest_calls_jsonl(g: GuestReport) -> str:
    """One kernel's guest calls as the JSON Lines trace ``hvcfilter simulate`` reads.

    Unlike ftrace, which records no SMC's function ID and no call's x1-x3,
    every call is here with its conduit, immediate, vCPU and arguments.
    """
    lines = [f"# the guest's SMCCC calls on Linux {g.kernel}, from hvcfilter verify --guest"]
    for c in g.calls:
        # x0 as W0: the function ID is all KVM and the filter read of it, and Linux
        # passes the ID zero-extended.
        record: dict[str, object] = {"x0": f"{c.function_id:#010x}"}
        if c.args is not None:
            record.update({f"x{i + 1}": f"{a:#x}" for i, a in enumerate(c.args)})
        record.update({"conduit": c.conduit, "imm": c.imm, "vcpu": c.vcpu})
        lines.append(json_text(record))
    return "\n".join(lines) + "\n"
