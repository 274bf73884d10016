"""Which roles may do what: the one permission table the gateway checks and each service checks again.

Each action names the roles that may take it and the scope rule that then limits it to some
branches (``shared.contracts.roles``). The gateway refuses a request whose actor holds none of
the roles before anything is sent (403); the service that owns the action asks the same table
again, so a message that reached it another way is held to the same rule. Every endpoint of
the gateway names its action (``services.gateway.access``): the gateway refuses to start with
an endpoint that names none.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol

from shared.contracts.roles import SECOND_FACTOR_ROLES, Role


class Scope(StrEnum):
    """Which branches (or whose things) an allowed action reaches."""

    EVERY_BRANCH = "every-branch"  # the whole organisation (the roles in it are global)
    IN_SCOPE = "in-scope"  # the branches the actor's roles and memberships cover (roles.can_see_branch)
    MEMBER = "member"  # the branches the actor belongs to (roles.is_member)
    STEP_IN_SCOPE = "step-in-scope"  # an approval step of the actor's role, in that role's scope
    OWN = "own"  # the actor's own things: their requisitions, commands, session, password, tokens


class Action(StrEnum):
    """What an actor asks to do; the value names it in refusals and in the table's tests.

    Every endpoint of the gateway names one (``services.gateway.access``), so this table is the
    whole of who may call what; the services check again the actions they own.
    """

    # reading (the gateway's projections; the scope is part of every query)
    READ_REQUISITIONS = "read-requisitions"
    READ_INBOX = "read-inbox"
    READ_PAYMENTS = "read-payments"
    READ_PAYMENT_RUNS = "read-payment-runs"
    READ_FLOATS = "read-floats"
    READ_COMMAND_STATUS = "read-command-status"
    READ_POLICY = "read-policy"
    READ_CAPS = "read-caps"
    READ_ALERTS = "read-alerts"
    HANDLE_ALERTS = "handle-alerts"
    READ_DASHBOARD = "read-dashboard"
    RECORD_CASH_COUNT = "record-cash-count"
    DECIDE_VARIANCE = "decide-variance"
    READ_LEDGER = "read-ledger"
    READ_REPORTS = "read-reports"
    READ_SYSTEM = "read-system"
    # requesting money
    SUBMIT_REQUISITION = "submit-requisition"
    EDIT_REQUISITION = "edit-requisition"
    CANCEL_REQUISITION = "cancel-requisition"
    CANCEL_ANY_REQUISITION = "cancel-any-requisition"
    # deciding
    DECIDE_APPROVAL = "decide-approval"
    ACT_ON_ESCALATED_APPROVAL = "act-on-escalated-approval"
    SET_POLICY = "set-policy"
    SET_CAPS = "set-caps"
    # moving money
    ENROL_SECOND_FACTOR = "enrol-second-factor"
    EXECUTE_PAYMENT = "execute-payment"
    OPEN_FLOAT = "open-float"
    REQUEST_REPLENISHMENT = "request-replenishment"
    DECIDE_REPLENISHMENT = "decide-replenishment"
    # one's own account: session, password, second factor, personal API tokens
    USE_OWN_ACCOUNT = "use-own-account"
    # administration
    READ_DIRECTORY = "read-directory"
    ADMINISTER_ORGANISATION = "administer-organisation"
    ADMINISTER_USERS = "administer-users"
    READ_SECURITY_EVENTS = "read-security-events"


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
ALL_ROLES: tuple[Role, ...] = tuple(Role)
APPROVER_ROLES: frozenset[Role] = frozenset({R.BRANCH_MANAGER, R.REGIONAL_MANAGER, R.FINANCE, R.CFO, R.ADMIN})
OFFICE: tuple[Role, ...] = (R.FINANCE, R.CFO, R.AUDITOR, R.ADMIN)  # who reads the organisation's rules and books

PERMISSIONS: Mapping[Action, Permission] = MappingProxyType(
    {
        Action.READ_REQUISITIONS: _rule(Scope.IN_SCOPE, *ALL_ROLES),
        Action.READ_INBOX: _rule(Scope.STEP_IN_SCOPE, *APPROVER_ROLES),
        Action.READ_PAYMENTS: _rule(Scope.IN_SCOPE, *ALL_ROLES),
        # A run spans branches: who pays and who watches the payments of the whole organisation.
        Action.READ_PAYMENT_RUNS: _rule(Scope.EVERY_BRANCH, R.TREASURY, R.FINANCE, R.CFO, R.AUDITOR),
        Action.READ_FLOATS: _rule(Scope.IN_SCOPE, *ALL_ROLES),
        Action.READ_COMMAND_STATUS: _rule(Scope.OWN, *ALL_ROLES),
        Action.READ_POLICY: _rule(Scope.EVERY_BRANCH, *OFFICE),
        Action.READ_CAPS: _rule(Scope.EVERY_BRANCH, *OFFICE),
        Action.READ_ALERTS: _rule(
            Scope.IN_SCOPE, R.TREASURY, R.FINANCE, R.CFO, R.AUDITOR, R.ADMIN, R.BRANCH_MANAGER, R.REGIONAL_MANAGER
        ),
        Action.HANDLE_ALERTS: _rule(
            Scope.IN_SCOPE, R.TREASURY, R.FINANCE, R.CFO, R.ADMIN, R.BRANCH_MANAGER, R.REGIONAL_MANAGER
        ),
        Action.READ_DASHBOARD: _rule(Scope.IN_SCOPE, R.TREASURY, R.FINANCE, R.CFO),
        # The branch's custodian counts its till (a manager of the branch), or treasury anywhere.
        Action.RECORD_CASH_COUNT: _rule(Scope.MEMBER, R.BRANCH_MANAGER, R.TREASURY),
        Action.DECIDE_VARIANCE: _rule(Scope.EVERY_BRANCH, R.FINANCE, R.CFO),
        Action.READ_LEDGER: _rule(Scope.EVERY_BRANCH, *OFFICE),
        # Finance, the CFO and auditors read every branch; a regional or branch manager reads
        # the reports of the branches their scope covers (each service applies the scope).
        Action.READ_REPORTS: _rule(Scope.IN_SCOPE, R.FINANCE, R.CFO, R.AUDITOR, R.REGIONAL_MANAGER, R.BRANCH_MANAGER),
        Action.READ_SYSTEM: _rule(Scope.EVERY_BRANCH, R.ADMIN, R.AUDITOR, R.FINANCE, R.CFO, R.TREASURY),
        Action.SUBMIT_REQUISITION: _rule(Scope.MEMBER, *ALL_ROLES),
        Action.EDIT_REQUISITION: _rule(Scope.OWN, *ALL_ROLES),
        Action.CANCEL_REQUISITION: _rule(Scope.OWN, *ALL_ROLES),
        Action.CANCEL_ANY_REQUISITION: _rule(Scope.IN_SCOPE, R.FINANCE, R.CFO, R.ADMIN),
        Action.DECIDE_APPROVAL: _rule(Scope.STEP_IN_SCOPE, *APPROVER_ROLES),
        Action.ACT_ON_ESCALATED_APPROVAL: _rule(Scope.EVERY_BRANCH, R.ADMIN),
        Action.SET_POLICY: _rule(Scope.EVERY_BRANCH, R.ADMIN),
        Action.SET_CAPS: _rule(Scope.EVERY_BRANCH, R.ADMIN),
        Action.ENROL_SECOND_FACTOR: _rule(Scope.OWN, *(Role(r) for r in SECOND_FACTOR_ROLES)),
        Action.EXECUTE_PAYMENT: _rule(Scope.EVERY_BRANCH, R.TREASURY),
        Action.OPEN_FLOAT: _rule(Scope.EVERY_BRANCH, R.TREASURY, R.ADMIN),
        Action.REQUEST_REPLENISHMENT: _rule(Scope.EVERY_BRANCH, R.TREASURY),
        Action.DECIDE_REPLENISHMENT: _rule(Scope.EVERY_BRANCH, R.FINANCE, R.CFO),
        Action.USE_OWN_ACCOUNT: _rule(Scope.OWN, *ALL_ROLES),
        Action.READ_DIRECTORY: _rule(Scope.EVERY_BRANCH, R.ADMIN, R.AUDITOR),
        Action.ADMINISTER_ORGANISATION: _rule(Scope.EVERY_BRANCH, R.ADMIN),
        Action.ADMINISTER_USERS: _rule(Scope.EVERY_BRANCH, R.ADMIN),
        Action.READ_SECURITY_EVENTS: _rule(Scope.EVERY_BRANCH, R.ADMIN, R.AUDITOR),
    }
)


def permission(action: Action) -> Permission:
    """The table's entry for an action."""
    return PERMISSIONS[action]


def may(actor: HoldsRoles, action: Action) -> bool:
    """Whether the actor holds a role the action allows."""
    return PERMISSIONS[action].allows(actor)
