"""Fixtures for the real-lab tests: a session-wide lab that is prepared, or a loud failure.

Tests marked ``lab`` need qemu-system-aarch64 and the Debian arm64 kernels.
They never skip: the ``lab`` fixture calls :func:`~hvcfilter.lab.prepare_lab`
(idempotent, about 0.1 s when the cache is complete; it installs host tools
with apt when run as root) and fails the test with the :class:`LabError`
message when the lab cannot be prepared, so CI cannot pass without it.
"""

from __future__ import annotations

import sys

import pytest

from hvcfilter.errors import LabError
from hvcfilter.lab import LabStatus, prepare_lab

# Every kernel the lab tests and the conformance suite boot.
LAB_KERNELS = ("6.1", "6.12", "7.2")


@pytest.fixture(scope="session")
def lab() -> LabStatus:
    """The prepared lab (default cache folder); fails loudly when it cannot be prepared."""
    try:
        status = prepare_lab(None, LAB_KERNELS, progress=lambda m: print(m, file=sys.stderr))
    except LabError as exc:
        pytest.fail(f"the real-kernel lab cannot be prepared: {exc}", pytrace=False)
    if not status.ready:
        pytest.fail(
            f"the real-kernel lab is not ready after setup: missing {status.missing_for_boot()}",
            pytrace=False,
        )
    return status
