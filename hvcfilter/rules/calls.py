"""Rules about the calls a table takes from KVM: boot-critical PSCI, kernel calls, PSCI 0.1.

Each is a warning: the kernel accepts the table, but a guest may not boot
or power off (HVF302), the VMM must now implement what KVM answered
(HVF303), a PSCI 0.1 guest"s calls slip past a policy written for the
standard PSCI IDs (HVF305), or the guest is told a denied call exists
(HVF307).
"""

from __future__ import annotations

from collections.abc import Iterator

from hvcfilter import smccc
from hvcfilter.diagnostics import Diagnostic, Severity
from hvcfilter.kernel import calls as kvm_calls
from hvcfilter.model import Action, FilterSpec
from hvcfilter.rules.analysis import analyse, kernel_calls, psci_version_of
from hvcfilter.rules.boot_calls import PURPOSE, linux_boot_calls
from hvcfilter.rules.registry import Check, check
from hvcfilter.rules.wording import Groups, join, labels, record_label

__all__ = [
    "CHECKS",
    "denies_advertised_call",
    "denies_boot_call",
    "denies_linux_boot_call",
    "forwards_kernel_call",
    "legacy_psci_gap",
]


# What a guest needs to boot and to power off or reboot (HVF302).
_BOOT_CALLS = (
    kvm_calls.PSCI_VERSION,
    kvm_calls.PSCI_CPU_ON,
    kvm_calls.PSCI_CPU_ON_64,
    kvm_calls.PSCI_SYSTEM_OFF,
    kvm_calls.PSCI_SYSTEM_RESET,
    kvm_calls.PSCI_FEATURES,
)


@check("HVF302", "denies-boot-call", Severity.WARNING)
def denies_boot_call(spec: FilterSpec) -> Iterator[Diagnostic]:
    """A ``deny`` covers calls a guest needs to boot, power off or reboot.

    Linux probes PSCI with PSCI_VERSION and PSCI_FEATURES, starts secondary
    CPUs with CPU_ON (either width), and powers off and reboots with
    SYSTEM_OFF and SYSTEM_RESET. Denied, the guest runs on one CPU and cannot
    shut down cleanly. A VM on PSCI 0.1 uses KVM's legacy CPU_ON 0x95C1BA60
    instead. To take these calls over, forward them and implement them in the
    VMM.

    Fail: ``service = "psci", action = "deny"``.
    Pass: ``function = "PSCI_MIGRATE_32", action = "deny"``, or the PSCI
    service with ``action = "fwd_to_user"``.
    """
    a = analyse(spec)
    boot = list(_BOOT_CALLS)
    if psci_version_of(spec.profile, spec.vm) == (0, 1):
        boot.append(kvm_calls.KVM_PSCI_FN_CPU_ON)
    cat = smccc.catalogue()
    groups = Groups()
    for fid in boot:
        act, rec = a.action_at(fid)
        if act is Action.DENY and rec is not None:
            groups.add(rec, cat.label(fid))
    for entry, label, items in groups:
        yield denies_boot_call.finding(
            spec,
            entry,
            f"{label} denies calls a guest needs to boot or power off: "
            f"{join(items)}; the guest cannot probe PSCI, start secondary CPUs, "
            "or power off and reboot",
            "leave them to KVM, or forward them (fwd_to_user) to a VMM that implements them",
        )


@check("HVF306", "denies-linux-boot-call", Severity.WARNING)
def denies_linux_boot_call(spec: FilterSpec) -> Iterator[Diagnostic]:
    """A ``deny`` covers a call that real Linux guests make at boot.

    Recorded by ``hvcfilter lab boot-calls`` from Debian's kernels booting as
    KVM guests (shipped as data, per kernel): besides the PSCI calls of
    HVF302, Linux asks PSCI_MIGRATE_INFO_TYPE, probes and reads the TRNG,
    discovers KVM's vendor services and sets up PV time. Denied, the guest
    still boots but loses what the call was for (early entropy, the PTP clock,
    stolen-time accounting). Forwarding such a call is HVF303's business.

    Fail: ``service = "trng", action = "deny"``.
    Pass: ``owner = "sip", action = "deny"`` (Linux makes no SiP call at boot).
    """
    if not any(rec.action is Action.DENY for rec in spec.ranges):
        return  # most tables deny nothing: no need to read the boot-call data
    a = analyse(spec)
    cat = smccc.catalogue()
    groups = Groups()
    boot = linux_boot_calls(spec.profile.name)
    for fid in sorted(boot):
        if fid in _BOOT_CALLS:
            continue  # HVF302 reports these
        act, rec = a.action_at(fid)
        if act is Action.DENY and rec is not None:
            purpose = PURPOSE.get(fid, "made by Linux at boot")
            groups.add(rec, f"{cat.label(fid)} ({purpose})")
    for entry, label, items in groups:
        yield denies_linux_boot_call.finding(
            spec,
            entry,
            f"{label} denies calls Linux guests make at boot on {spec.profile.name}: {join(items)}",
            "deny them only if the guest can do without them, then allow this finding",
        )


