"""Where the suite's data lives, so that test modules can move without counting parents."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
EXAMPLES = ROOT / "examples"
TRACES = TESTS / "traces"
GOLDEN = TESTS / "golden"
KERNEL_CASES = TESTS / "kernel_cases"
LAB_FIXTURES = TESTS / "lab" / "fixtures"
