"""Settings shared by the whole suite."""

from __future__ import annotations

from hypothesis import settings

# Property tests assert behaviour, not speed: a per-example deadline only makes
# them flaky on a busy or cold machine (CI shares two cores with QEMU).
settings.register_profile("hvcfilter", deadline=None)
settings.load_profile("hvcfilter")
