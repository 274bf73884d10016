"""Approval rules: the policy, tiers, who may act on a step, and the invariants. Pure, no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from shared.contracts.money import CURRENCY_EXPONENTS, Money
from shared.contracts.roles import GLOBAL_ROLES, REGION_ROLES, ROLES

APPROVER_ROLES = frozenset({"branch_manager", "regional_manager", "finance", "cfo", "admin"})


@dataclass(frozen=True)
class Tier:
    """A band of amounts (major units of the requisition's currency) and its chain of roles."""

    name: str
    up_to_major: int | None  # None: no upper bound
    chain: tuple[str, ...]


@dataclass(frozen=True)
class Policy:
    """Tiers by origin, approver limits by role (None: unlimited), SLAs in hours."""

    version: int
    tiers: Mapping[str, tuple[Tier, ...]]
    limits: Mapping[str, int | None]
    sla_hours: int = 24
    urgent_sla_hours: int = 2

    def tier_for(self, origin: str, amount: Money) -> Tier:
        """The first tier whose bound covers the amount (bounds are inclusive)."""
        scale = 10 ** CURRENCY_EXPONENTS[amount.currency]
        for tier in self.tiers[origin]:
            if tier.up_to_major is None or amount.minor_units <= tier.up_to_major * scale:
                return tier
        raise ValueError("a policy must end with an unbounded tier")

    def covers(self, role: str, amount: Money) -> bool:
        """Whether a role's approval limit covers the amount."""
        if role not in self.limits:
            return False
        limit = self.limits[role]
        return limit is None or amount.minor_units <= limit * 10 ** CURRENCY_EXPONENTS[amount.currency]

    def sla(self, urgent: bool) -> timedelta:
        return timedelta(hours=self.urgent_sla_hours if urgent else self.sla_hours)

    def to_dict(self) -> dict[str, Any]:
        """The stored and wire form."""
        return {
            "tiers": [
                {"origin": origin, "name": t.name, "up_to_major": t.up_to_major, "chain": list(t.chain)}
                for origin, tiers in self.tiers.items()
                for t in tiers
            ],
            "limits": dict(self.limits),
            "sla_hours": self.sla_hours,
            "urgent_sla_hours": self.urgent_sla_hours,
        }


class PolicyError(ValueError):
    """A policy that would route money badly; the message names the problem."""


def policy_from_dict(version: int, data: Mapping[str, Any]) -> Policy:
    """Build and validate a policy from its stored or submitted form."""
    tiers: dict[str, list[Tier]] = {}
    for raw in data["tiers"]:
        tiers.setdefault(raw["origin"], []).append(Tier(raw["name"], raw["up_to_major"], tuple(raw["chain"])))
    policy = Policy(
        version=version,
        tiers={origin: tuple(sorted(ts, key=lambda t: t.name)) for origin, ts in tiers.items()},
        limits=dict(data["limits"]),
        sla_hours=int(data.get("sla_hours", 24)),
        urgent_sla_hours=int(data.get("urgent_sla_hours", 2)),
    )
    validate_policy(policy)
    return policy


def validate_policy(policy: Policy) -> None:
    """Refuse policies with gaps, unknown roles, repeated roles, or a T4 without the CFO."""
    if set(policy.tiers) != {"branch", "head_office"}:
        raise PolicyError("tiers are needed for both origins: branch and head_office")
    unknown = set(policy.limits) - set(ROLES)
    if unknown:
        raise PolicyError(f"limits name unknown roles: {sorted(unknown)}")
    for origin, tiers in policy.tiers.items():
        names = [t.name for t in tiers]
        if names != [f"T{i}" for i in range(1, len(tiers) + 1)]:
            raise PolicyError(f"{origin}: tiers must be T1..Tn without gaps")
        bounds = [t.up_to_major for t in tiers]
        if bounds[-1] is not None or any(b is None for b in bounds[:-1]):
            raise PolicyError(f"{origin}: only the last tier is unbounded")
        if any(a >= b for a, b in pairwise(b for b in bounds if b is not None)):
            raise PolicyError(f"{origin}: tier bounds must increase")
        for tier in tiers:
            if len(set(tier.chain)) != len(tier.chain):
                raise PolicyError(f"{origin} {tier.name}: a role appears twice in the chain")
            bad = set(tier.chain) - APPROVER_ROLES
            if bad:
                raise PolicyError(f"{origin} {tier.name}: {sorted(bad)} cannot approve")
            missing = [r for r in tier.chain if r not in policy.limits]
            if missing:
                raise PolicyError(f"{origin} {tier.name}: no approval limit for {missing}")
        if "cfo" not in tiers[-1].chain:
            raise PolicyError(f"{origin}: the top tier must need the CFO")


# The earlier system's bands: T1 up to 10,000; T2 up to 50,000; T3 up to 250,000; T4 above
# (needs the CFO). Chains climb so that each role's limit covers its tier's band.
DEFAULT_POLICY = Policy(
    version=1,
    tiers={
        "branch": (
            Tier("T1", 10_000, ("branch_manager",)),
            Tier("T2", 50_000, ("branch_manager", "regional_manager")),
            Tier("T3", 250_000, ("regional_manager", "finance")),
            Tier("T4", None, ("finance", "cfo")),
        ),
        "head_office": (
            Tier("T1", 10_000, ("finance",)),
            Tier("T2", 50_000, ("finance",)),
            Tier("T3", 250_000, ("finance", "cfo")),
            Tier("T4", None, ("finance", "cfo")),
        ),
    },
    limits={
        "branch_manager": 50_000,
        "regional_manager": 250_000,
        "finance": 5_000_000,
        "cfo": None,
        "admin": None,
    },
)


@dataclass(frozen=True)
class Person:
    """An approver as the directory knows them."""

    user_id: str
    username: str
    roles: frozenset[str]
    branch_ids: frozenset[str]
    region_ids: frozenset[str]
    active: bool = True


@dataclass(frozen=True)
class CaseFacts:
    """What the rules need to know about a case."""

    requester_id: str
    branch_id: str
    region_id: str
    amount: Money
    previous_deciders: frozenset[str] = field(default_factory=frozenset)


def in_scope(person: Person, role: str, facts: CaseFacts) -> bool:
    """Whether a person holds ``role`` with a scope that covers the case's branch."""
    if not person.active or role not in person.roles:
        return False
    if role in GLOBAL_ROLES:
        return True
    if role in REGION_ROLES:
        return facts.region_id in person.region_ids
    return facts.branch_id in person.branch_ids


def eligible(people: Iterable[Person], role: str, facts: CaseFacts, policy: Policy) -> list[Person]:
    """Who could act as ``role`` on this case: in scope, not the requester, not already in
    the chain, and with a limit that covers the amount."""
    if not policy.covers(role, facts.amount):
        return []
    return [
        p
        for p in people
        if in_scope(p, role, facts) and p.user_id != facts.requester_id and p.user_id not in facts.previous_deciders
    ]


@dataclass(frozen=True)
class Refusal:
    """Why an actor may not decide: a rule name (machine-readable) and an HTTP status."""

    rule: str
    status: int
    detail: str


def check_decider(
    actor: Person, step_role: str, admin_may_act: bool, facts: CaseFacts, policy: Policy
) -> tuple[str, Refusal | None]:
    """The role the actor acts as, or the first invariant the attempt breaks."""
    if actor.user_id == facts.requester_id:
        return "", Refusal("self-approval", 403, "Nobody may decide on their own requisition.")
    if actor.user_id in facts.previous_deciders:
        return "", Refusal("approver-already-in-chain", 403, "You already decided an earlier step of this chain.")
    if in_scope(actor, step_role, facts):
        acting = step_role
    elif admin_may_act and "admin" in actor.roles:
        acting = "admin"
    else:
        return "", Refusal(
            "not-the-expected-approver", 403, f"This step waits for a {step_role} whose scope covers the branch."
        )
    if not policy.covers(acting, facts.amount):
        limit = policy.limits.get(acting)
        return "", Refusal(
            "approver-limit-exceeded", 422, f"The {acting} approval limit ({limit:,} major units) is below the amount."
        )
    return acting, None


def fast_track_allowed(urgent: bool, tier: Tier, policy: Policy) -> bool:
    """Urgent requests skip to the final approver, never in the top (CFO) tier."""
    top = max(len(ts) for ts in policy.tiers.values())
    return urgent and tier.name != f"T{top}"


def due(activated_at: datetime, urgent: bool, policy: Policy) -> datetime:
    """When a step becomes overdue."""
    return activated_at + policy.sla(urgent)


def people_from(rows: Sequence[Any]) -> list[Person]:
    """Directory rows (anything with the attributes) as people."""
    return [
        Person(r.user_id, r.username, frozenset(r.roles), frozenset(r.branch_ids), frozenset(r.region_ids), r.active)
        for r in rows
    ]
