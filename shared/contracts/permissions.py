"""Which roles may do what: the one permission table the gateway checks and each service checks again.

Each action names the roles that may take it and the scope rule that then limits it to some
branches (``shared.contracts.roles``). The gateway refuses a request whose actor holds none of
the roles before anything is sent (403); the service that owns the action asks the same table
again, so a message that reached it another way is held to the same rule. The identity work
extends this table to every endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol

from shared.contracts.roles import Role


class Scope(StrEnum):
    """Which branches an allowed action reaches."""

    EVERY_BRANCH = "every-branch"  # the whole organisation (the roles in it are global)
    IN_SCOPE = "in-scope"  # the branches the actor's roles and memberships cover (roles.can_see_branch)
    MEMBER = "member"  # the branches the actor belongs to (roles.is_member)
    STEP_IN_SCOPE = "step-in-scope"  # an approval step of the actor's role, in that role's scope


class Action(StrEnum):
    """What an actor asks to do; the value names it in refusals and in the table's tests."""

    SUBMIT_REQUISITION = "submit-requisition"
    CANCEL_ANY_REQUISITION = "cancel-any-requisition"
    DECIDE_APPROVAL = "decide-approval"
    ACT_ON_ESCALATED_APPROVAL = "act-on-escalated-approval"
    READ_POLICY = "read-policy"
    SET_POLICY = "set-policy"
    READ_CAPS = "read-caps"
    SET_CAPS = "set-caps"
    READ_ALERTS = "read-alerts"
    EXECUTE_PAYMENT = "execute-payment"
    OPEN_FLOAT = "open-float"
    REQUEST_REPLENISHMENT = "request-replenishment"
    DECIDE_REPLENISHMENT = "decide-replenishment"
    READ_LEDGER = "read-ledger"
    READ_SYSTEM = "read-system"


class HoldsRoles(Protocol):
    """An actor, or a person as a service's directory knows them."""

    @property
    def roles(self) -> Set[str]: ...


@dataclass(frozen=True)
class Permission:
    """The roles that may take an action, and the branches it then reaches."""

    roles: frozenset[Role]
    scope: Scope

    def allows(self, actor: HoldsRoles) -> bool:
        """Whether the actor holds one of the roles (the scope is checked where the branch is known)."""
        return not self.roles.isdisjoint(actor.roles)

    def describe(self) -> str:
        """The roles in words, for a refusal: ``"finance or cfo"``."""
        return " or ".join(sorted(self.roles))


def _rule(scope: Scope, *roles: Role) -> Permission:
    return Permission(frozenset(roles), scope)


R = Role
APPROVER_ROLES: frozenset[Role] = frozenset({R.BRANCH_MANAGER, R.REGIONAL_MANAGER, R.FINANCE, R.CFO, R.ADMIN})

PERMISSIONS: Mapping[Action, Permission] = MappingProxyType(
    {
        Action.SUBMIT_REQUISITION: _rule(Scope.MEMBER, *Role),
        Action.CANCEL_ANY_REQUISITION: _rule(Scope.IN_SCOPE, R.FINANCE, R.CFO, R.ADMIN),
        Action.DECIDE_APPROVAL: _rule(Scope.STEP_IN_SCOPE, *APPROVER_ROLES),
        Action.ACT_ON_ESCALATED_APPROVAL: _rule(Scope.EVERY_BRANCH, R.ADMIN),
        Action.READ_POLICY: _rule(Scope.EVERY_BRANCH, R.ADMIN, R.FINANCE, R.CFO, R.AUDITOR),
        Action.SET_POLICY: _rule(Scope.EVERY_BRANCH, R.ADMIN),
        Action.READ_CAPS: _rule(Scope.EVERY_BRANCH, R.ADMIN, R.FINANCE, R.CFO, R.AUDITOR),
        Action.SET_CAPS: _rule(Scope.EVERY_BRANCH, R.ADMIN),
        Action.READ_ALERTS: _rule(
            Scope.IN_SCOPE, R.TREASURY, R.FINANCE, R.CFO, R.AUDITOR, R.ADMIN, R.BRANCH_MANAGER, R.REGIONAL_MANAGER
        ),
        Action.EXECUTE_PAYMENT: _rule(Scope.EVERY_BRANCH, R.TREASURY),
        Action.OPEN_FLOAT: _rule(Scope.EVERY_BRANCH, R.TREASURY, R.ADMIN),
        Action.REQUEST_REPLENISHMENT: _rule(Scope.EVERY_BRANCH, R.TREASURY),
        Action.DECIDE_REPLENISHMENT: _rule(Scope.EVERY_BRANCH, R.FINANCE, R.CFO),
        Action.READ_LEDGER: _rule(Scope.EVERY_BRANCH, R.FINANCE, R.CFO, R.AUDITOR, R.ADMIN),
        Action.READ_SYSTEM: _rule(Scope.EVERY_BRANCH, R.ADMIN, R.AUDITOR, R.FINANCE, R.CFO, R.TREASURY),
    }
)


def permission(action: Action) -> Permission:
    """The table's entry for an action."""
    return PERMISSIONS[action]


def may(actor: HoldsRoles, action: Action) -> bool:
    """Whether the actor holds a role the action allows."""
    return PERMISSIONS[action].allows(actor)
