"""Settings shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests assert behaviour, not speed: a per-example deadline only makes
# them flaky on a busy or cold machine (CI shares two cores with QEMU).
settings.register_profile("hvcfilter", deadline=None)
settings.load_profile("hvcfilter")

# No test reads or fills the user's own tally cache (~/.cache/hvcfilter/traces):
# the cache's tests point HVCFILTER_CACHE_DIR at a directory of their own.
os.environ["HVCFILTER_CACHE_DIR"] = ""


@pytest.fixture
def tally_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tally cache of the test's own (not yet created), kept for traces of any size."""
    from hvcfilter.trace import cache

    monkeypatch.setattr(cache, "MIN_SIZE", 0)
    store = tmp_path / "cache"
    monkeypatch.setenv("HVCFILTER_CACHE_DIR", str(store))
    return store
