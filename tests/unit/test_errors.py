"""errno names as every report prints them."""

from __future__ import annotations

import errno

from hvcfilter.errors import errno_name


def test_errno_names() -> None:
    assert errno_name(errno.EEXIST) == "EEXIST"
    assert errno_name(errno.EBUSY) == "EBUSY"
    assert errno_name(0) == "0"
    assert errno_name(9999) == "9999"
