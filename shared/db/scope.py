"""An actor's branch scope as a SQL condition, for every service's scoped queries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, false, or_, true

from shared.contracts.envelope import Actor
from shared.contracts.roles import BRANCH_ROLES, GLOBAL_ROLES, REGION_ROLES


def in_scope(actor: Actor, branch_id: Any, region_id: Any) -> ColumnElement[bool]:
    """Rows of branches the actor's roles cover (``shared.contracts.roles.can_see_branch`` in
    SQL); fails closed: no role or membership that covers a branch, no row of it."""
    if actor.roles & GLOBAL_ROLES:
        return true()
    covered: list[ColumnElement[bool]] = []
    if actor.roles & REGION_ROLES and actor.region_ids:
        covered.append(region_id.in_(sorted(actor.region_ids)))
    if actor.roles & BRANCH_ROLES and actor.branch_ids:
        covered.append(branch_id.in_(sorted(actor.branch_ids)))
    return or_(*covered) if covered else false()
