"""A branch float's levels: what may be kept, which apply to a float, and when a float is low."""

from __future__ import annotations

import pytest

from services.ledger.domain import NO_LEVELS, Levels, LevelsError, below_reorder_level, check_levels, levels_for
from shared.contracts.money import Money


def kes(major: int) -> Money:
    return Money("KES", major * 100)


def usd(major: int) -> Money:
    return Money("USD", major * 100)


@pytest.mark.parametrize(
    "levels",
    [
        NO_LEVELS,
        Levels(reorder_level=kes(20_000)),
        Levels(imprest=kes(100_000)),
        Levels(kes(20_000), kes(100_000)),
        Levels(kes(50_000), kes(50_000)),  # topping up to the reorder level itself is allowed
    ],
)
def test_levels_a_float_can_keep(levels: Levels) -> None:
    assert check_levels(levels) == levels


def test_reorder_level_and_imprest_are_one_currency() -> None:
    with pytest.raises(LevelsError, match="currency"):
        check_levels(Levels(kes(20_000), usd(1_000)))


def test_the_imprest_is_not_below_the_reorder_level() -> None:
    with pytest.raises(LevelsError, match="below the reorder level"):
        check_levels(Levels(kes(20_000), Money("KES", 1_999_999)))


def test_only_levels_in_the_floats_currency_apply() -> None:
    levels = Levels(kes(20_000), kes(100_000))
    assert levels_for(levels, "KES") == levels
    assert levels_for(levels, "USD") == NO_LEVELS
    assert levels_for(Levels(imprest=kes(1)), "KES") == Levels(imprest=kes(1))
    assert levels_for(NO_LEVELS, "KES") == NO_LEVELS


def test_a_float_is_below_its_reorder_level_only_strictly_and_only_with_one_set() -> None:
    assert below_reorder_level(1_999_999, kes(20_000))
    assert not below_reorder_level(2_000_000, kes(20_000))
    assert not below_reorder_level(5_000_000, kes(20_000))
    assert below_reorder_level(-1, kes(1))  # never expected, yet a negative float is low too
    assert not below_reorder_level(0, None)
