"""Tests for hvcfilter.kernel.profiles: lookup, register data, the differences between kernels."""

from __future__ import annotations

import errno

import pytest

from hvcfilter.errors import HvcFilterError
from hvcfilter.kernel.profiles import (
    DEFAULT_PROFILE,
    LAB_HOST,
    PROFILES,
    KernelProfile,
    UnknownProfileError,
    get_profile,
)


@pytest.mark.parametrize(
    ("name", "want"),
    [
        (None, "7.2"),
        ("6.12", "6.12"),
        ("6.12.95", "6.12"),
        ("linux-6.12", "6.12"),
        ("v7.2.13", "7.2"),
        (" 7.2 ", "7.2"),
        # A release candidate as its tag spells it and as uname -r does: one release.
        ("6.12-rc1", "6.12"),
        ("6.12.0-rc1", "6.12"),
        ("v7.2-rc3", "7.2"),
        ("6.1-rc7", "6.1"),
        ("6.12.3+deb13-arm64", "6.12"),
        ("6.12+", "6.12"),
    ],
)
def test_get_profile_spellings(name: str | None, want: str) -> None:
    assert get_profile(name).name == want


def test_default_is_newest() -> None:
    newest = max(PROFILES, key=lambda n: tuple(int(p) for p in n.split(".")))
    assert newest == DEFAULT_PROFILE


@pytest.mark.parametrize("name", ["6.123", "6.1x", "6.12rc1", "16.12", "6"])
def test_a_longer_number_is_another_release(name: str) -> None:
    # "6.123" is not 6.12 nor 6.1: the minor number ends where the digits do.
    with pytest.raises(UnknownProfileError):
        get_profile(name)


def test_unknown_profile_error() -> None:
    with pytest.raises(UnknownProfileError) as info:
        get_profile("6.13")
    message = str(info.value)
    assert "(known: 6.1, 6.12, 7.2)" in message
    assert isinstance(info.value, HvcFilterError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("version", "nearest", "kind"),
    [
        ("6.8", "6.12", "with"),  # spelling alone said 6.1, which has no filter
        ("6.4", "6.12", "with"),
        ("6.13", "6.12", "with"),
        ("7.9.1", "7.2", "with"),
        ("5.10", "6.1", "without"),
        ("6.3", "6.1", "without"),
        ("6.4-rc1", "6.12", "with"),  # by spelling: 6.1
        ("6.10-rc1", "6.12", "with"),  # by spelling: nothing
        ("6.13x", "6.12", "with"),  # no release, but a version all the same
    ],
)
def test_an_unknown_version_suggests_the_nearest_profile_of_its_kind(
    version: str, nearest: str, kind: str
) -> None:
    # The filter arrived in 6.4 (reference section 4): a suggestion keeps to that side.
    with pytest.raises(UnknownProfileError) as info:
        get_profile(version)
    assert str(info.value) == (
        f"unknown kernel profile {version!r} (known: 6.1, 6.12, 7.2); "
        f"did you mean {nearest!r}, the nearest kernel {kind} the SMCCC filter?"
    )


# Every row of reference section 10's difference table, as (field, 6.12 value, 7.2 value).
DIFFERENCES = [
    ("zero_zero_errno", errno.EEXIST, errno.EINVAL),
    ("zero_zero_is_validation", False, True),
    ("psci_version_default", (1, 1), (1, 3)),
    ("system_off2", False, True),
    ("kvm_features_x2", False, True),
    ("protected_filter_errno", None, errno.EINVAL),
]


@pytest.mark.parametrize(("field", "old", "new"), DIFFERENCES)
def test_section_10_differences(field: str, old: object, new: object) -> None:
    assert getattr(PROFILES["6.12"], field) == old
    assert getattr(PROFILES["7.2"], field) == new


def test_psci_versions_accepted() -> None:
    assert (1, 2) not in PROFILES["6.12"].psci_versions_accepted
    assert {(1, 2), (1, 3)} <= set(PROFILES["7.2"].psci_versions_accepted)
    for profile in PROFILES.values():
        assert profile.psci_version_default in profile.psci_versions_accepted


def test_bitmap_registers() -> None:
    old, new = PROFILES["6.12"], PROFILES["7.2"]
    assert old.register(3) is None and old.register_by_name("vendor_hyp_2") is None
    reg3 = new.register(3)
    assert reg3 is not None and reg3.valid_mask == 0x3 and reg3.default == 0
    for profile in PROFILES.values():
        defaults = [profile.register(i).default for i in range(3)]  # type: ignore[union-attr]
        assert defaults == [0x1, 0x1, 0x3]  # [obs] both kernels (section 10)
        for reg in profile.bitmap_registers:
            assert reg.reg_id == 0x6030_0000_0016_0000 + reg.number
            assert profile.register_by_name(reg.name) is reg


def test_same_on_every_profile() -> None:
    for profile in PROFILES.values():
        # No filter, nothing reserved in it: 6.1 refuses every install first.
        reserved = ((0x80000000, 0x8000FFFF), (0xC0000000, 0xC000FFFF))
        assert profile.reserved_ranges == (reserved if profile.has_filter else ())
        assert profile.smccc_version == 0x10001
        assert profile.filter_actions == 3
        assert profile.reserved_insertion == "lazy"
        assert profile.observed


def test_profiles_are_frozen_data() -> None:
    profile = PROFILES["6.12"]
    with pytest.raises(AttributeError):
        profile.name = "x"  # type: ignore[misc]
    assert set(KernelProfile._fields) >= {
        "reserved_ranges",
        "zero_zero_errno",
        "psci_version_default",
        "psci_versions_accepted",
        "bitmap_registers",
    }


def test_lab_host() -> None:
    assert (LAB_HOST.wa1_answer, LAB_HOST.wa2_answer) == (1, -1)  # [obs 3.6]
