"""The permission table: every action has its rule, and the scopes fit the roles that hold them."""

from __future__ import annotations

import pytest

from shared.contracts.envelope import Actor
from shared.contracts.permissions import PERMISSIONS, Action, Scope, may, permission
from shared.contracts.roles import GLOBAL_ROLES, ROLES, Role


def actor(*roles: str) -> Actor:
    return Actor("u", "u", frozenset(roles), frozenset({"b1"}), frozenset({"r1"}))


def test_every_action_has_a_rule_naming_known_roles() -> None:
    assert set(PERMISSIONS) == set(Action)
    for action, rule in PERMISSIONS.items():
        assert rule.roles, action
        assert rule.roles <= set(ROLES), action


def test_an_action_over_every_branch_is_held_by_global_roles_only() -> None:
    for action, rule in PERMISSIONS.items():
        if rule.scope == Scope.EVERY_BRANCH:
            assert rule.roles <= GLOBAL_ROLES, action


@pytest.mark.parametrize(
    ("action", "allowed"),
    [
        (Action.SET_CAPS, {Role.ADMIN}),
        (Action.SET_POLICY, {Role.ADMIN}),
        (Action.EXECUTE_PAYMENT, {Role.TREASURY}),
        (Action.OPEN_FLOAT, {Role.TREASURY, Role.ADMIN}),
        (Action.DECIDE_REPLENISHMENT, {Role.FINANCE, Role.CFO}),
        (Action.CANCEL_ANY_REQUISITION, {Role.FINANCE, Role.CFO, Role.ADMIN}),
        (Action.DECIDE_APPROVAL, {Role.BRANCH_MANAGER, Role.REGIONAL_MANAGER, Role.FINANCE, Role.CFO, Role.ADMIN}),
        (Action.READ_LEDGER, {Role.FINANCE, Role.CFO, Role.AUDITOR, Role.ADMIN}),
        (
            Action.READ_REPORTS,
            {Role.FINANCE, Role.CFO, Role.AUDITOR, Role.REGIONAL_MANAGER, Role.BRANCH_MANAGER},
        ),
        (Action.SUBMIT_REQUISITION, set(Role)),
    ],
)
def test_who_may_take_an_action(action: Action, allowed: set[Role]) -> None:
    assert {role for role in Role if may(actor(role), action)} == allowed


def test_no_role_and_unknown_roles_may_do_nothing() -> None:
    for action in Action:
        assert not may(actor(), action)
        assert not may(actor("treasury_clerk", "superuser"), action)


def test_a_refusal_names_the_roles_in_words() -> None:
    assert permission(Action.DECIDE_REPLENISHMENT).describe() == "cfo or finance"
