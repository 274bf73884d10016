"""Test data: actors, envelopes and the payloads of the main commands and events.

Every builder has sensible defaults, takes keyword overrides, and checks what it builds
against its contract in ``shared.contracts`` (the schema the consuming service loads it
with), so a test can never hand a use case a payload the real system would refuse as
malformed. Payloads are in their wire form (JSON-safe: strings for ids and times, money as
``{"minor_units", "currency"}``), as the gateway or another service would send them.

The organisation mirrors the gateway's demo one (``services.gateway.identity``): two regions,
a head office and some branches, and people whose actor is what the gateway would put in
an envelope for them (branch memberships, and the regions of those branches).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema

from services.approval.domain import DEFAULT_POLICY
from shared.contracts import instances
from shared.contracts import ledger as lg
from shared.contracts import payloads as p
from shared.contracts import payment as pm
from shared.contracts.catalog import EventSpec, TaskSpec
from shared.contracts.envelope import SYSTEM_ACTOR, Actor, Envelope
from shared.contracts.money import MoneySchema
from shared.messaging.outbox import check_contract

NAMESPACE = uuid.UUID("2a4c9d0e-5b1f-4e8a-9c3d-7f6e5d4c3b2a")


def stable_id(*parts: str) -> str:
    """A UUID (as the wire carries it) named by ``parts``: the same name, the same id."""
    return str(uuid.uuid5(NAMESPACE, ":".join(parts)))


def _valid(schema: type[Schema], payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` if its contract accepts it; a test that builds a malformed one fails here."""
    errors = instances.schema(schema).validate(payload)
    if errors:
        raise ValueError(f"{schema.__name__} refuses this payload: {errors}")
    return payload


def _iso(at: datetime | str) -> str:
    return at if isinstance(at, str) else at.isoformat()


# -- money ----------------------------------------------------------------------------


def money(major: int, currency: str = "KES") -> dict[str, Any]:
    """An amount in its wire form, given in major units (two-decimal currencies)."""
    return _valid(MoneySchema, {"minor_units": major * 100, "currency": currency})


def kes(major: int) -> dict[str, Any]:
    """Kenyan shillings, the demo organisation's currency."""
    return money(major, "KES")


# -- the organisation and its people --------------------------------------------------


@dataclass(frozen=True)
class Region:
    id: str
    code: str


@dataclass(frozen=True)
class Branch:
    """A branch as the gateway resolves it for a command (``services.gateway.branches``)."""

    id: str
    code: str
    region_id: str
    head_office: bool = False

    @property
    def origin(self) -> str:
        return "head_office" if self.head_office else "branch"


def a_region(code: str) -> Region:
    return Region(stable_id("region", code), code)


def a_branch(code: str, region: Region, *, head_office: bool = False) -> Branch:
    return Branch(stable_id("branch", code), code, region.id, head_office)


def an_actor(username: str, *roles: str, branches: Iterable[Branch] = (), user_id: str | None = None) -> Actor:
    """A user as the gateway puts them in an envelope: their roles, the branches they belong
    to and the regions of those branches (``identity.actor_of``)."""
    members = tuple(branches)
    return Actor(
        user_id=user_id or stable_id("user", username),
        username=username,
        roles=frozenset(roles),
        branch_ids=frozenset(b.id for b in members),
        region_ids=frozenset(b.region_id for b in members),
    )


NAI = a_region("NAI")
CST = a_region("CST")
HQ = a_branch("HQ", NAI, head_office=True)
NBO_CBD = a_branch("NBO-CBD", NAI)
NBO_WST = a_branch("NBO-WST", NAI)  # no branch manager
MSA_01 = a_branch("MSA-01", CST)

ALICE = an_actor("alice", "staff", branches=[NBO_CBD])
BOB = an_actor("bob", "branch_manager", branches=[NBO_CBD])
RITA = an_actor("rita", "regional_manager", branches=[NBO_CBD, NBO_WST])
TOM = an_actor("tom", "treasury", branches=[HQ])
FIONA = an_actor("fiona", "finance", branches=[HQ])
CAROL = an_actor("carol", "cfo", branches=[HQ])
ADMIN = an_actor("admin", "admin", branches=[HQ])
SAM = an_actor("sam", "staff", branches=[MSA_01])
MARY = an_actor("mary", "branch_manager", branches=[MSA_01])
WES = an_actor("wes", "staff", branches=[NBO_WST])
DEMO_PEOPLE = (ALICE, BOB, RITA, TOM, FIONA, CAROL, ADMIN, SAM, MARY, WES)


