"""The organisation's rules as pages (finance, CFO, auditors and admins read them): the approval
policy in force (tiers, chains, approver limits, SLAs) and the caps."""

from __future__ import annotations

from typing import Any

from services.gateway import reads
from services.gateway.access import permits
from services.gateway.api.replies import read
from services.gateway.web import bp, page
from shared.contracts.permissions import Action


@bp.get("/policy")
@permits(Action.READ_POLICY, sessions_only=True)
def policy() -> Any:
    return page("policy.html", policy=read(reads.document, "policy"), caps=read(reads.document, "caps"))