@check("HVF303", "forwards-kernel-call", Severity.WARNING)
def forwards_kernel_call(spec: FilterSpec) -> Iterator[Diagnostic]:
    """A ``fwd_to_user`` range takes over calls KVM would answer itself.

    Forwarded calls exit to the VMM, which must now implement them: PSCI
    (CPU_ON, SYSTEM_OFF...), TRNG, PV time or the KVM vendor calls that KVM
    answers for this VM (its PSCI version and firmware bitmaps are taken into
    account). That can be the intent (a VMM that implements PSCI itself), so
    this is a warning that names every call taken over.

    Fail: ``base = 0x84000000, nr_functions = 0x20, action = "fwd_to_user"``.
    Pass: ``owner = "sip", action = "fwd_to_user"`` (KVM implements no SiP calls).
    """
    a = analyse(spec)
    cat = smccc.catalogue()
    groups = Groups()
    for fid in a.kernel_ids:
        act, rec = a.action_at(fid)
        if act is Action.FWD_TO_USER and rec is not None:
            groups.add(rec, cat.label(fid))
    for entry, label, items in groups:
        count_text = "a call" if len(items) == 1 else f"{len(items)} calls"
        yield forwards_kernel_call.finding(
            spec,
            entry,
            f"{label} forwards {count_text} that KVM would answer itself: "
            f"{join(items)}; the VMM must now implement {'it' if len(items) == 1 else 'them'}",
            "narrow the range to the calls the VMM implements, or make sure it implements these",
        )


@check("HVF305", "legacy-psci-gap", Severity.WARNING)
def legacy_psci_gap(spec: FilterSpec) -> Iterator[Diagnostic]:
    """A PSCI 0.1 VM filters the standard PSCI IDs but not KVM's legacy ones.

    With ``[vm] psci_version = "0.1"`` KVM serves only its private PSCI 0.1
    IDs 0x95C1BA5E-0x95C1BA61 (CPU_SUSPEND, CPU_OFF, CPU_ON, MIGRATE) and
    answers the standard 0x84000000 block with NOT_SUPPORTED. Such a guest
    calls the legacy IDs, so a policy on the standard PSCI IDs does not reach
    it.

    Fail: ``[vm] psci_version = "0.1"`` with ``service = "psci", action = "fwd_to_user"``.
    Pass: the same plus ``base = 0x95C1BA5E, nr_functions = 4, action = "fwd_to_user"``.
    """
    if psci_version_of(spec.profile, spec.vm) != (0, 1):
        return
    a = analyse(spec)
    filtered = None
    block = range(kvm_calls.PSCI_FUNCTION_NUMBER_MAX + 1)
    for fid in (*(0x8400_0000 + n for n in block), *(0xC400_0000 + n for n in block)):
        act, rec = a.action_at(fid)
        if act is not None and rec is not None:
            filtered = rec
            break
    if filtered is None:
        return
    first, last = kvm_calls.LEGACY_PSCI.first, kvm_calls.LEGACY_PSCI.last
    open_ids = [fid for fid in range(first, last + 1) if a.action_at(fid)[0] is None]
    if not open_ids:
        return
    yield legacy_psci_gap.finding(
        spec,
        filtered.entry,
        f"{record_label(filtered)} filters standard PSCI IDs, but the VM uses PSCI 0.1 "
        f"([vm] psci_version), whose guests call KVM's legacy IDs: {labels(open_ids)} "
        "are left to KVM",
        f"filter {smccc.IdRange(first, last)} as well, or raise the VM's PSCI version",
    )


