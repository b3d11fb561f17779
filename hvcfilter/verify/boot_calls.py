"""``hvcfilter lab boot-calls``: record the SMCCC calls a real Linux guest makes at boot.

Each lab kernel boots as a two-vCPU guest of the lab's VMM under an empty
table (the kernel's default handling), and the distinct function IDs it
called, with how often, become one entry of the data file that ``check``
reads (:mod:`hvcfilter.rules.boot_calls`). The shipped file was made this way
and is remade with the same command.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from hvcfilter.errors import LabError
from hvcfilter.lab import lab_status
from hvcfilter.verify.guest import verify_guest

__all__ = ["FORMAT", "record_boot_calls"]

FORMAT = "hvcfilter-boot-calls-v1"
_EMPTY_SPEC = '[filter]\nname = "boot-calls"\ndescription = "no ranges: the default handling"\n'


def record_boot_calls(
    kernels: Sequence[str], *, cpus: int = 2, cache_dir: Path | None = None
) -> str:
    """Boot each kernel as a guest under no table; the JSON document of what it called.

    Raises:
        LabError: the lab is not ready, or a guest did not boot and power off.
    """
    lab = lab_status(cache_dir)
    entries: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="hvcfilter-boot-calls-") as tmp:
        spec = Path(tmp) / "boot-calls.toml"
        spec.write_text(_EMPTY_SPEC, "utf-8")
        result = verify_guest(spec, kernels, cpus=cpus, cache_dir=cache_dir)
    for guest in result.guests:
        if not (guest.booted and guest.powered_off):
            raise LabError(f"the {guest.kernel} guest did not boot and power off: {guest.reasons}")
        counts = Counter(c.function_id for c in guest.calls)
        entries[guest.kernel] = {
            "kernel": lab.kernel(guest.kernel).version,
            "cpus": cpus,
            "calls": {f"{fid:#010x}": counts[fid] for fid in sorted(counts)},
        }
    document = {"format": FORMAT, "made_by": "hvcfilter lab boot-calls", "guests": entries}
    return json.dumps(document, indent=2) + "\n"