# -- envelopes ------------------------------------------------------------------------


def command(spec: TaskSpec, payload: dict[str, Any], actor: Actor) -> Envelope:
    """A command envelope as the gateway builds it (``Bus.send``): the task's name, the
    payload, the authenticated actor, a fresh message id; checked against its contract."""
    envelope = Envelope(type=spec.name, payload=payload, actor=actor)
    check_contract(envelope)
    return envelope


def event(spec: EventSpec, payload: dict[str, Any], actor: Actor = SYSTEM_ACTOR) -> Envelope:
    """An event as another service emits it (its actor: whoever caused it)."""
    envelope = Envelope(type=spec.name, payload=payload, actor=actor)
    check_contract(envelope)
    return envelope


def maintenance(spec: TaskSpec, as_of: datetime | None = None) -> Envelope:
    """A periodic task as beat sends it, with the clock injected when ``as_of`` is given."""
    return command(spec, _valid(p.MaintenancePayload, {"as_of": as_of and _iso(as_of)}), SYSTEM_ACTOR)


# -- requisitions ---------------------------------------------------------------------

CASH = {"name": "Shell Moi Avenue", "method": "cash"}


def bank_payee(account_ref: str = "0123-4567") -> dict[str, str]:
    """A bank payee; in tests a ``FAIL-*`` marker in the account shapes the provider's answer."""
    return {"name": "Davis & Shirtliff", "method": "bank", "account_ref": account_ref}


def requisition_fields(**overrides: Any) -> dict[str, Any]:
    """What a requester states: KES 1,250 of fuel for cash, not urgent."""
    fields = {
        "amount": kes(1_250),
        "category": "fuel",
        "purpose": "Generator diesel",
        "payee": CASH,
        "urgent": False,
        "urgency_reason": "",
    }
    return {**fields, **overrides}


def submission(branch: Branch = NBO_CBD, **overrides: Any) -> dict[str, Any]:
    """``requisition.submit_requisition``: the fields and the branch the gateway resolved."""
    resolved = {"branch_id": branch.id, "branch_code": branch.code, "region_id": branch.region_id}
    payload = {**resolved, "origin": branch.origin, "draft": False, **requisition_fields()}
    return _valid(p.SubmitRequisitionPayload, {**payload, **overrides})


def edit(requisition_id: Any, **overrides: Any) -> dict[str, Any]:
    """``requisition.update_requisition``: new values for an editable requisition."""
    return _valid(p.DraftEditPayload, {"id": str(requisition_id), **requisition_fields(**overrides)})


def requisition_action(requisition_id: Any, comment: str = "") -> dict[str, Any]:
    """``requisition.submit_draft`` and ``requisition.cancel_requisition``."""
    return _valid(p.RequisitionActionPayload, {"id": str(requisition_id), "comment": comment})


def receipt(requisition_id: Any, content: bytes = b"%PDF-1.7 fuel receipt", **overrides: Any) -> dict[str, Any]:
    """``requisition.attach_receipt``: a stored file, named by the SHA-256 of ``content``."""
    payload = {
        "id": str(requisition_id),
        "sha256": hashlib.sha256(content).hexdigest(),
        "filename": "receipt.pdf",
        "content_type": "application/pdf",
        "size": len(content),
    }
    return _valid(p.AttachReceiptPayload, {**payload, **overrides})


def cap(kind: str, limit: dict[str, Any], *, category: str | None = None, branch: Branch | None = None) -> dict:
    """One cap: ``category_per_requisition`` (with its category) or ``branch_monthly``."""
    return {"kind": kind, "category": category, "branch_id": branch.id if branch else None, "limit": limit}


def caps(*rules: dict[str, Any]) -> dict[str, Any]:
    """``requisition.set_caps``: the caps that replace those in force."""
    return _valid(p.SetCapsPayload, {"caps": list(rules)})


def requisition_submitted(
    requester: Actor = ALICE, branch: Branch = NBO_CBD, seq: int = 1, **overrides: Any
) -> dict[str, Any]:
    """``RequisitionSubmitted`` as the requisition service emits it: a first submission of
    KES 1,250 of fuel from a branch, unless told otherwise."""
    payload = {
        "requisition_id": str(uuid.uuid4()),
        "voucher_no": f"{branch.code}-{seq:06d}",
        "branch_id": branch.id,
        "region_id": branch.region_id,
        "origin": branch.origin,
        "requester_id": requester.user_id,
        "requester_name": requester.username,
        "amount": kes(1_250),
        "category": "fuel",
        "urgent": False,
        "urgency_reason": "",
        "payee": {**CASH, "account_ref": ""},
        "reused_receipts": [],
        "revision": 1,
    }
    return _valid(p.RequisitionSubmittedPayload, {**payload, **overrides})


