"""Seeded random conformance scenarios for comparing the emulator with a real kernel.

:func:`generate` draws scenarios from a :class:`random.Random` seeded by the
caller, so a failing scenario can be reproduced from its seed and index (the
scenario name records both).  The draws favour the places where emulators go
wrong: the edges of the reserved Arm-architecture ranges, 32-bit wrap of
``base + nr``, ``nr = 0`` and ``(0, 0)``, bad pads and actions, installs after
the first run (EBUSY), firmware bitmaps and PSCI versions, both conduits,
nonzero immediates, A64/A32/T32 guests, high bits in x0 and the well-known
function IDs KVM answers itself.  Calls that halt or stop the vCPU
(CPU_SUSPEND, CPU_OFF) are left out so that batches stay fast; calls that end
in a system event only appear as a scenario's last call.
"""

from __future__ import annotations

import random

from hvcfilter.lab.scenario import (
    Call,
    Conduit,
    GetFwBitmap,
    Mode,
    Run,
    Scenario,
    SetFilter,
    SetFwBitmap,
    SetPsciVersion,
    Step,
)

__all__ = ["EDGE_BASES", "WELL_KNOWN_IDS", "generate"]

# Reserved-range edges and neighbours, PSCI/TRNG/vendor ranges, wrap points.
EDGE_BASES = (
    0x0000_0000, 0x0000_0001, 0x0200_0000, 0x4000_0000, 0x7FFF_FFFF, 0x8000_0000,
    0x8000_0001, 0x8000_FFFF, 0x8001_0000, 0x8100_0000, 0x8200_0000, 0x8400_0000,
    0x8400_0008, 0x8400_0020, 0x8400_0050, 0x8500_0000, 0x8600_0000, 0x8600_0001,
    0x8600_FF01, 0xBFFF_FFFF, 0xC000_0000, 0xC000_FFFF, 0xC001_0000, 0xC200_0000,
    0xC400_0000, 0xC400_0003, 0xC500_0020, 0xC600_0040, 0xFFFF_FFF0, 0xFFFF_FFFF,
)  # fmt: skip
_NRS = (0, 1, 1, 1, 2, 0x10, 0x20, 0x40, 0x100, 0xFFFF, 0x1_0000, 0x7FFF_FFFF,
        0x8000_0000, 0xFFFF_FFFF)  # fmt: skip
WELL_KNOWN_IDS = (
    0x8000_0000, 0x8000_0001, 0x8000_0002, 0x8000_0004, 0x8000_8000, 0x8000_7FFF,
    0x8000_3FFF, 0xC000_0000, 0x8400_0000, 0x8400_0003, 0xC400_0003, 0x8400_0004,
    0xC400_0004, 0x8400_0006, 0x8400_0007, 0x8400_000A, 0x8400_0010, 0x8400_001F,
    0x8400_0020, 0xC400_0020, 0x8401_0000, 0x8400_0050, 0x8400_0051, 0x8400_0052,
    0x8400_0053, 0xC400_0053, 0xC500_0020, 0xC500_0021, 0x8600_0000, 0x8600_0001,
    0x8600_FF01, 0x8600_FF00, 0xC600_0040, 0xC600_0041, 0x95C1_BA5E, 0x95C1_BA61,
    0x8200_0000, 0xC200_0005, 0x0200_0000, 0x3200_0003, 0x1234_5678, 0xFFFF_FFFF,
)  # fmt: skip
_FEATURE_QUERIES = (0x8000_8000, 0x8000_7FFF, 0x8000_3FFF, 0x8000_0000, 0x8400_0000,
                    0x8400_0015, 0xC500_0020, 0x8400_0050, 0x8400_0053, 0x12)  # fmt: skip
_EVENT_CALLS = (0x8400_0008, 0x8400_0009, 0x8400_0012, 0xC400_0012, 0x8400_0015)
_PSCI_VERSIONS = ((0, 2), (1, 0), (1, 1), (1, 2), (1, 3), (0, 1), (2, 0))


