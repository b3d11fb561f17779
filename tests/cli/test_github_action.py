"""The composite GitHub Action (``action.yml``): its structure, and its scripts run for real.

GitHub cannot run here, so the test does what its runner would: it
substitutes the ``${{ inputs.* }}`` expressions of each step's ``env`` and
runs the step's script with bash, with this environment's ``hvcfilter`` on
the path (the install step is only checked for what it installs).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from suite_paths import EXAMPLES, ROOT, TRACES

from hvcfilter.cli import _COMMANDS

ACTION: dict[str, Any] = yaml.safe_load((ROOT / "action.yml").read_text())
_EXPR = re.compile(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}")
BAD = '[[range]]\nbase = 0x80000000\nnr_functions = 1\naction = "deny"\n'


def _step(name: str) -> dict[str, Any]:
    steps: list[dict[str, Any]] = ACTION["runs"]["steps"]
    (step,) = [s for s in steps if s.get("name") == name]
    return step


def test_the_action_is_composite_with_documented_inputs() -> None:
    assert ACTION["runs"]["using"] == "composite"
    inputs = ACTION["inputs"]
    assert {"paths", "strict", "version", "traces", "spec", "baseline", "kernel"} <= set(inputs)
    for name, spec in inputs.items():
        assert spec["description"], name
        assert "default" in spec, name
    used = set(_EXPR.findall((ROOT / "action.yml").read_text()))
    assert used == set(inputs)  # no input is dead, none is misspelt


def test_every_step_runs_in_bash_and_calls_real_commands() -> None:
    for step in ACTION["runs"]["steps"]:
        if "uses" in step:
            assert step["uses"].startswith("actions/setup-python@")
            continue
        assert step["shell"] == "bash"
        # Inputs reach scripts through env only, never spliced into the script text.
        assert not _EXPR.search(step["run"])
        for command in re.findall(r"\bhvcfilter ([a-z-]+)", step["run"]):
            assert command in _COMMANDS
    install = _step("Install hvcfilter")["run"]
    assert "pip install" in install and "GITHUB_ACTION_PATH" in install
    assert "--format github" in _step("hvcfilter check")["run"]
    assert "--baseline" in _step("hvcfilter simulate --baseline")["run"]


def _run_step(name: str, inputs: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    values = {k: str(v["default"]) for k, v in ACTION["inputs"].items()} | inputs
    step = _step(name)
    env = {key: _EXPR.sub(lambda m: values[m[1]], str(v)) for key, v in step["env"].items()}
    env["PATH"] = f"{Path(sys.executable).parent}:/usr/bin:/bin"
    return subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_check_step_annotates_and_fails_on_errors(tmp_path: Path) -> None:
    (tmp_path / "good.toml").write_text((EXAMPLES / "minimal.toml").read_text())
    (tmp_path / "bad.toml").write_text(BAD)
    ok = _run_step("hvcfilter check", {"paths": "good.toml"}, tmp_path)
    assert ok.returncode == 0, ok.stderr
    bad = _run_step("hvcfilter check", {"paths": "good.toml bad.toml"}, tmp_path)
    assert bad.returncode == 1
    assert re.search(r"^::error file=bad\.toml,line=\d+", bad.stdout, re.M)


@pytest.mark.parametrize(("strict", "code"), [("false", 0), ("true", 1)])
def test_the_check_step_passes_strict(tmp_path: Path, strict: str, code: int) -> None:
    (tmp_path / "warn.toml").write_text(
        '[[range]]\nfunction = "PSCI_CPU_ON_64"\naction = "fwd_to_user"\n'
    )
    result = _run_step("hvcfilter check", {"paths": "warn.toml", "strict": strict}, tmp_path)
    assert result.returncode == code, result.stdout + result.stderr
    assert "::warning file=warn.toml" in result.stdout


def test_the_replay_gate_fails_when_an_outcome_changes(tmp_path: Path) -> None:
    assert "inputs.traces != ''" in _step("hvcfilter simulate --baseline")["if"]
    trace = str(TRACES / "calls.jsonl")
    table = str(TRACES / "sample-filter.toml")
    same = _run_step(
        "hvcfilter simulate --baseline",
        {"traces": trace, "spec": table, "baseline": table, "kernel": "6.12"},
        tmp_path,
    )
    assert same.returncode == 0, same.stdout + same.stderr
    (tmp_path / "open.toml").write_text("[filter]\n")
    changed = _run_step(
        "hvcfilter simulate --baseline",
        {"traces": trace, "spec": "open.toml", "baseline": table},
        tmp_path,
    )
    assert changed.returncode == 1, changed.stdout + changed.stderr
