"""``/api/v1/security-events``: who signed in, failed, was locked out, changed a credential, a
role or a membership, was refused (auditors and admins)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from services.gateway.access import permits
from services.gateway.api import Blueprint, ctx
from services.gateway.identity_schemas import SecurityEventListSchema, SecurityEventQuerySchema
from shared.contracts.permissions import Action

blp = Blueprint("security", __name__, url_prefix="/api/v1", description="Security events")


@blp.route("/security-events")
class SecurityEvents(MethodView):
    @permits(Action.READ_SECURITY_EVENTS)
    @blp.arguments(SecurityEventQuerySchema, location="query")
    @blp.response(200, SecurityEventListSchema)
    @blp.problem(400, "Malformed query")
    def get(self, args: dict[str, Any]) -> Any:
        """Security events, newest first: by type, by the user they concern (as actor or subject),
        since a time; page with ``before_id``."""
        user_id = str(args["user_id"]) if args.get("user_id") else None
        items = ctx().security.list(
            kind=args.get("type"),
            user_id=user_id,
            since=args.get("since"),
            before_id=args.get("before_id"),
            limit=args["limit"],
        )
        return {"items": items}
