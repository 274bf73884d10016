from __future__ import annotations

import pytest

from services.approval.domain import tier_for
from shared.contracts.money import Money


@pytest.mark.parametrize(
    ("minor_units", "tier"),
    [
        (1, "T1"),
        (10_000_00, "T1"),
        (10_000_01, "T2"),
        (50_000_00, "T2"),
        (50_000_01, "T3"),
        (250_000_00, "T3"),
        (250_000_01, "T4"),
        (10**12, "T4"),
    ],
)
def test_tier_bounds_are_inclusive_in_major_units(minor_units: int, tier: str) -> None:
    assert tier_for("branch", Money("KES", minor_units)).name == tier


def test_bounds_follow_the_currency_exponent() -> None:
    assert tier_for("branch", Money("JPY", 10_000)).name == "T1"
    assert tier_for("branch", Money("JPY", 10_001)).name == "T2"


def test_t4_needs_the_cfo() -> None:
    assert tier_for("branch", Money("KES", 10**10)).chain[-1] == "cfo"
    assert "cfo" in tier_for("head_office", Money("KES", 10**10)).chain
