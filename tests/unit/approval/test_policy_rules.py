"""``validate_policy``: each rule's message, and the first rule broken is the one named."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from services.approval.domain import DEFAULT_POLICY, PolicyError, policy_from_dict

Change = Callable[[dict[str, Any]], None]


def tier(data: dict[str, Any], origin: str, name: str) -> dict[str, Any]:
    """One tier of a policy's wire form, found by origin and name."""
    return next(t for t in data["tiers"] if t["origin"] == origin and t["name"] == name)


def drop_origin(origin: str) -> Change:
    return lambda d: d.update(tiers=[t for t in d["tiers"] if t["origin"] != origin])


def rename(origin: str, name: str, new: str) -> Change:
    return lambda d: tier(d, origin, name).update(name=new)


def bound(origin: str, name: str, up_to: int | None) -> Change:
    return lambda d: tier(d, origin, name).update(up_to_major=up_to)


def chain(origin: str, name: str, *roles: str) -> Change:
    return lambda d: tier(d, origin, name).update(chain=list(roles))


def limits(**changes: int | None) -> Change:
    return lambda d: d["limits"].update(changes)


def no_limit(role: str) -> Change:
    return lambda d: d["limits"].pop(role)


def refusal(*changes: Change) -> str:
    data = DEFAULT_POLICY.to_dict()
    for change in changes:
        change(data)
    with pytest.raises(PolicyError) as raised:
        policy_from_dict(2, data)
    return str(raised.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (drop_origin("head_office"), "tiers are needed for both origins: branch and head_office"),
        (limits(janitor=5, cook=1), "limits name unknown roles: ['cook', 'janitor']"),
        (rename("branch", "T3", "T5"), "branch: tiers must be T1..Tn without gaps"),
        (bound("branch", "T4", 900_000), "branch: only the last tier is unbounded"),
        (bound("head_office", "T2", None), "head_office: only the last tier is unbounded"),
        (bound("branch", "T2", 10_000), "branch: tier bounds must increase"),
        (chain("branch", "T2", "branch_manager", "branch_manager"), "branch T2: a role appears twice in the chain"),
        (chain("branch", "T1", "staff", "auditor"), "branch T1: ['auditor', 'staff'] cannot approve"),
        (no_limit("regional_manager"), "branch T2: no approval limit for ['regional_manager']"),
        (chain("head_office", "T4", "finance"), "head_office: the top tier must need the CFO"),
    ],
)
def test_each_rule_names_its_problem(change: Change, message: str) -> None:
    assert refusal(change) == message


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ((limits(janitor=5), drop_origin("branch")), "tiers are needed for both origins"),
        ((rename("branch", "T1", "T9"), limits(janitor=5)), "limits name unknown roles"),
        ((bound("branch", "T4", 900_000), rename("branch", "T2", "T7")), "branch: tiers must be T1..Tn"),
        ((bound("branch", "T2", 10_000), bound("branch", "T4", 900_000)), "branch: only the last tier is unbounded"),
        ((chain("branch", "T1", "staff"), bound("branch", "T3", 1)), "branch: tier bounds must increase"),
        ((chain("branch", "T4", "finance"), chain("branch", "T3", "staff")), "branch T3: ['staff'] cannot approve"),
        ((chain("branch", "T1", "staff", "staff"),), "branch T1: a role appears twice"),
        ((chain("branch", "T4", "finance"), no_limit("regional_manager")), "branch T2: no approval limit"),
    ],
)
def test_the_first_rule_broken_is_the_one_named(changes: tuple[Change, ...], message: str) -> None:
    assert refusal(*changes).startswith(message)


def test_origins_are_checked_in_the_policy_order() -> None:
    both = (chain("head_office", "T4", "finance"), chain("branch", "T4", "finance"))
    assert refusal(*both) == "branch: the top tier must need the CFO"