def receipt_attached(
    requisition_id: Any, reused_in: Iterable[str] = (), content: bytes = b"%PDF-1.7 fuel receipt"
) -> dict:
    """``ReceiptAttached``: a receipt added after submission, with the vouchers that carry it too."""
    payload = {
        "requisition_id": str(requisition_id),
        "sha256": hashlib.sha256(content).hexdigest(),
        "reused_in": list(reused_in),
    }
    return _valid(p.ReceiptAttachedPayload, payload)


def approval_case_opened(requisition_id: Any, **overrides: Any) -> dict[str, Any]:
    """``ApprovalCaseOpened``: routed to T1, waiting for the branch manager."""
    payload = {
        "requisition_id": str(requisition_id),
        "case_id": str(uuid.uuid4()),
        "tier": "T1",
        "policy_version": 1,
        "fast_track": False,
        "chain": ["branch_manager"],
        "escalations": [],
    }
    return _valid(p.ApprovalCaseOpenedPayload, {**payload, **overrides})


def _decided(requisition_id: Any, approver: Actor, comment: str) -> dict[str, Any]:
    return {
        "requisition_id": str(requisition_id),
        "case_id": stable_id("case", str(requisition_id)),
        "approver_id": approver.user_id,
        "approver_name": approver.username,
        "comment": comment,
    }


def changes_requested(
    requisition_id: Any, deadline: datetime, approver: Actor = BOB, comment: str = "Split fuel from repairs"
) -> dict[str, Any]:
    """``ChangesRequested``: sent back to the requester until ``deadline``."""
    payload = {**_decided(requisition_id, approver, comment), "deadline": _iso(deadline)}
    return _valid(p.ChangesRequestedPayload, payload)


