"""Approval use cases; each runs inside the unit of work its task adapter opened."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.approval import domain
from services.approval.domain import (
    FINAL,
    LIVE_STEPS,
    AttemptOutcome,
    CaseFacts,
    CaseStatus,
    Decision,
    Person,
    Policy,
    StepKind,
    StepOutcome,
    StepStatus,
)
from services.approval.models import ApprovalCase, ApprovalStep, Approver, DecisionAttempt, PolicyVersion
from services.approval.schemas import case_body, inbox_item
from shared.contracts import catalog
from shared.contracts.envelope import SYSTEM_ACTOR, Actor, Envelope
from shared.contracts.money import Money
from shared.contracts.permissions import Action, may
from shared.contracts.roles import can_see_branch
from shared.db.types import utcnow
from shared.db.uow import UnitOfWork
from shared.messaging.errors import Conflict, DomainError, Forbidden, NotFound, ok_reply

# -- policy ---------------------------------------------------------------------------


def current_policy(session: Session) -> Policy:
    """The policy in force (the newest version); version 1 is the built-in default."""
    row = session.scalar(select(PolicyVersion).order_by(PolicyVersion.version.desc()).limit(1))
    if row is None:
        return domain.DEFAULT_POLICY
    return domain.policy_from_dict(row.version, row.policy)


def policy_version(session: Session, version: int) -> Policy:
    """A policy by version: a case is decided under the version it was routed with."""
    if version == domain.DEFAULT_POLICY.version:
        row = session.get(PolicyVersion, version)
        return domain.DEFAULT_POLICY if row is None else domain.policy_from_dict(version, row.policy)
    row = session.get(PolicyVersion, version)
    if row is None:
        raise Conflict(f"policy version {version} is unknown")
    return domain.policy_from_dict(version, row.policy)


def set_policy(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> dict[str, Any]:
    """Store a new policy version (admin only); cases keep the version they were routed under."""
    if not may(envelope.actor, Action.SET_POLICY):
        raise Forbidden("Only an admin may change the approval policy.", code="admin-only")
    session = uow.session
    latest = session.scalar(select(PolicyVersion.version).order_by(PolicyVersion.version.desc()).limit(1))
    version = (latest or domain.DEFAULT_POLICY.version) + 1
    if latest is None:  # keep the default on record, so version 1 stays readable
        session.add(
            PolicyVersion(version=1, policy=domain.DEFAULT_POLICY.to_dict(), created_at=utcnow(), created_by="system")
        )
    try:
        policy = domain.policy_from_dict(version, payload)
    except domain.PolicyError as exc:
        raise DomainError(str(exc), code="invalid-policy") from exc
    session.add(
        PolicyVersion(version=version, policy=policy.to_dict(), created_at=utcnow(), created_by=envelope.actor.username)
    )
    return ok_reply(201, {"version": version, **policy.to_dict()})


# -- the directory --------------------------------------------------------------------


def on_user_directory_updated(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    """Keep the read model of who holds which role where."""
    row = uow.session.get(Approver, payload["user_id"], with_for_update=True)
    if row is None:
        row = Approver(user_id=payload["user_id"])
        uow.session.add(row)
    row.username = payload["username"]
    row.full_name = payload["full_name"]
    row.roles = sorted(payload["roles"])
    row.branch_ids = sorted(payload["branch_ids"])
    row.region_ids = sorted(payload["region_ids"])
    row.active = payload["active"]
    row.updated_at = utcnow()


class _Directory:
    """The approvers routing considers, kept per process and reloaded only when the directory
    changed (one small query per use instead of the whole directory as ORM objects)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stamp: tuple[Any, ...] | None = None
        self._people: list[Person] = []

    def people(self, session: Session) -> list[Person]:
        stamp = tuple(session.execute(select(func.count(), func.max(Approver.updated_at)).select_from(Approver)).one())
        with self._lock:
            if stamp != self._stamp:
                rows = session.scalars(select(Approver).where(Approver.active.is_(True))).all()
                # Only people who can approve matter to routing.
                self._people = [p for p in domain.people_from(rows) if p.roles & domain.APPROVER_ROLES]
                self._stamp = stamp
            return self._people


_directory = _Directory()


def _people(session: Session) -> list[Person]:
    return _directory.people(session)


def _actor_person(actor: Actor) -> Person:
    return Person(actor.user_id, actor.username, actor.roles, actor.branch_ids, actor.region_ids)


# -- routing --------------------------------------------------------------------------


