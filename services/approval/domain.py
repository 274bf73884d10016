"""Approval rules: the policy, tiers, the states, who may act on a step, what a decision does,
how a submission is routed, and the invariants. Pure, no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import pairwise
from typing import Any

from shared.contracts.money import CURRENCY_EXPONENTS, Money
from shared.contracts.permissions import Action, may, permission
from shared.contracts.roles import GLOBAL_ROLES, REGION_ROLES, ROLES
from shared.statemachine import InvalidTransition, StateMachine  # noqa: F401 - callers catch what transition() raises

APPROVER_ROLES: frozenset[str] = permission(Action.DECIDE_APPROVAL).roles


# -- states ---------------------------------------------------------------------------


class CaseStatus(StrEnum):
    """Where a case's current revision stands."""

    OPEN = "open"
    APPROVED = "approved"
    REJECTED = "rejected"
    CHANGES_REQUESTED = "changes_requested"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


C = CaseStatus
# The moves of one revision's case. Routing a newer revision is not a move: the case opens
# afresh whatever its previous revision came to (see ``route``).
TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    C.OPEN: frozenset({C.APPROVED, C.REJECTED, C.CHANGES_REQUESTED, C.CANCELLED, C.EXPIRED}),
    # Until the requester resubmits (a new revision) they may withdraw it, or it lapses.
    C.CHANGES_REQUESTED: frozenset({C.CANCELLED, C.EXPIRED}),
    C.APPROVED: frozenset(),
    C.REJECTED: frozenset(),
    C.CANCELLED: frozenset(),
    C.EXPIRED: frozenset(),
}


MACHINE = StateMachine("an approval case", CaseStatus, TRANSITIONS)
transition = MACHINE.move  # the new state, or InvalidTransition if the machine has no such edge
FINAL = MACHINE.final


class StepStatus(StrEnum):
    """Where a step of a chain stands."""

    WAITING = "waiting"
    ACTIVE = "active"
    DONE = "done"
    SKIPPED = "skipped"  # nobody eligible; escalated to the next step
    VOID = "void"  # the case closed, was resubmitted, or its urgency reverted first


LIVE_STEPS: frozenset[StepStatus] = frozenset({StepStatus.WAITING, StepStatus.ACTIVE})


class StepKind(StrEnum):
    """What a step asks for: an approval, or the confirmation of an urgent request's fast track."""

    APPROVE = "approve"
    URGENCY_CONFIRMATION = "urgency_confirmation"


class Decision(StrEnum):
    """What an approver may decide on the active step."""

    APPROVE = "approve"
    REJECT = "reject"
    REQUEST_CHANGES = "request_changes"
    CONFIRM_URGENCY = "confirm_urgency"
    REVERT_URGENCY = "revert_urgency"


URGENCY_DECISIONS: frozenset[Decision] = frozenset({Decision.CONFIRM_URGENCY, Decision.REVERT_URGENCY})
NEEDS_REASON: frozenset[Decision] = frozenset({Decision.REJECT, Decision.REQUEST_CHANGES})
# Decisions that close the case, and the status they close it with.
CLOSES_AS: Mapping[Decision, CaseStatus] = {
    Decision.REJECT: C.REJECTED,
    Decision.REQUEST_CHANGES: C.CHANGES_REQUESTED,
}


class StepOutcome(StrEnum):
    """How a completed step is announced (``ApprovalStepCompleted``)."""

    APPROVED = "approved"
    URGENCY_CONFIRMED = "urgency_confirmed"


# Decisions that complete their step and move the chain on, and how the step is announced.
COMPLETES_AS: Mapping[Decision, StepOutcome] = {
    Decision.APPROVE: StepOutcome.APPROVED,
    Decision.CONFIRM_URGENCY: StepOutcome.URGENCY_CONFIRMED,
}


class AttemptOutcome(StrEnum):
    """What became of an attempt to decide (every attempt is kept)."""

    ACCEPTED = "accepted"
    REFUSED = "refused"


class Rule(StrEnum):
    """The rule that refuses: for a decision, the problem type the API answers with."""

    CASE_CLOSED = "case-closed"
    NO_ACTIVE_STEP = "no-active-step"
    SELF_APPROVAL = "self-approval"
    APPROVER_ALREADY_IN_CHAIN = "approver-already-in-chain"
    NOT_THE_EXPECTED_APPROVER = "not-the-expected-approver"
    APPROVER_LIMIT_EXCEEDED = "approver-limit-exceeded"
    NOT_AN_URGENCY_STEP = "not-an-urgency-step"
    URGENCY_STEP = "urgency-step"
    REASON_REQUIRED = "reason-required"
    ALREADY_ROUTED = "already-routed"


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
    """Refuse policies with gaps, unknown roles, repeated roles, or a T4 without the CFO.

    The rules run in this order and the first one broken names the problem: both origins,
    known roles in the limits, then origin by origin its tier names, its bounds, each tier's
    chain, and its top tier.
    """
    _check_origins(policy.tiers)
    _check_limit_roles(policy.limits)
    for origin, tiers in policy.tiers.items():
        _check_origin_tiers(origin, tiers, policy.limits)


