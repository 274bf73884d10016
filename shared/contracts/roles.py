"""Roles and the scope each one sees; used by the gateway and re-checked by every service.

Scoping fails closed: an actor with no role or no membership that covers a branch sees
nothing of it.
"""

from __future__ import annotations

from enum import StrEnum

from shared.contracts.envelope import Actor


class Role(StrEnum):
    """A role a user holds; what each may do is ``shared.contracts.permissions``."""

    STAFF = "staff"
    BRANCH_MANAGER = "branch_manager"
    REGIONAL_MANAGER = "regional_manager"
    TREASURY = "treasury"
    FINANCE = "finance"
    CFO = "cfo"
    AUDITOR = "auditor"
    ADMIN = "admin"


ROLES: tuple[str, ...] = tuple(role.value for role in Role)
# The scope each role sees: its members' branches, its members' regions, or everything.
BRANCH_ROLES: frozenset[str] = frozenset({Role.STAFF, Role.BRANCH_MANAGER})
REGION_ROLES: frozenset[str] = frozenset({Role.REGIONAL_MANAGER})
GLOBAL_ROLES: frozenset[str] = frozenset({Role.TREASURY, Role.FINANCE, Role.CFO, Role.AUDITOR, Role.ADMIN})
# The roles that move or govern money: they sign in with a second factor (the authenticator
# the payment service keeps, the one treasury pays with).
SECOND_FACTOR_ROLES: frozenset[str] = frozenset({Role.TREASURY, Role.FINANCE, Role.CFO, Role.ADMIN})


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