def _locked_case(session: Session, requisition_id: Any) -> ApprovalCase | None:
    """A requisition's case, locked for this transaction (None: not routed yet)."""
    return session.scalar(select(ApprovalCase).where(ApprovalCase.requisition_id == requisition_id).with_for_update())


def _current(case: ApprovalCase) -> list[ApprovalStep]:
    """The steps of the case's current revision."""
    return [s for s in case.steps if s.revision == case.revision]


def _facts(case: ApprovalCase) -> CaseFacts:
    deciders = frozenset(s.decided_by for s in _current(case) if s.decided_by and s.status == StepStatus.DONE)
    return CaseFacts(
        case.requester_id, case.branch_id, case.region_id, Money(case.currency, case.amount_minor), deciders
    )


def _plan_steps(case: ApprovalCase, chain: tuple[str, ...], kind: StepKind, first_seq: int = 1) -> None:
    for seq, role in enumerate(chain, start=first_seq):
        case.steps.append(
            ApprovalStep(revision=case.revision, seq=seq, role=role, kind=kind, status=StepStatus.WAITING, comment="")
        )


def _escalate(
    uow: UnitOfWork, envelope: Envelope, case: ApprovalCase, step: ApprovalStep, *, to: str, why: str
) -> None:
    step.escalation_reason = why
    uow.emit(
        envelope.caused(
            catalog.APPROVAL_ESCALATED.name,
            {
                "requisition_id": str(case.requisition_id),
                "case_id": str(case.id),
                "step": step.seq,
                "role": step.role,
                "escalated_to": to,
                "reason": why,
            },
        )
    )


def _advance(uow: UnitOfWork, envelope: Envelope, case: ApprovalCase, policy: Policy, now: datetime) -> bool:
    """Activate the next step that someone can take; returns False when the chain is done.

    A step whose role has no eligible holder (out of scope, the requester, already in the
    chain, or a limit below the amount) escalates to the next step's approver; when no step
    is left, to an admin. Each escalation is recorded and announced.
    """
    waiting = [s for s in _current(case) if s.status == StepStatus.WAITING]
    people = _people(uow.session)
    facts = _facts(case)
    for index, step in enumerate(waiting):
        if domain.eligible(people, step.role, facts, policy):
            break
        if index + 1 < len(waiting):
            step.status = StepStatus.SKIPPED
            nxt = waiting[index + 1].role
            why = f"no eligible {step.role} for this requisition; escalated to {nxt}"
            _escalate(uow, envelope, case, step, to=nxt, why=why)
            continue
        step.admin_may_act = True
        _escalate(
            uow,
            envelope,
            case,
            step,
            to="admin",
            why=f"no eligible {step.role} for this requisition; escalated to admin",
        )
        break
    else:
        return False
    step.status = StepStatus.ACTIVE
    step.activated_at = now
    step.due_at = domain.due(now, case.urgent, policy)
    return True


