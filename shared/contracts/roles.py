"""Roles and the scope each one sees; used by the gateway and re-checked by every service.

Scoping fails closed: an actor with no role or no membership that covers a branch sees
nothing of it.
"""

from __future__ import annotations

from shared.contracts.envelope import Actor

ROLES: tuple[str, ...] = (
    "staff",
    "branch_manager",
    "regional_manager",
    "treasury",
    "finance",
    "cfo",
    "auditor",
    "admin",
)
BRANCH_ROLES = frozenset({"staff", "branch_manager"})
REGION_ROLES = frozenset({"regional_manager"})
GLOBAL_ROLES = frozenset({"treasury", "finance", "cfo", "auditor", "admin"})


def can_see_branch(actor: Actor, branch_id: str, region_id: str) -> bool:
    """Whether an actor's roles and memberships cover a branch."""
    if actor.roles & GLOBAL_ROLES:
        return True
    if actor.roles & REGION_ROLES and region_id in actor.region_ids:
        return True
    return bool(actor.roles & BRANCH_ROLES) and branch_id in actor.branch_ids


def is_member(actor: Actor, branch_id: str) -> bool:
    """Whether the actor belongs to the branch (may request money for it)."""
    return branch_id in actor.branch_ids