def requisition_approved(
    requisition_id: Any,
    *,
    requester: Actor = ALICE,
    approvers: Iterable[Actor] = (BOB,),
    branch: Branch = NBO_CBD,
    approved_at: datetime | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """``RequisitionApproved``: the last approver (the last of ``approvers``) approved."""
    chain = list(approvers)
    payload = {
        **_decided(requisition_id, chain[-1], "ok"),
        "voucher_no": f"{branch.code}-000001",
        "branch_id": branch.id,
        "region_id": branch.region_id,
        "requester_id": requester.user_id,
        "approver_ids": [a.user_id for a in chain],
        "amount": kes(1_250),
        "category": "fuel",
        "payee": {**CASH, "account_ref": ""},
        "approved_at": _iso(approved_at or datetime.now(UTC)),
    }
    return _valid(p.RequisitionApprovedPayload, {**payload, **overrides})


def decision(requisition_id: Any, decision: str = "approve", comment: str = "ok", **overrides: Any) -> dict:
    """``approval.record_decision``."""
    payload = {"requisition_id": str(requisition_id), "decision": decision, "comment": comment, "deadline_hours": 72}
    return _valid(p.DecisionPayload, {**payload, **overrides})


def policy(**overrides: Any) -> dict[str, Any]:
    """``approval.set_policy``: the built-in policy, with the parts given replaced."""
    return _valid(p.PolicySchema, {**DEFAULT_POLICY.to_dict(), **overrides})


def directory_entry(actor: Actor, *, active: bool = True) -> dict[str, Any]:
    """``UserDirectoryUpdated`` for a user, as the gateway announces them (``identity.announce``)."""
    return _valid(
        p.UserDirectoryUpdatedPayload, {**actor.to_dict(), "full_name": actor.username.title(), "active": active}
    )


def requisition_closed(requisition_id: Any, branch: Branch = NBO_CBD, actor: Actor = ALICE, reason: str = "") -> dict:
    """``RequisitionCancelled`` (or ``RequisitionExpired``)."""
    payload = {
        "requisition_id": str(requisition_id),
        "branch_id": branch.id,
        "actor_id": actor.user_id,
        "reason": reason,
    }
    return _valid(p.RequisitionClosedPayload, payload)


# -- ledger ---------------------------------------------------------------------------


def float_funding(branch: Branch = NBO_CBD, amount: dict[str, Any] | None = None) -> dict[str, Any]:
    """``ledger.open_float``: fund a branch float (KES 100,000 unless told otherwise)."""
    payload = {"branch_id": branch.id, "branch_code": branch.code, "region_id": branch.region_id}
    return _valid(lg.OpenFloatPayload, {**payload, "amount": amount or kes(100_000)})


def replenishment_request(branch: Branch = NBO_CBD, amount: dict[str, Any] | None = None, comment: str = "") -> dict:
    """``ledger.request_replenishment``."""
    payload = {"branch_id": branch.id, "amount": amount or kes(10_000), "comment": comment}
    return _valid(lg.RequestReplenishmentPayload, payload)


def replenishment_decision(request_id: Any, *, approve: bool = True, comment: str = "ok") -> dict[str, Any]:
    """``ledger.decide_replenishment``."""
    return _valid(lg.DecideReplenishmentPayload, {"id": str(request_id), "approve": approve, "comment": comment})


def branch_directory_updated(
    branch: Branch = NBO_CBD,
    *,
    reorder_level: dict[str, Any] | None = None,
    imprest: dict[str, Any] | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """``BranchDirectoryUpdated``: the gateway announces a branch with its float's levels (unset unless given)."""
    payload = {
        "branch_id": branch.id,
        "branch_code": branch.code,
        "region_id": branch.region_id,
        "name": name or f"{branch.code} branch",
        "head_office": branch.head_office,
        "reorder_level": reorder_level,
        "imprest": imprest,
    }
    return _valid(p.BranchDirectoryUpdatedPayload, payload)


def funds_reserved(requisition_id: Any, branch: Branch = NBO_CBD, amount: dict[str, Any] | None = None) -> dict:
    """``FundsReserved``: the ledger holds the amount on the branch float."""
    payload = {
        "requisition_id": str(requisition_id),
        "branch_id": branch.id,
        "transfer_id": stable_id("hold", str(requisition_id)),
        "amount": amount or kes(1_250),
    }
    return _valid(lg.FundsReservedPayload, payload)


# -- payment --------------------------------------------------------------------------


def otp_code(code: str) -> dict[str, Any]:
    """``payment.activate_otp``."""
    return _valid(pm.OtpCodePayload, {"code": code})


def second_factor(code: str) -> dict[str, Any]:
    """``payment.verify_second_factor``: a sign-in's code."""
    return _valid(pm.SecondFactorPayload, {"code": code})


def authenticator_reset(user: Actor | str) -> dict[str, Any]:
    """``payment.reset_authenticator``: forget a user's authenticator."""
    return _valid(pm.ResetAuthenticatorPayload, {"user_id": user if isinstance(user, str) else user.user_id})


def payment_authorisation(requisition_id: Any, otp: str) -> dict[str, Any]:
    """``payment.execute_payment``: pay a reserved requisition, authorised by a one-time code."""
    return _valid(pm.ExecutePaymentPayload, {"requisition_id": str(requisition_id), "otp": otp})


def payment_started(requisition_id: Any, executor: Actor = TOM, execution: int = 1) -> dict[str, Any]:
    """``PaymentStarted``."""
    payload = {
        "requisition_id": str(requisition_id),
        "payment_id": stable_id("payment", str(requisition_id)),
        "executor_id": executor.user_id,
        "executor_name": executor.username,
        "execution": execution,
    }
    return _valid(pm.PaymentStartedPayload, payload)


def payment_completed(requisition_id: Any, amount: dict[str, Any] | None = None, executor: Actor = TOM) -> dict:
    """``PaymentCompleted``: the provider paid."""
    payload = {
        "requisition_id": str(requisition_id),
        "payment_id": stable_id("payment", str(requisition_id)),
        "amount": amount or kes(1_250),
        "provider": "cash",
        "provider_reference": "CASH-0001",
        "executor_id": executor.user_id,
    }
    return _valid(pm.PaymentCompletedPayload, payload)


def payment_failed(requisition_id: Any, *, final: bool, executions_left: int | None = None) -> dict[str, Any]:
    """``PaymentFailed``; ``final`` when no execution is left."""
    payload = {
        "requisition_id": str(requisition_id),
        "payment_id": stable_id("payment", str(requisition_id)),
        "reason": "bank: account closed",
        "final": final,
        "executions_left": (0 if final else 2) if executions_left is None else executions_left,
    }
    return _valid(pm.PaymentFailedPayload, payload)
