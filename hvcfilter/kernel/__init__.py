"""The kernel room: KVM/arm64's SMCCC filter and in-kernel services, as facts and as an emulator.

What lives here, one module each: the userspace ABI (:mod:`.abi`), the
per-version profiles (:mod:`.profiles`), what KVM answers in the kernel and
behind which gate (:mod:`.calls`), the filter tree and its install rules
(:mod:`.filter`), the firmware registers (:mod:`.firmware`), the services
that answer calls (:mod:`.arch`, :mod:`.psci`, :mod:`.trng`, :mod:`.pvtime`,
:mod:`.vendor`, gathered by :mod:`.services`) and :class:`KvmVm`, the thin
facade over them (:mod:`.vm`).

Imports: only :mod:`hvcfilter.smccc`, :mod:`hvcfilter.errors` and this
package; nothing from the spec, the rules, the table pipeline, the CLI or
the renderers. Other rooms may use :mod:`.abi`, :mod:`.profiles`,
:mod:`.calls`, :mod:`.filter` and :mod:`.firmware` (the kernel's facts, which
the linter shares with the emulator) and the names below; the rest is
internal. The emulator's names load on first use, so that ``hvcfilter
check``, which needs only the facts, never pays for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hvcfilter.kernel.abi import KVM_HYPERCALL_EXIT_16BIT, KVM_HYPERCALL_EXIT_SMC
    from hvcfilter.kernel.results import CallResult, ExitKind, Outcome, Segment
    from hvcfilter.kernel.services import InKernelCall, in_kernel_calls
    from hvcfilter.kernel.vm import FAST_PATH_IDS, KvmVm
    from hvcfilter.smccc import CallKey, Conduit, Mode

__all__ = [
    "FAST_PATH_IDS",
    "KVM_HYPERCALL_EXIT_16BIT",
    "KVM_HYPERCALL_EXIT_SMC",
    "CallKey",
    "CallResult",
    "Conduit",
    "ExitKind",
    "InKernelCall",
    "KvmVm",
    "Mode",
    "Outcome",
    "Segment",
    "in_kernel_calls",
]

# name -> the module that defines it
_LAZY = {
    "FAST_PATH_IDS": "hvcfilter.kernel.vm",
    "KvmVm": "hvcfilter.kernel.vm",
    "KVM_HYPERCALL_EXIT_16BIT": "hvcfilter.kernel.abi",
    "KVM_HYPERCALL_EXIT_SMC": "hvcfilter.kernel.abi",
    "CallResult": "hvcfilter.kernel.results",
    "ExitKind": "hvcfilter.kernel.results",
    "Outcome": "hvcfilter.kernel.results",
    "Segment": "hvcfilter.kernel.results",
    "InKernelCall": "hvcfilter.kernel.services",
    "in_kernel_calls": "hvcfilter.kernel.services",
    "CallKey": "hvcfilter.smccc",
    "Conduit": "hvcfilter.smccc",
    "Mode": "hvcfilter.smccc",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
