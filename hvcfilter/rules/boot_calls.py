"""What real Linux guests call at boot, per kernel, as data (``hvcfilter/data/boot-calls.json``).

The file is made by ``hvcfilter lab boot-calls`` from real boots of Debian's
kernels as KVM guests (two vCPUs, no table) and shipped with the package;
HVF306 reads it. :data:`PURPOSE` says, per call, what Linux uses it for.
"""

from __future__ import annotations

import os
from functools import cache

__all__ = ["PURPOSE", "linux_boot_calls"]

# os.path, not pathlib: `check` loads this module, and pathlib costs it milliseconds.
_DATA = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "boot-calls.json"
)

# Why a Linux guest makes each call at boot (the drivers that make them).
PURPOSE: dict[int, str] = {
    0x84000006: "psci_init_migrate asks whether a Trusted OS is pinned to one CPU",
    0x84000050: "the SMCCC TRNG probe, for a firmware entropy source",
    0xC4000053: "arch_get_random_seed, early entropy for the kernel's pool",
    0x86000000: "discovering KVM's vendor services such as the PTP clock",
    0x8600FF01: "identifying the hypervisor as KVM before its vendor calls",
    0xC5000020: "the PV time probe for stolen-time accounting",
}


@cache
def _guests() -> dict[str, dict[int, int]]:
    import json  # only when a table denies something: `check` start-up stays without it

    with open(_DATA, encoding="utf-8") as file:
        document = json.load(file)
    return {
        kernel: {int(fid, 16): count for fid, count in entry["calls"].items()}
        for kernel, entry in document["guests"].items()
    }


def linux_boot_calls(kernel: str) -> dict[int, int]:
    """Function ID -> times called at boot by a Linux guest on ``kernel``.

    A kernel without its own recording gets the union of all recorded kernels.
    """
    guests = _guests()
    if kernel in guests:
        return guests[kernel]
    union: dict[int, int] = {}
    for calls in guests.values():
        for fid, count in calls.items():
            union[fid] = max(union.get(fid, 0), count)
    return union
