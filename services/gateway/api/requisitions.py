"""``/api/v1/requisitions``: request money, edit, submit, cancel, attach receipts, read."""

from __future__ import annotations

import uuid
from typing import Any

from flask import request, url_for
from flask.views import MethodView

from services.gateway import problems, reads, receipts
from services.gateway.access import permits
from services.gateway.api import LOCATION_HEADER, Blueprint, ctx
from services.gateway.api.commands import accepted
from services.gateway.api.replies import Answer, Behind, call, command, found, read, reply_response
from services.gateway.auth import current_actor
from services.gateway.branches import branch
from services.gateway.idempotency import idempotent
from services.gateway.schemas import (
    CommentSchema,
    ListQuerySchema,
    ReceiptSchema,
    ReceiptUploadSchema,
    RequisitionCreateSchema,
    RequisitionEditSchema,
    RequisitionListSchema,
    RequisitionSchema,
)
from shared.contracts import catalog, instances
from shared.contracts.payloads import RequisitionFieldsSchema, SubmitRequisitionPayload
from shared.contracts.permissions import Action

blp = Blueprint("requisitions", __name__, url_prefix="/api/v1/requisitions", description="Requests for money")

NOT_FOUND = "No such requisition in your scope"


def _location(body: dict[str, Any]) -> str:
    return url_for("requisitions.Requisition", requisition_id=body["id"])


@blp.route("")
class Requisitions(MethodView):
    @permits(Action.READ_REQUISITIONS)
    @blp.arguments(ListQuerySchema, location="query")
    @blp.response(200, RequisitionListSchema)
    @blp.problem(400, "Malformed query: see errors")
    @blp.problem(422, "No branch has that code")
    def get(self, args: dict[str, Any]) -> Any:
        """List requisitions: mine (default), my branch's, or all my scope covers."""
        actor = current_actor()
        branch_id = branch(args["branch"]).id if args.get("branch") else None
        with ctx().db.uow() as uow:
            return reads.list_requisitions(
                uow.session,
                actor,
                scope=args["scope"],
                status=args.get("status"),
                branch_id=branch_id,
                limit=args["limit"],
                offset=args["offset"],
            )

    @permits(Action.SUBMIT_REQUISITION)
    @idempotent
    @blp.arguments(RequisitionCreateSchema)
    @blp.response(201, RequisitionSchema, headers={"Location": LOCATION_HEADER})
    @blp.accepted()
    @blp.problem(400, "Malformed body, or a malformed Idempotency-Key")
    @blp.problem(403, "Not a member of the branch")
    @blp.problem(409, "A request with this Idempotency-Key is in flight")
    @blp.problem(
        422, "A business rule refused it (unknown branch, cap), or the Idempotency-Key was used for another request"
    )
    def post(self, data: dict[str, Any]) -> Answer:
        """Submit a requisition (or save a draft with ``"draft": true``)."""
        return submit_requisition(data)


def submit_requisition(data: dict[str, Any]) -> Answer:
    """Submit a requisition (or save a draft) from a validated body (the API's and the new
    requisition page's one path)."""
    actor = current_actor()
    named = branch(data.pop("branch"))
    data.update(named.as_payload(), origin=named.origin)
    payload = instances.schema(SubmitRequisitionPayload).dump(data)
    try:
        message_id, reply = call(catalog.SUBMIT_REQUISITION, payload, actor)
    except Behind as behind:
        return behind.response()
    if reply is None:
        return accepted(message_id, actor, "requisition")
    return reply_response(reply, _location(reply["body"]) if reply["status"] == 201 else None)


@blp.route("/<uuid:requisition_id>")
class Requisition(MethodView):
    @permits(Action.READ_REQUISITIONS)
    @blp.response(200, RequisitionSchema)
    @blp.problem(404, NOT_FOUND)
    def get(self, requisition_id: uuid.UUID) -> Any:
        """A requisition, its history, its receipts and its approval case."""
        return found(read(reads.get_requisition, current_actor(), str(requisition_id)), "such requisition")

    @permits(Action.EDIT_REQUISITION)
    @blp.arguments(RequisitionEditSchema)
    @blp.response(200, RequisitionSchema)
    @blp.accepted()
    @blp.problem(400, "Malformed body")
    @blp.problem(403, "Not the requester")
    @blp.problem(404, NOT_FOUND)
    @blp.problem(409, "Not editable in its state")
    def patch(self, data: dict[str, Any], requisition_id: uuid.UUID) -> Answer:
        """Edit a draft, or a requisition sent back for changes (requester only)."""
        return edit_requisition(requisition_id, data)