def _filter(rng: random.Random) -> SetFilter:
    base = rng.choice(EDGE_BASES) if rng.random() < 0.7 else rng.getrandbits(32)
    if rng.random() < 0.15:
        base = (base + rng.randint(-2, 2)) & 0xFFFF_FFFF
    nr = rng.choice(_NRS) if rng.random() < 0.8 else rng.randint(1, 0x1000)
    action = rng.choice((0, 1, 2, 2, 1, 2)) if rng.random() < 0.9 else rng.choice((3, 4, 9, 255))
    pad = bytes(15)
    if rng.random() < 0.07:
        pad_list = [0] * 15
        pad_list[rng.randrange(15)] = rng.randint(1, 255)
        pad = bytes(pad_list)
    return SetFilter(base, nr, action, pad)


def _call_id(rng: random.Random, filters: list[SetFilter]) -> int:
    r = rng.random()
    if r < 0.45:
        return rng.choice(WELL_KNOWN_IDS)
    if r < 0.85 and filters:
        f = rng.choice(filters)
        # Probe the inclusive end and one past it, where off-by-one bugs live.
        return rng.choice((f.base, f.base + f.nr - 1, f.base + f.nr, f.base - 1)) & 0xFFFF_FFFF
    return rng.getrandbits(32)


def _call(rng: random.Random, mode: Mode, filters: list[SetFilter], fid: int | None = None) -> Call:
    x0 = _call_id(rng, filters) if fid is None else fid
    if mode == "a64" and rng.random() < 0.1:
        x0 |= rng.getrandbits(32) << 32  # the filter must look at W0 only
    conduit: Conduit = "smc" if rng.random() < 0.4 else "hvc"
    if conduit == "smc":
        imm = 0 if rng.random() < 0.85 else rng.randint(1, 0xF)
    else:
        imm = 0 if rng.random() < 0.8 else rng.choice((1, 7, 0xFFFF, rng.getrandbits(16)))
    low = x0 & 0xFFFF_FFFF
    if low in (0x8000_0001, 0x8400_000A, 0x8400_0051, 0xC500_0020):
        x1 = rng.choice(_FEATURE_QUERIES)
    elif low in (0x8400_0003, 0xC400_0003, 0x8400_0004, 0xC400_0004):
        x1 = rng.choice((0, 0, 1, 0x1111, 0x100))
    elif low in (0x8400_0053, 0xC400_0053):
        x1 = rng.choice((0, 32, 64, 96, 97, 192, 193))
    else:
        x1 = 0x1111
    if mode != "a64":
        x0 &= 0xFFFF_FFFF
    return Call(x0, x1, 0x2222, 0x3333 if low not in (0x8400_0004, 0xC400_0004) else 0,
                conduit, imm, mode)  # fmt: skip


def _scenario(rng: random.Random, name: str) -> Scenario:
    mode: Mode = rng.choice(("a64", "a64", "a64", "a32", "t32"))
    steps: list[Step] = []
    filters: list[SetFilter] = []
    for _ in range(rng.choice((0, 1, 1, 2, 3, 4, 6))):
        f = _filter(rng)
        filters.append(f)
        steps.append(f)
    if rng.random() < 0.2:
        reg = rng.choice((0, 1, 2, 3))
        steps.append(SetFwBitmap(reg, rng.choice((0, 0, 1, 2, 3, 4))))
        steps.append(GetFwBitmap(reg))
    if rng.random() < 0.15:
        steps.append(SetPsciVersion(*rng.choice(_PSCI_VERSIONS)))
    if rng.random() < 0.2:
        steps.append(Run())
        for _ in range(rng.randint(1, 2)):
            f = _filter(rng)
            steps.append(f)
        if rng.random() < 0.5:
            steps.append(SetFwBitmap(rng.choice((0, 1, 2)), rng.choice((0, 1, 3))))
    for _ in range(rng.randint(2, 10)):
        steps.append(_call(rng, mode, filters))
    if rng.random() < 0.1:
        steps.append(_call(rng, mode, filters, rng.choice(_EVENT_CALLS)))
    return Scenario(name, tuple(steps))


def generate(seed: int, count: int) -> list[Scenario]:
    """``count`` random scenarios from ``seed``; the same arguments give the same scenarios.

    Raises:
        ValueError: a negative count.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    rng = random.Random(seed)
    return [_scenario(rng, f"gen-{seed}-{i}") for i in range(count)]
