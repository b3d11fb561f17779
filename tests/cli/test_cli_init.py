"""``hvcfilter init``: writes a starter spec, lists templates, never overwrites by surprise."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from hvcfilter.cli import cli


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_init_writes_hvcfilter_toml_that_check_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run("init")
    assert code == 0 and "hvcfilter.toml" in err
    assert "template lockdown" in (tmp_path / "hvcfilter.toml").read_text()
    assert run("check", "--strict")[0] == 0


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    target = tmp_path / "vm.toml"
    target.write_text("mine\n")
    code, _, err = run("init", str(target), "-t", "trng-in-vmm")
    assert code == 2 and "--force" in err and str(target) in err
    assert target.read_text() == "mine\n"
    code, _, _ = run("init", str(target), "-t", "trng-in-vmm", "--force")
    assert code == 0 and 'name = "trng-in-vmm"' in target.read_text()


def test_a_dangling_link_counts_as_existing(tmp_path: Path) -> None:
    # Written through, it created the file it pointed at, anywhere, without --force.
    elsewhere = tmp_path / "elsewhere.toml"
    (tmp_path / "vm.toml").symlink_to(elsewhere)
    code, _, err = run("init", str(tmp_path / "vm.toml"))
    assert code == 2 and "exists; use --force" in err
    assert not elsewhere.exists()


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda p: "", "the path is empty; name the spec file to write"),
        (str, "is a directory; name a file, such as"),
        (
            lambda p: "a" * 300 + ".toml",
            "cannot write " + "a" * 300 + ".toml: file name too long for the file system",
        ),
    ],
    ids=["empty", "directory", "name-too-long"],
)
def test_a_path_that_cannot_be_a_spec_file_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: Callable[[Path], str], said: str
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run("init", make(tmp_path))
    assert code == 2 and said in err
    assert list(tmp_path.iterdir()) == []


def test_unknown_template_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "vm.toml"
    code, _, err = run("init", str(target), "-t", "hotplug")
    assert code == 2 and "vcpu-hotplug" in err
    assert not target.exists()


def test_a_failed_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "vm.toml"
    real_replace = os.replace

    def failing_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    code, _, err = run("init", str(target))
    assert code == 2 and "vm.toml" in err
    monkeypatch.setattr(os, "replace", real_replace)
    assert list(tmp_path.iterdir()) == []


def test_list_in_text_and_json() -> None:
    code, out, _ = run("init", "--list")
    assert code == 0 and out.splitlines()[0].startswith("lockdown ")
    code, out, _ = run("init", "--list", "--format", "json")
    names = [t["name"] for t in json.loads(out)["templates"]]
    assert code == 0 and "vcpu-hotplug" in names and "sip-in-vmm" in names


def test_dash_writes_the_template_to_stdout_and_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run("init", "-", "-t", "trng-in-vmm")
    assert code == 0 and err == ""
    assert 'name = "trng-in-vmm"' in out
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "vm.toml").write_text(out)
    assert run("check", "--strict", str(tmp_path / "vm.toml"))[0] == 0


def test_format_without_list_is_a_usage_error_not_ignored(tmp_path: Path) -> None:
    code, _, err = run("init", "--format", "json", str(tmp_path / "vm.toml"))
    assert code == 2 and "--format applies to --list only" in err
    assert not (tmp_path / "vm.toml").exists()
