"""``/api/v1/requisitions``: request money, edit, submit, cancel, attach receipts, read."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, jsonify, request, url_for
from flask.views import MethodView

from services.gateway import problems, reads, receipts
from services.gateway.api import Blueprint, ctx
from services.gateway.api.replies import Behind, call, command, found, read, reply_response
from services.gateway.auth import current_actor
from services.gateway.branches import branch_by_code
from services.gateway.idempotency import idempotent
from services.gateway.schemas import (
    AcceptedSchema,
    CommentSchema,
    ListQuerySchema,
    ProblemSchema,
    ReceiptSchema,
    ReceiptUploadSchema,
    RequisitionCreateSchema,
    RequisitionEditSchema,
    RequisitionListSchema,
    RequisitionSchema,
)
from shared.contracts import catalog
from shared.contracts.payloads import RequisitionFieldsSchema, SubmitRequisitionPayload

blp = Blueprint("requisitions", __name__, url_prefix="/api/v1/requisitions", description="Requests for money")


def _location(body: dict[str, Any]) -> str:
    return url_for("requisitions.Requisition", requisition_id=body["id"])


@blp.route("")
class Requisitions(MethodView):
    @blp.arguments(ListQuerySchema, location="query")
    @blp.response(200, RequisitionListSchema)
    def get(self, args: dict[str, Any]) -> Response:
        """List requisitions: mine (default), my branch's, or all my scope covers."""
        actor = current_actor()
        branch_id = None
        if args.get("branch"):
            branch = branch_by_code(args["branch"])
            if branch is None:
                return problems.problem(422, "unknown-branch", "No branch has that code.")
            branch_id = branch.id
        with ctx().db.uow() as uow:
            body = reads.list_requisitions(
                uow.session,
                actor,
                scope=args["scope"],
                status=args.get("status"),
                branch_id=branch_id,
                limit=args["limit"],
                offset=args["offset"],
            )
        return jsonify(body)

    @idempotent
    @blp.arguments(RequisitionCreateSchema)
    @blp.response(201, RequisitionSchema)
    @blp.alt_response(202, schema=AcceptedSchema, description="Accepted; the outcome is not known yet")
    @blp.alt_response(400, schema=ProblemSchema, description="Malformed body")
    @blp.alt_response(403, schema=ProblemSchema, description="Not a member of the branch")
    @blp.alt_response(422, schema=ProblemSchema, description="A business rule refused it (unknown branch, cap)")
    def post(self, data: dict[str, Any]) -> Response:
        """Submit a requisition (or save a draft with ``"draft": true``)."""
        actor = current_actor()
        branch = branch_by_code(data.pop("branch"))
        if branch is None:
            return problems.problem(422, "unknown-branch", "No branch has that code.")
        data.update(branch_id=branch.id, branch_code=branch.code, region_id=branch.region_id, origin=branch.origin)
        payload = SubmitRequisitionPayload().dump(data)
        try:
            message_id, reply = call(catalog.SUBMIT_REQUISITION, payload, actor)
        except Behind as behind:
            return behind.response()
        if reply is None:
            from services.gateway.api.commands import accepted

            return accepted(message_id, actor, "requisition")
        return reply_response(reply, _location(reply["body"]) if reply["status"] == 201 else None)


@blp.route("/<uuid:requisition_id>")
class Requisition(MethodView):
    @blp.response(200, RequisitionSchema)
    @blp.alt_response(404, schema=ProblemSchema, description="No such requisition in your scope")
    def get(self, requisition_id: uuid.UUID) -> Response:
        """A requisition, its history, its receipts and its approval case."""
        return found(read(reads.get_requisition, current_actor(), str(requisition_id)), "such requisition")

    @blp.arguments(RequisitionEditSchema)
    @blp.response(200, RequisitionSchema)
    @blp.alt_response(409, schema=ProblemSchema, description="Not editable in its state")
    def patch(self, data: dict[str, Any], requisition_id: uuid.UUID) -> Response:
        """Edit a draft, or a requisition sent back for changes (requester only)."""
        payload = RequisitionFieldsSchema().dump(data)
        return command(catalog.UPDATE_REQUISITION, {**payload, "id": str(requisition_id)})


@blp.route("/<uuid:requisition_id>/submit")
class Submit(MethodView):
    @blp.response(200, RequisitionSchema)
    @blp.alt_response(409, schema=ProblemSchema, description="Not a draft nor sent back for changes")
    @blp.alt_response(422, schema=ProblemSchema, description="A cap refused it")
    def post(self, requisition_id: uuid.UUID) -> Response:
        """Submit a draft, or resubmit after changes were requested."""
        return command(catalog.SUBMIT_DRAFT, {"id": str(requisition_id), "comment": ""})


@blp.route("/<uuid:requisition_id>/cancel")
class Cancel(MethodView):
    @blp.arguments(CommentSchema)
    @blp.response(200, RequisitionSchema)
    @blp.alt_response(409, schema=ProblemSchema, description="Too late to cancel")
    def post(self, data: dict[str, Any], requisition_id: uuid.UUID) -> Response:
        """Cancel: the requester before a decision; finance, CFO or admin until payment."""
        return command(catalog.CANCEL_REQUISITION, {"id": str(requisition_id), "comment": data["comment"]})


@blp.route("/<uuid:requisition_id>/receipts")
class Receipts(MethodView):
    @blp.arguments(ReceiptUploadSchema, location="files")
    @blp.response(201, ReceiptSchema)
    @blp.alt_response(400, schema=ProblemSchema, description="Not a PDF, PNG or JPEG, empty, or too large")
    def post(self, files: dict[str, Any], requisition_id: uuid.UUID) -> Response:
        """Attach a receipt (multipart field ``file``; PDF, PNG or JPEG; at most 5 MiB)."""
        current_actor()
        upload = files["file"]
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


@blp.before_request
def _receipt_size_limit() -> None:
    # The API's 1 MiB body limit is lifted for receipt uploads only (Flask 3.1 per-request).
    if request.path.endswith("/receipts"):
        request.max_content_length = receipts.MAX_RECEIPT_BYTES + 64 * 1024
