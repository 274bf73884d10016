"""Approvers' API: the inbox, decisions on a requisition, and the approval policy."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from services.gateway import reads
from services.gateway.access import permits
from services.gateway.api import Blueprint
from services.gateway.api.replies import Answer, command, found, read
from services.gateway.auth import current_actor
from services.gateway.schemas import (
    ApprovalCaseSchema,
    ChangesSchema,
    CommentSchema,
    InboxSchema,
    PolicySchema,
    PolicyVersionSchema,
    ReasonSchema,
)
from shared.contracts import catalog, instances
from shared.contracts.permissions import Action

blp = Blueprint("approvals", __name__, url_prefix="/api/v1", description="Approvals")


def decide(requisition_id: uuid.UUID, decision: str, comment: str, **extra: Any) -> Answer:
    """Record a decision on the step waiting for the caller (the API's and the pages' one path)."""
    payload = {"requisition_id": str(requisition_id), "decision": decision, "comment": comment, **extra}
    return command(catalog.RECORD_DECISION, payload)


def set_policy(data: dict[str, Any]) -> Answer:
    """Publish a new version of the approval policy (``PolicySchema``): the API's and the pages' one path."""
    return command(catalog.SET_POLICY, instances.schema(PolicySchema).dump(data), resource="policy")


DECISION_ERRORS = (
    (400, "Malformed body"),
    (403, "Self-approval, an unexpected approver, or someone already in the chain"),
    (404, "No approval case in your scope"),
    (409, "Nothing waits for this decision"),
    (422, "The approver's limit is below the amount, or a reason is missing"),
)


def _decision_docs(view: Any) -> Any:
    for status, description in DECISION_ERRORS:
        view = blp.problem(status, description)(view)
    view = blp.accepted()(view)
    return blp.response(200, ApprovalCaseSchema)(view)


@blp.route("/requisitions/<uuid:requisition_id>/approve")
class Approve(MethodView):
    @permits(Action.DECIDE_APPROVAL)
    @blp.arguments(CommentSchema)
    @_decision_docs
    def post(self, data: dict[str, Any], requisition_id: uuid.UUID) -> Answer:
        """Approve the step that waits for you."""
        return decide(requisition_id, "approve", data["comment"])


@blp.route("/requisitions/<uuid:requisition_id>/reject")
class Reject(MethodView):
    @permits(Action.DECIDE_APPROVAL)
    @blp.arguments(ReasonSchema)
    @_decision_docs
    def post(self, data: dict[str, Any], requisition_id: uuid.UUID) -> Answer:
        """Reject, with a reason."""
        return decide(requisition_id, "reject", data["reason"])


@blp.route("/requisitions/<uuid:requisition_id>/request-changes")
class RequestChanges(MethodView):
    @permits(Action.DECIDE_APPROVAL)
    @blp.arguments(ChangesSchema)
    @_decision_docs
    def post(self, data: dict[str, Any], requisition_id: uuid.UUID) -> Answer:
        """Send it back to the requester, who must resubmit before the deadline."""
        return decide(requisition_id, "request_changes", data["comment"], deadline_hours=data["deadline_hours"])


@blp.route("/requisitions/<uuid:requisition_id>/confirm-urgency")
class ConfirmUrgency(MethodView):
    @permits(Action.DECIDE_APPROVAL)
    @blp.arguments(CommentSchema)
    @_decision_docs
    def post(self, data: dict[str, Any], requisition_id: uuid.UUID) -> Answer:
        """As the tier's final approver, confirm the urgency (and approve)."""
        return decide(requisition_id, "confirm_urgency", data["comment"])


@blp.route("/requisitions/<uuid:requisition_id>/revert-urgency")
class RevertUrgency(MethodView):
    @permits(Action.DECIDE_APPROVAL)
    @blp.arguments(CommentSchema)
    @_decision_docs
    def post(self, data: dict[str, Any], requisition_id: uuid.UUID) -> Answer:
        """Decline the fast track: the requisition goes through the tier's normal chain."""
        return decide(requisition_id, "revert_urgency", data["comment"])


@blp.route("/approvals/inbox")
class Inbox(MethodView):
    @permits(Action.READ_INBOX)
    @blp.response(200, InboxSchema)
    def get(self) -> Any:
        """What waits for your decision, the most overdue first."""
        return read(reads.inbox, current_actor())


@blp.route("/approval-policy")
class ApprovalPolicy(MethodView):
    @permits(Action.READ_POLICY)
    @blp.response(200, PolicyVersionSchema)
    @blp.problem(403, "Not admin, finance, CFO or auditor")
    @blp.problem(404, "No policy has been published yet")
    def get(self) -> Any:
        """The approval policy in force (tiers, chains, approver limits, SLAs)."""
        return found(read(reads.document, "policy"), "policy")

    @permits(Action.SET_POLICY)
    @blp.arguments(PolicySchema)
    @blp.response(201, PolicyVersionSchema)
    @blp.accepted()
    @blp.problem(400, "Malformed body")
    @blp.problem(403, "Not an admin")
    @blp.problem(422, "The policy is inconsistent")
    def put(self, data: dict[str, Any]) -> Answer:
        """Replace the policy (admin): a new version; open cases keep theirs."""
        return set_policy(data)
