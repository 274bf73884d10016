"""Approval rules: tiers by origin and amount. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from shared.contracts.money import CURRENCY_EXPONENTS, Money


@dataclass(frozen=True)
class Tier:
    """A band of amounts (in major units of the requisition's currency) and its chain of roles."""

    name: str
    up_to_major: int | None  # None: no upper bound
    chain: tuple[str, ...]


# The earlier system's defaults: T1 up to 10,000; T2 up to 50,000; T3 up to 250,000; T4 above.
DEFAULT_POLICY_VERSION = 1
DEFAULT_TIERS: dict[str, tuple[Tier, ...]] = {
    "branch": (
        Tier("T1", 10_000, ("branch_manager",)),
        Tier("T2", 50_000, ("branch_manager", "regional_manager")),
        Tier("T3", 250_000, ("branch_manager", "regional_manager", "finance")),
        Tier("T4", None, ("branch_manager", "regional_manager", "finance", "cfo")),
    ),
    "head_office": (
        Tier("T1", 10_000, ("finance",)),
        Tier("T2", 50_000, ("finance",)),
        Tier("T3", 250_000, ("finance", "cfo")),
        Tier("T4", None, ("finance", "cfo")),
    ),
}


def tier_for(origin: str, amount: Money, tiers: dict[str, tuple[Tier, ...]] = DEFAULT_TIERS) -> Tier:
    """The first tier whose bound covers the amount (bounds are inclusive)."""
    scale = 10 ** CURRENCY_EXPONENTS[amount.currency]
    for tier in tiers[origin]:
        if tier.up_to_major is None or amount.minor_units <= tier.up_to_major * scale:
            return tier
    raise ValueError("a policy must end with an unbounded tier")