def on_requisition_submitted(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    """Route a (re)submitted requisition: pick the tier, build the chain, activate step one."""
    session = uow.session
    case = _locked_case(session, payload["requisition_id"])
    policy = current_policy(session)
    routing = domain.route(_submission(payload), None if case is None else case.revision, policy)
    if isinstance(routing, domain.Refusal):
        return  # this submission was routed already
    now = utcnow()
    case = _case_for_revision(session, case, payload["requisition_id"])
    _take_submission(case, payload)
    _open_revision(case, routing, payload["revision"], now)
    session.flush()
    _advance(uow, envelope, case, policy, now)
    uow.emit(_case_opened(envelope, case))


def _submission(payload: dict[str, Any]) -> domain.Submission:
    return domain.Submission(payload["revision"], payload["origin"], payload["amount"], payload["urgent"])


def _case_for_revision(session: Session, case: ApprovalCase | None, requisition_id: Any) -> ApprovalCase:
    """The case a new revision is routed on: a new one, or this one with every live step voided."""
    if case is None:
        case = ApprovalCase(id=uuid.uuid4(), requisition_id=requisition_id, steps=[])
        session.add(case)
        return case
    for step in case.steps:
        if step.status in LIVE_STEPS:
            step.status = StepStatus.VOID
    return case


def _take_submission(case: ApprovalCase, payload: dict[str, Any]) -> None:
    """Copy what approvers see of the submitted requisition onto its case."""
    amount: Money = payload["amount"]
    case.voucher_no = payload["voucher_no"]
    case.branch_id = payload["branch_id"]
    case.region_id = payload["region_id"]
    case.origin = payload["origin"]
    case.requester_id = payload["requester_id"]
    case.requester_name = payload["requester_name"]
    case.amount_minor = amount.minor_units
    case.currency = amount.currency
    case.category = payload["category"]
    case.urgent = payload["urgent"]
    case.urgency_reason = payload["urgency_reason"]
    case.payee = dict(payload["payee"]) if payload["payee"] else None
    case.reused_receipts = list(payload["reused_receipts"])


def _open_revision(case: ApprovalCase, routing: domain.Routing, revision: int, now: datetime) -> None:
    """Open the case for a new revision, routed as decided, with its chain planned."""
    case.tier = routing.tier
    case.policy_version = routing.policy_version
    case.revision = revision
    case.status = CaseStatus.OPEN  # a new revision opens afresh (domain.TRANSITIONS)
    case.opened_at = now
    case.closed_at = None
    case.fast_track = routing.fast_track
    _plan_steps(case, routing.chain, routing.kind)


def _case_opened(envelope: Envelope, case: ApprovalCase) -> Envelope:
    """``ApprovalCaseOpened``: the tier, the chain and any escalation routing already made."""
    steps = _current(case)
    return envelope.caused(
        catalog.APPROVAL_CASE_OPENED.name,
        {
            "requisition_id": str(case.requisition_id),
            "case_id": str(case.id),
            "tier": case.tier,
            "policy_version": case.policy_version,
            "fast_track": case.fast_track,
            "chain": [s.role for s in steps],
            "escalations": [s.escalation_reason for s in steps if s.escalation_reason],
        },
    )


# -- decisions ------------------------------------------------------------------------


def _visible_case(session: Session, requisition_id: uuid.UUID, actor: Actor) -> ApprovalCase:
    """The case, locked, when the actor's scope covers its branch (an admin's covers all)."""
    case = _locked_case(session, requisition_id)
    if case is None or not can_see_branch(actor, case.branch_id, case.region_id):
        raise NotFound("No approval case for this requisition.")
    return case


def _active_step(case: ApprovalCase) -> ApprovalStep | None:
    return next((s for s in _current(case) if s.status == StepStatus.ACTIVE), None)


def _decision_facts(case: ApprovalCase) -> domain.DecisionFacts:
    step = _active_step(case)
    active = (
        None
        if step is None
        else domain.StepFacts(step.role, StepKind(step.kind), bool(step.admin_may_act or step.sla_escalated))
    )
    return domain.DecisionFacts(CaseStatus(case.status), active, _facts(case))


def _decider_payload(case: ApprovalCase, envelope: Envelope, comment: str) -> dict[str, Any]:
    return {
        "requisition_id": str(case.requisition_id),
        "case_id": str(case.id),
        "approver_id": envelope.actor.user_id,
        "approver_name": envelope.actor.username,
        "comment": comment,
    }


def record_decision(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> dict[str, Any]:
    """Approve, reject, request changes, confirm or revert an urgency, under the invariants."""
    session = uow.session
    case = _visible_case(session, payload["requisition_id"], envelope.actor)
    policy = policy_version(session, case.policy_version)
    attempt = domain.Attempt(_actor_person(envelope.actor), Decision(payload["decision"]), payload["comment"])
    verdict = domain.decide(_decision_facts(case), attempt, policy)
    if isinstance(verdict, domain.Refusal):
        raise DomainError(verdict.detail, code=verdict.rule, status=verdict.status)
    _carry_out(uow, envelope, payload, case, policy, verdict)
    return ok_reply(200, case_body(case))


def _carry_out(
    uow: UnitOfWork,
    envelope: Envelope,
    payload: dict[str, Any],
    case: ApprovalCase,
    policy: Policy,
    accepted: domain.Accepted,
) -> None:
    """Record an accepted decision on the active step, then do what it does to the case."""
    now = utcnow()
    step = _decided_step(case)
    _record_on_step(step, envelope.actor, accepted, now)
    if step.sla_escalated:  # decided at last: the overdue alert is over
        note = f"Decided by {envelope.actor.username}."
        clear = {"kind": "approval_overdue", "subject": f"requisition:{case.requisition_id}", "note": note}
        uow.emit(envelope.caused(catalog.ALERT_CLEARED.name, clear))
    _record_attempt(uow.session, envelope, payload, outcome=AttemptOutcome.ACCEPTED)
    base = _decider_payload(case, envelope, accepted.comment)
    if accepted.closes_as is not None:
        _close(case, accepted.closes_as, now)
        uow.emit(_closed_by_decision(envelope, accepted.closes_as, base, now, payload["deadline_hours"]))
    elif accepted.completes_as is not None:
        _complete_step(
            uow, envelope, case, step, policy, now, acting=accepted.acting, outcome=accepted.completes_as, base=base
        )
    else:
        _revert_urgency(uow, envelope, case, step, policy, now)
        uow.emit(envelope.caused(catalog.URGENCY_REVERTED.name, {**base, "chain": [s.role for s in _live(case)]}))


def _decided_step(case: ApprovalCase) -> ApprovalStep:
    """The active step an accepted decision is on (``domain.decide`` accepts none without one)."""
    return next(s for s in _current(case) if s.status == StepStatus.ACTIVE)


def _record_on_step(step: ApprovalStep, actor: Actor, accepted: domain.Accepted, now: datetime) -> None:
    step.decided_by = actor.user_id
    step.decided_by_name = actor.username
    step.acted_as = accepted.acting
    step.decision = accepted.decision
    step.decided_at = now
    step.comment = accepted.comment
    step.status = StepStatus.DONE


def _closed_by_decision(
    envelope: Envelope, status: CaseStatus, base: dict[str, Any], now: datetime, deadline_hours: int
) -> Envelope:
    """``RequisitionRejected``, or ``ChangesRequested`` with the deadline for the changes."""
    if status == CaseStatus.REJECTED:
        return envelope.caused(catalog.REQUISITION_REJECTED.name, base)
    deadline = now + timedelta(hours=deadline_hours)
    return envelope.caused(catalog.CHANGES_REQUESTED.name, {**base, "deadline": deadline.isoformat()})


def _live(case: ApprovalCase) -> list[ApprovalStep]:
    return [s for s in _current(case) if s.status in LIVE_STEPS]


def _revert_urgency(
    uow: UnitOfWork, envelope: Envelope, case: ApprovalCase, step: ApprovalStep, policy: Policy, now: datetime
) -> None:
    """Back to the tier's normal chain. The reverter declined the fast track only; they may
    still approve in the normal chain, so their urgency step is not a decision on the money."""
    case.fast_track = False
    tier = next(t for t in policy.tiers[case.origin] if t.name == case.tier)
    _plan_steps(case, tier.chain, StepKind.APPROVE, first_seq=len(_current(case)) + 1)
    step.status = StepStatus.VOID
    uow.session.flush()
    _advance(uow, envelope, case, policy, now)


def _complete_step(
    uow: UnitOfWork,
    envelope: Envelope,
    case: ApprovalCase,
    step: ApprovalStep,
    policy: Policy,
    now: datetime,
    *,
    acting: str,
    outcome: StepOutcome,
    base: dict[str, Any],
) -> None:
    """One approval (or urgency confirmation); the last one approves the requisition."""
    uow.emit(
        envelope.caused(
            catalog.APPROVAL_STEP_COMPLETED.name,
            {**base, "step": step.seq, "role": acting, "decision": outcome},
        )
    )
    uow.session.flush()
    if _advance(uow, envelope, case, policy, now):
        return
    _close(case, CaseStatus.APPROVED, now)
    uow.emit(_requisition_approved(envelope, case, base, now))


def _requisition_approved(envelope: Envelope, case: ApprovalCase, base: dict[str, Any], now: datetime) -> Envelope:
    """``RequisitionApproved``: what the ledger and payment need, with everyone who approved."""
    approvers = [s.decided_by for s in _current(case) if s.status == StepStatus.DONE]
    return envelope.caused(
        catalog.REQUISITION_APPROVED.name,
        {
            **base,
            "voucher_no": case.voucher_no,
            "branch_id": case.branch_id,
            "region_id": case.region_id,
            "requester_id": case.requester_id,
            "approver_ids": approvers,
            "amount": {"minor_units": case.amount_minor, "currency": case.currency},
            "category": case.category,
            "payee": case.payee,
            "approved_at": now.isoformat(),
        },
    )


def _close(case: ApprovalCase, status: CaseStatus, now: datetime) -> None:
    case.status = domain.transition(case.status, status)
    case.closed_at = now
    for step in _current(case):
        if step.status in LIVE_STEPS:
            step.status = StepStatus.VOID


def _record_attempt(
    session: Session,
    envelope: Envelope,
    payload: dict[str, Any],
    *,
    outcome: AttemptOutcome,
    rule: str = "",
    detail: str = "",
) -> None:
    session.add(
        DecisionAttempt(
            requisition_id=payload["requisition_id"],
            actor_id=envelope.actor.user_id,
            actor_name=envelope.actor.username,
            decision=payload["decision"],
            outcome=outcome,
            rule=rule,
            detail=detail,
            at=utcnow(),
        )
    )


def record_refused_decision(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any], exc: DomainError) -> None:
    """Every refused attempt is kept, with the rule that refused it."""
    _record_attempt(uow.session, envelope, payload, outcome=AttemptOutcome.REFUSED, rule=exc.code, detail=exc.detail)


# -- closing and timers ---------------------------------------------------------------


def on_requisition_closed(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    """A cancelled or expired requisition closes its case; nothing waits any more."""
    case = _locked_case(uow.session, payload["requisition_id"])
    if case is None or case.status in FINAL:
        return
    expired = envelope.type == catalog.REQUISITION_EXPIRED.name
    _close(case, CaseStatus.EXPIRED if expired else CaseStatus.CANCELLED, utcnow())


def on_receipt_attached(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> None:
    """Flag, for approvers, a receipt that was already used on another requisition."""
    case = _locked_case(uow.session, payload["requisition_id"])
    if case is not None and payload["reused_in"]:
        case.reused_receipts = sorted({*(case.reused_receipts or []), *payload["reused_in"]})


def _overdue_alert(case: ApprovalCase, why: str) -> dict[str, Any]:
    return {
        "kind": "approval_overdue",
        "severity": "warning",
        "message": f"{case.voucher_no}: {why}; an admin may now decide it too.",
        "subject": f"requisition:{case.requisition_id}",
        "requisition_id": str(case.requisition_id),
        "branch_id": case.branch_id,
        "region_id": case.region_id,
        "source": "approval",
    }


def escalate_overdue(uow: UnitOfWork, envelope: Envelope, payload: dict[str, Any]) -> dict[str, Any]:
    """Steps past their SLA escalate: an admin may now act too, and an event says so."""
    now = payload["as_of"] or utcnow()
    overdue = uow.session.scalars(
        select(ApprovalStep)
        .where(
            ApprovalStep.status == StepStatus.ACTIVE, ApprovalStep.sla_escalated.is_(False), ApprovalStep.due_at < now
        )
        .with_for_update(skip_locked=True)
    ).all()
    system = envelope if envelope.actor.user_id == "system" else envelope.caused(envelope.type, {}, SYSTEM_ACTOR)
    for step in overdue:
        case = uow.session.get_one(ApprovalCase, step.case_id)
        step.sla_escalated = True
        hours = (
            round((step.due_at - step.activated_at).total_seconds() / 3600) if step.due_at and step.activated_at else 0
        )
        why = f"step {step.seq} ({step.role}) overdue: SLA of {hours}h exceeded"
        _escalate(uow, system, case, step, to="admin", why=why)
        uow.emit(system.caused(catalog.ALERT_RAISED.name, _overdue_alert(case, why)))
    return {"escalated": len(overdue)}


# -- queries --------------------------------------------------------------------------


# -- read models (shared.messaging.snapshots) ------------------------------------------


def _inbox_facts(case: ApprovalCase, policy: Policy) -> dict[str, Any] | None:
    """Who may decide the active step, as the gateway's inbox query needs it (None: nobody now)."""
    active = [s for s in case.steps if s.status == StepStatus.ACTIVE] if case.status == CaseStatus.OPEN else []
    if not active:
        return None
    step, facts = active[0], _facts(case)
    return {
        "step_role": step.role,
        "step_role_covers": policy.covers(step.role, facts.amount),
        "admin_may_act": step.admin_may_act or step.sla_escalated,
        "admin_covers": policy.covers("admin", facts.amount),
        "due_at": step.due_at.isoformat() if step.due_at else None,
        "deciders": sorted(facts.previous_deciders),
        "item": inbox_item(case, step),
    }


def case_snapshots(session: Session, ids: Sequence[Any]) -> list[dict[str, Any]]:
    """Approval cases as the gateway projects them: the body, the scope, and the inbox facts."""
    policies: dict[int, Policy] = {}
    snapshots = []
    for case in session.scalars(select(ApprovalCase).where(ApprovalCase.id.in_(ids))):
        policy = policies.get(case.policy_version) or policies.setdefault(
            case.policy_version, policy_version(session, case.policy_version)
        )
        snapshots.append(
            {
                "id": str(case.id),
                "requisition_id": str(case.requisition_id),
                "branch_id": case.branch_id,
                "region_id": case.region_id,
                "requester_id": case.requester_id,
                "status": case.status,
                "inbox": _inbox_facts(case, policy),
                "body": case_body(case),
            }
        )
    return snapshots


def policy_snapshot(session: Session, _ids: Sequence[Any]) -> list[dict[str, Any]]:
    """The policy in force, as one document."""
    policy = current_policy(session)
    return [{"id": "policy", "body": {"version": policy.version, **policy.to_dict()}}]
