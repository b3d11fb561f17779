"""Rendering for ``verify`` and ``lab status``/``lab setup``: rich text for people, JSON for tools.

The verify report is a table of agreement counts per kernel (scenarios,
installs, calls compared, agreed, diverged, boot and total time, the real
``uname -r``), the notes of the run, then every divergent step in full: the
scenario, the step, the call or install, the install steps before it, each
differing field as real versus emulated, and both complete results. JSON is
plain ``json.dumps`` with a format tag. Only the text renderers use rich,
imported lazily.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from hvcfilter.errors import errno_name
from hvcfilter.lab import LabStatus
from hvcfilter.utf8 import json_text
from hvcfilter.verify import DivergentStep, KernelReport, VerifyResult

__all__ = [
    "LAB_STATUS_FORMAT_TAG",
    "VERIFY_FORMAT_TAG",
    "lab_status_json",
    "lab_status_text",
    "verify_json",
    "verify_text",
]

VERIFY_FORMAT_TAG = "hvcfilter-verify-v1"
LAB_STATUS_FORMAT_TAG = "hvcfilter-lab-status-v1"
# Result fields named after errnos: shown as EINVAL rather than 0x16.
_ERRNO_FIELDS = {"errno", "run errno", "setup_errno"}


def _value(name: str, value: object) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        if name in _ERRNO_FIELDS:
            return errno_name(value)
        return f"{value:#x}" if value >= 0 else str(value)
    return str(value)


def _console(width: int, color: bool) -> tuple[Any, io.StringIO]:
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(
        file=buffer, width=width, force_terminal=color, no_color=not color, highlight=False
    )
    return console, buffer


def _summary_table(kernels: tuple[KernelReport, ...]) -> Any:
    from rich.table import Table

    table = Table(title="Agreement per kernel", title_justify="left")
    for name in ("kernel", "uname -r", "profile", "scenarios", "installs", "calls",
                 "agreed", "diverged", "boot s", "total s"):  # fmt: skip
        table.add_column(name, justify="left" if name in ("kernel", "uname -r") else "right")
    for k in kernels:
        table.add_row(
            k.kernel,
            k.release,
            k.profile,
            f"{k.scenarios:,}",
            f"{k.installs:,} ({k.installs_accepted:,} ok)",
            f"{k.calls:,}",
            f"{k.calls_agreed:,}",
            f"{k.steps_diverged:,}",
            f"{k.boot_s:.2f}",
            f"{k.total_s:.2f}",
        )
    return table


def _divergence(console: Any, d: DivergentStep) -> None:
    from rich.table import Table

    console.print(f"[{d.kernel}] {d.scenario} step {d.step}: {d.what}", markup=False)
    for line in d.context:
        console.print(f"    after {line}", markup=False)
    table = Table(show_header=True, box=None, pad_edge=False)
    for name in ("field", "real", "emulated"):
        table.add_column(name)
    for name, real, emulated in d.fields:
        table.add_row(name, _value(name, real), _value(name, emulated))
    console.print(table)
    real = ", ".join(f"{k}={_value(k, v)}" for k, v in d.real.items())
    emulated = ", ".join(f"{k}={_value(k, v)}" for k, v in d.emulated.items())
    console.print(f"    real:     {real}", markup=False)
    console.print(f"    emulated: {emulated}", markup=False)


def verify_text(result: VerifyResult, *, width: int = 120, color: bool = False) -> str:
    """The report for people: the agreement table, notes, then every divergence in full."""
    console, buffer = _console(width, color)
    console.print(f"Verified: {result.source}" + (f" with {result.trace}" if result.trace else ""))
    for note in result.notes:
        console.print(f"  {note}", markup=False)
    for k in result.kernels:
        console.print(f"  {k.kernel}: {k.package} {k.version}", markup=False)
        for note in k.notes:
            console.print(f"  {k.kernel}: {note}", markup=False)
        for name, why in k.skipped:
            console.print(f"  {k.kernel}: scenario {name} not compared: {why}", markup=False)
    console.print(_summary_table(result.kernels))
    divergences = [d for k in result.kernels for d in k.divergences]
    if divergences:
        console.print(f"{len(divergences)} divergent step(s):")
        for d in divergences:
            _divergence(console, d)
    elif result.ok:
        calls = sum(k.calls for k in result.kernels)
        console.print(
            f"All {calls:,} calls and "
            f"{sum(k.installs + k.settings for k in result.kernels):,} installs and settings "
            "agree with the emulator."
        )
    return buffer.getvalue()


def _plain(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    return value


def _divergence_doc(d: DivergentStep) -> dict[str, object]:
    return {
        "kernel": d.kernel,
        "scenario": d.scenario,
        "step": d.step,
        "what": d.what,
        "fields": [
            {"field": name, "real": _plain(real), "emulated": _plain(emulated)}
            for name, real, emulated in d.fields
        ],
        "context": list(d.context),
        "real": {k: _plain(v) for k, v in d.real.items()},
        "emulated": {k: _plain(v) for k, v in d.emulated.items()},
    }


def _kernel_doc(k: KernelReport) -> dict[str, object]:
    return {
        "kernel": k.kernel,
        "profile": k.profile,
        "package": k.package,
        "version": k.version,
        "release": k.release,
        "scenarios": k.scenarios,
        "installs": k.installs,
        "installs_accepted": k.installs_accepted,
        "settings": k.settings,
        "calls": k.calls,
        "calls_agreed": k.calls_agreed,
        "steps_diverged": k.steps_diverged,
        "skipped": [{"scenario": n, "reason": r} for n, r in k.skipped],
        "boot_s": round(k.boot_s, 3),
        "driver_s": round(k.driver_s, 3),
        "total_s": round(k.total_s, 3),
        "notes": list(k.notes),
        "filter_available": k.filter_available,
        "probe_errno": k.probe_errno,
        "divergences": [_divergence_doc(d) for d in k.divergences],
    }


def verify_json(result: VerifyResult) -> str:
    """The report for tools, tagged ``hvcfilter-verify-v1``."""
    doc = {
        "format": VERIFY_FORMAT_TAG,
        "source": result.source,
        "trace": result.trace,
        "ok": result.ok,
        "records": [
            {"base": r.base, "nr_functions": r.nr_functions, "action": r.action}
            for r in result.records
        ],
        "notes": list(result.notes),
        "kernels": [_kernel_doc(k) for k in result.kernels],
    }
    return json_text(doc, indent=2) + "\n"


def lab_status_text(status: LabStatus, *, width: int = 100, color: bool = False) -> str:
    """What the lab cache holds, what is missing, and whether it can boot."""
    console, buffer = _console(width, color)
    doc: Mapping[str, Any] = status.to_dict()
    console.print(f"Lab cache: {doc['cache_dir']}", markup=False)
    for pkg, path in doc["host_tools"].items():
        console.print(f"  host tool {pkg}: {path or 'MISSING'}", markup=False)
    for key, info in doc["kernels"].items():
        console.print(f"  kernel {key}: {info['package']} {info['version']}", markup=False)
    if not doc["kernels"]:
        console.print("  kernels: none")
    console.print(
        f"  busybox: {doc['busybox_version'] or 'MISSING'}; driver: "
        f"{'built' if doc['driver'] else 'MISSING'}",
        markup=False,
    )
    if status.ready:
        console.print("ready")
    else:
        missing = ", ".join(doc["missing"]) or "a kernel"
        console.print(f"not ready (missing: {missing}); run `hvcfilter lab setup`", markup=False)
    return buffer.getvalue()


def lab_status_json(status: LabStatus) -> str:
    """:meth:`LabStatus.to_dict`, tagged ``hvcfilter-lab-status-v1``."""
    return json_text({"format": LAB_STATUS_FORMAT_TAG, **status.to_dict()}, indent=2) + "\n"