def _check_origins(tiers: Mapping[str, Sequence[Tier]]) -> None:
    """Both origins have tiers, and nothing else does."""
    if set(tiers) != {"branch", "head_office"}:
        raise PolicyError("tiers are needed for both origins: branch and head_office")


def _check_limit_roles(limits: Mapping[str, int | None]) -> None:
    """Limits name only roles the system knows."""
    unknown = set(limits) - set(ROLES)
    if unknown:
        raise PolicyError(f"limits name unknown roles: {sorted(unknown)}")


def _check_origin_tiers(origin: str, tiers: Sequence[Tier], limits: Mapping[str, int | None]) -> None:
    """One origin's tiers: names, bounds, every chain, then the top tier."""
    _check_tier_names(origin, tiers)
    _check_only_last_unbounded(origin, tiers)
    _check_bounds_increase(origin, tiers)
    for tier in tiers:
        _check_chain(origin, tier, limits)
    _check_top_tier_needs_cfo(origin, tiers)


def _check_tier_names(origin: str, tiers: Sequence[Tier]) -> None:
    """Tiers are named T1..Tn, in order, without gaps."""
    if [t.name for t in tiers] != [f"T{i}" for i in range(1, len(tiers) + 1)]:
        raise PolicyError(f"{origin}: tiers must be T1..Tn without gaps")


def _check_only_last_unbounded(origin: str, tiers: Sequence[Tier]) -> None:
    """Every tier but the last has an upper bound; the last has none."""
    bounds = [t.up_to_major for t in tiers]
    if bounds[-1] is not None or any(b is None for b in bounds[:-1]):
        raise PolicyError(f"{origin}: only the last tier is unbounded")


def _check_bounds_increase(origin: str, tiers: Sequence[Tier]) -> None:
    """Each bound is above the one before it."""
    bounds = [t.up_to_major for t in tiers if t.up_to_major is not None]
    if any(a >= b for a, b in pairwise(bounds)):
        raise PolicyError(f"{origin}: tier bounds must increase")


def _check_chain(origin: str, tier: Tier, limits: Mapping[str, int | None]) -> None:
    """A chain names each role once, only roles that approve, and only roles with a limit."""
    if len(set(tier.chain)) != len(tier.chain):
        raise PolicyError(f"{origin} {tier.name}: a role appears twice in the chain")
    bad = set(tier.chain) - APPROVER_ROLES
    if bad:
        raise PolicyError(f"{origin} {tier.name}: {sorted(bad)} cannot approve")
    missing = [r for r in tier.chain if r not in limits]
    if missing:
        raise PolicyError(f"{origin} {tier.name}: no approval limit for {missing}")


def _check_top_tier_needs_cfo(origin: str, tiers: Sequence[Tier]) -> None:
    """The top tier's chain includes the CFO."""
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
    """Why the rules refuse: a rule name (machine-readable), an HTTP status and the detail."""

    rule: str
    status: int
    detail: str


def check_decider(
    actor: Person, step_role: str, admin_may_act: bool, facts: CaseFacts, policy: Policy
) -> tuple[str, Refusal | None]:
    """The role the actor acts as, or the first invariant the attempt breaks."""
    if actor.user_id == facts.requester_id:
        return "", Refusal(Rule.SELF_APPROVAL, 403, "Nobody may decide on their own requisition.")
    if actor.user_id in facts.previous_deciders:
        return "", Refusal(Rule.APPROVER_ALREADY_IN_CHAIN, 403, "You already decided an earlier step of this chain.")
    if in_scope(actor, step_role, facts):
        acting = step_role
    elif admin_may_act and may(actor, Action.ACT_ON_ESCALATED_APPROVAL):
        acting = "admin"
    else:
        return "", Refusal(
            Rule.NOT_THE_EXPECTED_APPROVER, 403, f"This step waits for a {step_role} whose scope covers the branch."
        )
    if not policy.covers(acting, facts.amount):
        limit = policy.limits.get(acting)
        detail = (
            f"The policy gives the {acting} role no approval limit."
            if limit is None  # absent from the policy's limits: it may approve nothing
            else f"The {acting} approval limit ({limit:,} major units) is below the amount."
        )
        return "", Refusal(Rule.APPROVER_LIMIT_EXCEEDED, 422, detail)
    return acting, None