def edit_requisition(requisition_id: uuid.UUID, data: dict[str, Any]) -> Answer:
    """Change a draft, or a requisition sent back for changes (the API's and the edit page's one path)."""
    payload = instances.schema(RequisitionFieldsSchema).dump(data)
    return command(catalog.UPDATE_REQUISITION, {**payload, "id": str(requisition_id)})


@blp.route("/<uuid:requisition_id>/submit")
class Submit(MethodView):
    @permits(Action.EDIT_REQUISITION)
    @blp.response(200, RequisitionSchema)
    @blp.accepted()
    @blp.problem(403, "Not the requester")
    @blp.problem(404, NOT_FOUND)
    @blp.problem(409, "Not a draft nor sent back for changes")
    @blp.problem(422, "A cap refused it")
    def post(self, requisition_id: uuid.UUID) -> Answer:
        """Submit a draft, or resubmit after changes were requested."""
        return command(catalog.SUBMIT_DRAFT, {"id": str(requisition_id), "comment": ""})


@blp.route("/<uuid:requisition_id>/cancel")
class Cancel(MethodView):
    @permits(Action.CANCEL_REQUISITION)
    @blp.arguments(CommentSchema)
    @blp.response(200, RequisitionSchema)
    @blp.accepted()
    @blp.problem(400, "Malformed body")
    @blp.problem(403, "Neither the requester nor finance, CFO or admin")
    @blp.problem(404, NOT_FOUND)
    @blp.problem(409, "Too late to cancel")
    def post(self, data: dict[str, Any], requisition_id: uuid.UUID) -> Answer:
        """Cancel: the requester before a decision; finance, CFO or admin until payment."""
        return command(catalog.CANCEL_REQUISITION, {"id": str(requisition_id), "comment": data["comment"]})


@blp.route("/<uuid:requisition_id>/receipts")
class Receipts(MethodView):
    @permits(Action.EDIT_REQUISITION)
    @blp.arguments(ReceiptUploadSchema, location="files")
    @blp.response(201, ReceiptSchema)
    @blp.accepted()
    @blp.problem(400, "Not a PDF, PNG or JPEG, empty, or no file")
    @blp.problem(403, "Not the requester")
    @blp.problem(404, NOT_FOUND)
    @blp.problem(409, "No receipts may be attached in its state, or this file is attached already")
    @blp.problem(413, "Larger than 5 MiB")
    def post(self, files: dict[str, Any], requisition_id: uuid.UUID) -> Answer:
        """Attach a receipt (multipart field ``file``; PDF, PNG or JPEG; at most 5 MiB)."""
        return attach_receipt(requisition_id, files["file"])


def attach_receipt(requisition_id: uuid.UUID, upload: Any) -> Answer:
    """Keep an uploaded receipt by its content and attach it (the API's and the page's one path)."""
    current_actor()
    data = upload.stream.read(receipts.MAX_RECEIPT_BYTES + 1)
    try:
        content_type = receipts.sniff(data)
    except receipts.ReceiptRejected as exc:
        return problems.problem(400, "invalid-receipt", str(exc))
    digest = receipts.store(ctx().settings.var_dir / "receipts", data)
    payload = {
        "id": str(requisition_id),
        "sha256": digest,
        "filename": receipts.safe_filename(upload.filename),
        "content_type": content_type,
        "size": len(data),
    }
    return command(catalog.ATTACH_RECEIPT, payload)


def receipt_size_limit() -> None:
    """The 1 MiB body limit is lifted for receipt uploads only (Flask 3.1 per-request)."""
    if request.path.endswith("/receipts"):
        request.max_content_length = receipts.MAX_RECEIPT_BYTES + 64 * 1024
