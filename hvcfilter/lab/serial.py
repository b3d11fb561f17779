"""Lab scenarios and results as JSON-ready dicts, and back (fixtures, reports, caches).

:func:`scenario_to_dict` and :func:`result_to_dict` are exact inverses of
their ``*_from_dict`` counterparts; a malformed dict raises
:class:`~hvcfilter.errors.LabError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, cast

from hvcfilter.errors import LabError
from hvcfilter.lab.scenario import (
    CALL_MARKERS,
    Call,
    CallOutcome,
    CreateVcpu,
    ErrnoResult,
    GetFwBitmap,
    HasDeviceAttr,
    RegValue,
    Run,
    RunResult,
    Scenario,
    ScenarioResult,
    SetFilter,
    SetFwBitmap,
    SetPsciVersion,
    Step,
    StepResult,
    VmConfig,
)
from hvcfilter.smccc import Conduit, Mode

__all__ = ["result_from_dict", "result_to_dict", "scenario_from_dict", "scenario_to_dict"]

_PAD_LEN = 15


def _step_to_dict(step: Step) -> dict[str, Any]:
    match step:
        case SetFilter(base, nr, action, pad):
            d: dict[str, Any] = {"op": "set_filter", "base": base, "nr": nr, "action": action}
            if any(pad):
                d["pad"] = pad.hex()
            return d
        case HasDeviceAttr(group, attr):
            return {"op": "has_device_attr", "group": group, "attr": attr}
        case SetFwBitmap(reg, value):
            return {"op": "set_fw_bitmap", "reg": reg, "value": value}
        case GetFwBitmap(reg):
            return {"op": "get_fw_bitmap", "reg": reg}
        case SetPsciVersion(major, minor):
            return {"op": "set_psci_version", "major": major, "minor": minor}
        case CreateVcpu():
            return {"op": "create_vcpu"}
        case Run():
            return {"op": "run"}
        case Call(x0, x1, x2, x3, conduit, imm, mode):
            return {
                "op": "call",
                "x0": x0,
                "x1": x1,
                "x2": x2,
                "x3": x3,
                "conduit": conduit,
                "imm": imm,
                "mode": mode,
            }
    raise LabError(f"unknown step {step!r}")  # pragma: no cover


def _step_from_dict(d: Mapping[str, Any]) -> Step:
    op = d.get("op")
    try:
        if op == "set_filter":
            return SetFilter(
                int(d["base"]),
                int(d["nr"]),
                int(d["action"]),
                bytes.fromhex(d.get("pad", "") or "00" * _PAD_LEN),
            )
        if op == "has_device_attr":
            return HasDeviceAttr(int(d.get("group", 0)), int(d.get("attr", 0)))
        if op == "set_fw_bitmap":
            return SetFwBitmap(int(d["reg"]), int(d["value"]))
        if op == "get_fw_bitmap":
            return GetFwBitmap(int(d["reg"]))
        if op == "set_psci_version":
            return SetPsciVersion(int(d["major"]), int(d["minor"]))
        if op == "create_vcpu":
            return CreateVcpu()
        if op == "run":
            return Run()
        if op == "call":
            return Call(
                int(d["x0"]),
                int(d.get("x1", CALL_MARKERS[0])),
                int(d.get("x2", CALL_MARKERS[1])),
                int(d.get("x3", CALL_MARKERS[2])),
                cast(Conduit, d.get("conduit", "hvc")),
                int(d.get("imm", 0)),
                cast(Mode, d.get("mode", "a64")),
            )
    except (KeyError, TypeError, ValueError) as e:
        raise LabError(f"bad {op} step {dict(d)!r}: {e}") from e
    raise LabError(f"unknown step op {op!r}")


def scenario_to_dict(sc: Scenario) -> dict[str, Any]:
    """JSON-ready form of a scenario (integers stay integers; pad is hex)."""
    cfg = sc.config
    return {
        "name": sc.name,
        "config": {
            "mode": cfg.mode,
            "psci_0_2": cfg.psci_0_2,
            "extra_vcpus": cfg.extra_vcpus,
            "system_suspend": cfg.system_suspend,
        },
        "steps": [_step_to_dict(s) for s in sc.steps],
    }


def scenario_from_dict(d: Mapping[str, Any]) -> Scenario:
    """Inverse of :func:`scenario_to_dict`.

    Raises:
        LabError: missing or malformed fields.
    """
    try:
        cfg = d.get("config", {})
        config = VmConfig(
            mode=cfg.get("mode"),
            psci_0_2=bool(cfg.get("psci_0_2", True)),
            extra_vcpus=int(cfg.get("extra_vcpus", 0)),
            system_suspend=bool(cfg.get("system_suspend", False)),
        )
        return Scenario(str(d["name"]), tuple(_step_from_dict(s) for s in d["steps"]), config)
    except (KeyError, TypeError, AttributeError) as e:
        raise LabError(f"bad scenario {d!r}: {e}") from e


def _step_result_to_dict(r: StepResult) -> dict[str, Any]:
    match r:
        case ErrnoResult(errno):
            return {"kind": "errno", "errno": errno}
        case RegValue(errno, value):
            return {"kind": "reg", "errno": errno, "value": value}
        case RunResult(errno, exit_kind):
            return {"kind": "run", "errno": errno, "exit": exit_kind}
        case CallOutcome():
            d: dict[str, Any] = {"kind": "call"}
            d.update({f.name: getattr(r, f.name) for f in fields(CallOutcome)})
            return d
    raise LabError(f"unknown step result {r!r}")  # pragma: no cover


def _step_result_from_dict(d: Mapping[str, Any]) -> StepResult:
    kind = d.get("kind")
    try:
        if kind == "errno":
            return ErrnoResult(int(d["errno"]))
        if kind == "reg":
            return RegValue(int(d["errno"]), int(d["value"]))
        if kind == "run":
            return RunResult(int(d["errno"]), str(d["exit"]))
        if kind == "call":
            return CallOutcome(**{f.name: d[f.name] for f in fields(CallOutcome)})
    except (KeyError, TypeError, ValueError) as e:
        raise LabError(f"bad {kind} result {dict(d)!r}: {e}") from e
    raise LabError(f"unknown result kind {kind!r}")


def result_to_dict(r: ScenarioResult) -> dict[str, Any]:
    """JSON-ready form of a scenario result."""
    return {
        "name": r.name,
        "setup_errno": r.setup_errno,
        "setup_step": r.setup_step,
        "elapsed_us": r.elapsed_us,
        "steps": [_step_result_to_dict(s) for s in r.steps],
    }


def result_from_dict(d: Mapping[str, Any]) -> ScenarioResult:
    """Inverse of :func:`result_to_dict`.

    Raises:
        LabError: missing or malformed fields.
    """
    try:
        return ScenarioResult(
            str(d["name"]),
            tuple(_step_result_from_dict(s) for s in d["steps"]),
            int(d.get("setup_errno", 0)),
            int(d.get("elapsed_us", 0)),
            str(d.get("setup_step", "")),
        )
    except (KeyError, TypeError) as e:
        raise LabError(f"bad scenario result {d!r}: {e}") from e
