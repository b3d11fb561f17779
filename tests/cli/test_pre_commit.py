"""The pre-commit hooks of ``.pre-commit-hooks.yaml``, run by the real ``pre-commit try-repo``.

Each test makes a throwaway git repository of specs and payloads and runs
every hook of this worktree on it, as a user's ``pre-commit`` would after
installing hvcfilter into the hook's own virtualenv.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from suite_paths import EXAMPLES, ROOT

from hvcfilter.cli import _COMMANDS

MINIMAL = (EXAMPLES / "minimal.toml").read_text()
BAD = '[[range]]\nbase = 0x80000000\nnr_functions = 1\naction = "deny"\n'


def _hooks() -> list[dict[str, object]]:
    hooks: list[dict[str, object]] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    return hooks


def test_the_hooks_run_commands_that_exist() -> None:
    hooks = {str(h["id"]): h for h in _hooks()}
    assert set(hooks) == {"hvcfilter-check", "hvcfilter-compile-check"}
    for hook in hooks.values():
        assert hook["language"] == "python"
        program, command = str(hook["entry"]).split()
        assert program == "hvcfilter"
        assert command in _COMMANDS


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def _repo(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    repo = tmp_path / "user-repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    for name, content in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    _git(repo, "add", "-A")
    return repo


def _compiled(text: str, tmp_path: Path) -> bytes:
    spec = tmp_path / "spec.toml"
    spec.write_text(text)
    out = tmp_path / "spec.bin"
    hvcfilter = str(Path(sys.executable).with_name("hvcfilter"))
    subprocess.run([hvcfilter, "compile", str(spec), "-o", str(out)], check=True)
    return out.read_bytes()


def _try_repo(repo: Path, home: Path) -> subprocess.CompletedProcess[str]:
    assert shutil.which("git")
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "--all-files", "--color=never"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        env={
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(home),
            "PRE_COMMIT_HOME": str(home),
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t",
        },
    )


def test_clean_specs_and_fresh_payloads_pass(tmp_path: Path, pre_commit_home: Path) -> None:
    payload = _compiled(MINIMAL, tmp_path)
    repo = _repo(
        tmp_path,
        {
            "hvcfilter.toml": MINIMAL,
            "hvcfilter.bin": payload,
            "vm/hvcfilter-guest.toml": MINIMAL,
            # Outside the default filter: not a spec the hooks look at.
            "other/config.toml": BAD,
        },
    )
    result = _try_repo(repo, pre_commit_home)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "hvcfilter check" in out
    assert "hvcfilter compile-check" in out
    assert "Failed" not in out


def test_a_bad_spec_and_a_stale_payload_fail_with_the_diff(
    tmp_path: Path, pre_commit_home: Path
) -> None:
    stale = _compiled(MINIMAL.replace("nr_functions = 0x100", "nr_functions = 0x80"), tmp_path)
    repo = _repo(
        tmp_path,
        {"hvcfilter.toml": MINIMAL, "hvcfilter.bin": stale, "hvcfilter-bad.toml": BAD},
    )
    result = _try_repo(repo, pre_commit_home)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert out.count("Failed") == 2, out
    assert "hvcfilter-bad.toml" in out and "HVF2" in out  # check's finding
    assert "STALE hvcfilter.toml -> hvcfilter.bin" in out
    assert "-record 0 @0x0000: 000000c28000" in out  # committed: 0x80 functions
    assert "+record 0 @0x0000: 000000c20001" in out  # compiled: 0x100