# -- deciding on a step ---------------------------------------------------------------


@dataclass(frozen=True)
class StepFacts:
    """The step waiting for a decision: its role, its kind, and whether an admin may act on it
    too (escalated: nobody was eligible, or it is overdue)."""

    role: str
    kind: StepKind
    admin_may_act: bool = False


@dataclass(frozen=True)
class DecisionFacts:
    """What deciding needs to know about a case: its status, its active step (None: no step
    is active), and the facts about the case itself."""

    status: CaseStatus
    step: StepFacts | None
    case: CaseFacts


@dataclass(frozen=True)
class Attempt:
    """An attempt to decide: who, what, and the comment as they wrote it."""

    actor: Person
    decision: Decision
    comment: str = ""


@dataclass(frozen=True)
class Accepted:
    """A decision the rules allow: the role the actor acts as, the comment to keep (stripped),
    and what it does to the case. ``closes_as``: the case closes so (reject, request changes);
    ``completes_as``: the step is done and the chain moves on (approve, confirm the urgency);
    neither: the urgency is reverted to the tier's normal chain."""

    acting: str
    decision: Decision
    comment: str
    closes_as: CaseStatus | None = None
    completes_as: StepOutcome | None = None


def decide(facts: DecisionFacts, attempt: Attempt, policy: Policy) -> Accepted | Refusal:
    """What an attempt to decide comes to: the first rule it breaks, in this order (the case is
    open, a step is active, who may decide it, the decision fits the step, a refusal has a
    reason), or what it does."""
    if facts.status != CaseStatus.OPEN:
        return Refusal(Rule.CASE_CLOSED, 409, f"The approval case is {facts.status}; nothing waits for a decision.")
    if facts.step is None:
        return Refusal(Rule.NO_ACTIVE_STEP, 409, "No step of this case is waiting for a decision.")
    comment = attempt.comment.strip()
    acting, refusal = check_decider(attempt.actor, facts.step.role, facts.step.admin_may_act, facts.case, policy)
    refusal = refusal or check_fits_step(facts.step.kind, attempt.decision) or check_reason(attempt.decision, comment)
    if refusal is not None:
        return refusal
    decision = attempt.decision
    return Accepted(acting, decision, comment, CLOSES_AS.get(decision), COMPLETES_AS.get(decision))


def check_fits_step(kind: StepKind, decision: Decision) -> Refusal | None:
    """An urgency step is confirmed or reverted, never approved; other steps have no urgency to decide."""
    urgency_step = kind == StepKind.URGENCY_CONFIRMATION
    if decision in URGENCY_DECISIONS and not urgency_step:
        return Refusal(Rule.NOT_AN_URGENCY_STEP, 409, "This step is not an urgency confirmation.")
    if decision == Decision.APPROVE and urgency_step:
        return Refusal(Rule.URGENCY_STEP, 409, "Confirm or revert the urgency of this request.")
    return None


def check_reason(decision: Decision, comment: str) -> Refusal | None:
    """A rejection or a request for changes says why."""
    if decision in NEEDS_REASON and not comment:
        return Refusal(Rule.REASON_REQUIRED, 422, "A reason is required.")
    return None


# -- routing a submission -------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    """What routing needs to know about a (re)submitted requisition."""

    revision: int
    origin: str
    amount: Money
    urgent: bool


@dataclass(frozen=True)
class Routing:
    """How a submission is routed: its tier under a policy version, whether it is fast-tracked,
    and the chain of steps to plan (all of one kind)."""

    tier: str
    policy_version: int
    fast_track: bool
    kind: StepKind
    chain: tuple[str, ...]


def route(submission: Submission, routed_revision: int | None, policy: Policy) -> Routing | Refusal:
    """The routing of a submission under the policy in force, or a refusal when this revision
    (or a newer one) was routed already (``routed_revision``: the case's, None: no case yet).

    A fast-tracked request waits only for its tier's final approver, who confirms the urgency;
    otherwise the tier's whole chain approves.
    """
    if routed_revision is not None and routed_revision >= submission.revision:
        return Refusal(Rule.ALREADY_ROUTED, 409, "This revision of the requisition was routed already.")
    tier = policy.tier_for(submission.origin, submission.amount)
    if fast_track_allowed(submission.urgent, tier, policy):
        return Routing(tier.name, policy.version, True, StepKind.URGENCY_CONFIRMATION, (tier.chain[-1],))
    return Routing(tier.name, policy.version, False, StepKind.APPROVE, tier.chain)


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
