"""The architecture of docs/architecture.md, checked: import layers, room sizes, room docs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from importlinter.cli import lint_imports
from suite_paths import ROOT

PACKAGE = ROOT / "hvcfilter"
# A module much longer than this mixes jobs; split it along its nouns.
MAX_MODULE_LINES = 600


def test_import_contracts_are_kept() -> None:
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0


@pytest.mark.parametrize(
    "module", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_no_module_is_much_over_500_lines(module: Path) -> None:
    assert len(module.read_text().splitlines()) <= MAX_MODULE_LINES


@pytest.mark.parametrize(
    "package",
    sorted(p.parent for p in PACKAGE.rglob("__init__.py") if p.parent != PACKAGE),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_every_room_says_what_it_is_for_and_what_it_may_import(package: Path) -> None:
    doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
    assert doc.strip(), "the room needs a docstring"
    if package.parent == PACKAGE:  # top-level rooms state their imports
        assert "Imports:" in doc
