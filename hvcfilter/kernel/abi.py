"""The KVM/arm64 userspace ABI a filter is made of: the action byte, the record, the exit flags.

Values from uapi ``linux/kvm.h`` and ``arch/arm64/include/uapi/asm/kvm.h``
(reference sections 1.1, 1.2 and 1.4). Everything that speaks to the
kernel, emulated or real, takes these names from here: the spec model
(``Action``), the payload codec (``RECORD``), the emulator and the C and
Rust emitters.
"""

from __future__ import annotations

import struct
from enum import IntEnum

__all__ = [
    "KVM_HYPERCALL_EXIT_16BIT",
    "KVM_HYPERCALL_EXIT_SMC",
    "KVM_SYSTEM_EVENT_RESET",
    "KVM_SYSTEM_EVENT_RESET_FLAG_PSCI_RESET2",
    "KVM_SYSTEM_EVENT_SHUTDOWN",
    "KVM_SYSTEM_EVENT_SHUTDOWN_FLAG_PSCI_OFF2",
    "KVM_SYSTEM_EVENT_SUSPEND",
    "PAD_SIZE",
    "RECORD",
    "RECORD_BE",
    "RECORD_SIZE",
    "Action",
]


class Action(IntEnum):
    """``KVM_SMCCC_FILTER_*``: the action byte of a filter record (uapi kvm.h)."""

    HANDLE = 0
    DENY = 1
    FWD_TO_USER = 2

    @property
    def label(self) -> str:
        """The spelling used in specs and output: ``handle``, ``deny``, ``fwd_to_user``."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Action:
        """The action a spec spells ``text``.

        Raises:
            ValueError: not one of the three action names.
        """
        try:
            return _ACTIONS_BY_LABEL[text]
        except KeyError:
            raise ValueError(f"unknown action {text!r}") from None


_ACTIONS_BY_LABEL = {action.name.lower(): action for action in Action}

# struct kvm_smccc_filter (uapi asm/kvm.h, arm64), reference section 1.2:
RECORD = struct.Struct(
    "<"  # little-endian: every arm64 KVM host the filter exists on
    "I"  # base: first function ID (u32)
    "I"  # nr_functions: number of IDs, the range is [base, base + nr_functions) (u32)
    "B"  # action: KVM_SMCCC_FILTER_HANDLE 0, DENY 1, FWD_TO_USER 2 (u8)
    "15s"  # pad[15]: must be all zero, or SET_ATTR fails with EINVAL
)
# The same layout for a big-endian host (``--byte-order big``).
RECORD_BE = struct.Struct(">IIB15s")
RECORD_SIZE = RECORD.size
assert RECORD_SIZE == RECORD_BE.size == 24
PAD_SIZE = 15

# kvm_run.hypercall.flags bits (reference 1.4).
KVM_HYPERCALL_EXIT_SMC = 1 << 0
KVM_HYPERCALL_EXIT_16BIT = 1 << 1
# kvm_run.system_event.type and flags (reference 1.1, 3.7).
KVM_SYSTEM_EVENT_SHUTDOWN = 1
KVM_SYSTEM_EVENT_RESET = 2
KVM_SYSTEM_EVENT_SUSPEND = 5
KVM_SYSTEM_EVENT_RESET_FLAG_PSCI_RESET2 = 1
KVM_SYSTEM_EVENT_SHUTDOWN_FLAG_PSCI_OFF2 = 1