# What the hint of HVF307 says per discovery call: how KVM stops offering them.
_UNOFFER = {
    kvm_calls.PSCI_FEATURES: (
        "leave them to KVM, forward PSCI_FEATURES to a VMM that answers for this table, "
        'or set [vm] psci_version = "0.2", which has no PSCI_FEATURES'
    ),
    kvm_calls.TRNG_FEATURES: (
        'deny the whole TRNG service (service = "trng"), or hide it from the guest '
        'by leaving "trng" out of [vm] std'
    ),
    kvm_calls.KVM_FEATURES: (
        'hide the call from the guest by leaving it out of [vm] vendor_hyp ("ptp"), '
        "which KVM_FEATURES reports"
    ),
}
# The calls guests look up before they use them. A real Linux 7.2 guest asks
# PSCI_FEATURES about CPU_SUSPEND, SYSTEM_SUSPEND, SYSTEM_RESET2 and SYSTEM_OFF2
# at boot (lab, verify --guest), and reads KVM_FEATURES' bitmap before the PTP
# clock. The mandatory PSCI calls (CPU_OFF, AFFINITY_INFO...) it just calls.
# TRNG_FEATURES answers, in the TRNG spec, whether a call is implemented.
_LOOKED_UP = frozenset(
    {
        kvm_calls.PSCI_CPU_SUSPEND,
        kvm_calls.PSCI_CPU_SUSPEND_64,
        kvm_calls.PSCI_SYSTEM_SUSPEND,
        kvm_calls.PSCI_SYSTEM_SUSPEND_64,
        kvm_calls.PSCI_SYSTEM_RESET2,
        kvm_calls.PSCI_SYSTEM_RESET2_64,
        kvm_calls.PSCI_SYSTEM_OFF2,
        kvm_calls.PSCI_SYSTEM_OFF2_64,
        kvm_calls.TRNG_GET_UUID,
        kvm_calls.TRNG_RND32,
        kvm_calls.TRNG_RND64,
        kvm_calls.KVM_PTP,
    }
)


@check("HVF307", "denies-advertised-call", Severity.WARNING)
def denies_advertised_call(spec: FilterSpec) -> Iterator[Diagnostic]:
    """A ``deny`` covers a call that KVM's discovery call still offers the guest.

    PSCI_FEATURES, TRNG_FEATURES and KVM_FEATURES answer from what KVM
    implements for the VM, not from the filter (observed on 6.12 and 7.2):
    while they are left to KVM, a guest that looks a call up first is told
    it exists, calls it, and gets NOT_SUPPORTED. A real Linux 7.2 guest asks
    PSCI_FEATURES about CPU_SUSPEND, SYSTEM_RESET2 and SYSTEM_OFF2 at boot,
    for CPU idle, warm reboot and hibernation, and reads KVM_FEATURES before
    it uses the PTP clock. (It asks about SYSTEM_SUSPEND too, which KVM
    serves only with a capability a spec does not give.) Calls HVF302 and
    HVF306 report are left to them.

    Fail: ``function = "PSCI_CPU_SUSPEND_64", action = "deny"``.
    Pass: ``function = "PSCI_CPU_SUSPEND_64", action = "fwd_to_user"`` (the VMM
    answers it), or a deny of the TRNG service, TRNG_FEATURES included.
    """
    if not any(rec.action is Action.DENY for rec in spec.ranges):
        return
    a = analyse(spec)
    served = kernel_calls(spec.profile, spec.vm)
    reported = {*_BOOT_CALLS, *linux_boot_calls(spec.profile.name)}
    cat = smccc.catalogue()
    for service, asking in kvm_calls.DISCOVERY.items():
        if asking not in served or a.action_at(asking)[0] is not None:
            continue  # the guest cannot ask KVM, or the table decides what it hears
        groups = Groups()
        for call in kvm_calls.KVM_CALLS:
            fid = call.fid
            if call.service != service or fid not in _LOOKED_UP or fid in reported:
                continue
            act, rec = a.action_at(fid)
            if fid in served and act is Action.DENY and rec is not None:
                groups.add(rec, cat.label(fid))
        name = cat.label(asking)
        for entry, label, items in groups:
            yield denies_advertised_call.finding(
                spec,
                entry,
                f"{label} denies {join(items)}, which {name} (left to KVM) still offers: "
                "a guest that looks a call up first is told yes, calls, and gets NOT_SUPPORTED",
                _UNOFFER[asking],
            )


CHECKS: tuple[Check, ...] = (
    denies_advertised_call,
    denies_boot_call,
    denies_linux_boot_call,
    forwards_kernel_call,
    legacy_psci_gap,
)
