from __future__ import annotations

import pytest

from shared.contracts.envelope import Actor
from shared.contracts.roles import can_see_branch, is_member


def actor(*roles: str, branches: tuple[str, ...] = (), regions: tuple[str, ...] = ()) -> Actor:
    return Actor("u", "u", frozenset(roles), frozenset(branches), frozenset(regions))


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        (actor("finance"), True),
        (actor("auditor", branches=("elsewhere",)), True),
        (actor("regional_manager", regions=("r1",)), True),
        (actor("regional_manager", regions=("r2",), branches=("b1",)), False),
        (actor("branch_manager", branches=("b1",)), True),
        (actor("staff", branches=("b1",)), True),
        (actor("staff", branches=("b2",), regions=("r1",)), False),
        (actor(branches=("b1",), regions=("r1",)), False),  # no role: fails closed
        (actor("treasury_clerk", branches=("b1",)), False),
    ],
)
def test_an_actors_roles_and_memberships_decide_what_branches_it_sees(who: Actor, sees: bool) -> None:
    assert can_see_branch(who, "b1", "r1") is sees


def test_membership_is_the_actors_branches_only() -> None:
    assert is_member(actor("staff", branches=("b1",)), "b1")
    assert not is_member(actor("admin", regions=("r1",)), "b1")
