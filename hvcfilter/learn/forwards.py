"""Which traced HVCs were forwarded: a ``kvm_hvc_arm64`` followed by its KVM_EXIT_HYPERCALL.

The trace room counts calls, not what they got. In ftrace a forwarded HVC
shows as ``kvm_userspace_exit: reason KVM_EXIT_HYPERCALL (3)`` on the same
vCPU thread after its ``kvm_hvc_arm64`` (reference section 6.1: that exit
marks a forwarded call; DENY and HANDLE cannot be told apart). This is a
second, cheap pass over the text through :func:`hvcfilter.trace.open_trace`,
run only when the file holds that exit at all, so traces without forwards
(and JSON Lines and CSV, which carry none) cost one scan for the marker.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Final

from hvcfilter.smccc import FUNCTION_ID_MAX
from hvcfilter.trace import contains, open_trace

__all__ = ["forwarded_calls"]

_MARKER: Final = b"KVM_EXIT_HYPERCALL"
# The pid before the CPU column, past record-tgid's "(tgid)" column, as ftrace._LINE reads it.
_TASK = re.compile(rb"-(\d+)\s+(?:\([\s\d-]+\)\s+)?\[")
_HVC = re.compile(rb"kvm_hvc_arm64:\s+HVC at 0x[0-9a-fA-F]+ \(r0: 0x([0-9a-fA-F]+)")


def _has_marker(path: str) -> bool:
    with open_trace(path) as source:
        return contains(source, _MARKER)


def forwarded_calls(path: str) -> Counter[int]:
    """Forwarded HVCs per W0 in an ftrace file (empty for other formats and ``-``).

    The file is read twice, so it must be one that can be: learn copies
    streams to a temporary file first.

    Raises:
        TraceError: the file cannot be read.
    """
    found: Counter[int] = Counter()
    if path == "-" or not _has_marker(path):
        return found
    pending: dict[bytes, int] = {}  # vCPU thread -> W0 of its last HVC
    with open_trace(path) as source:
        for line in source.stream:
            task = _TASK.search(line)
            if task is None:
                continue
            hvc = _HVC.search(line)
            if hvc is not None:
                pending[task.group(1)] = int(hvc.group(1), 16) & FUNCTION_ID_MAX
            elif b"kvm_userspace_exit" in line:
                fid = pending.pop(task.group(1), None)
                if fid is not None and _MARKER in line:
                    found[fid] += 1
            elif b"kvm_entry" in line or b"kvm_exit" in line:
                # The guest ran on, or trapped again (an SMC: no kvm_hvc_arm64, no ID):
                # a later KVM_EXIT_HYPERCALL is not the HVC's.
                pending.pop(task.group(1), None)
    return found
