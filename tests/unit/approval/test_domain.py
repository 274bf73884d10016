from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.approval.domain import (
    DEFAULT_POLICY,
    CaseFacts,
    Person,
    PolicyError,
    check_decider,
    due,
    eligible,
    fast_track_allowed,
    policy_from_dict,
)
from shared.contracts.money import Money

KES = lambda major: Money("KES", major * 100)


def person(uid: str, *roles: str, branches: tuple[str, ...] = (), regions: tuple[str, ...] = ()) -> Person:
    return Person(uid, uid, frozenset(roles), frozenset(branches), frozenset(regions))


FACTS = CaseFacts(requester_id="alice", branch_id="b1", region_id="r1", amount=KES(5_000))
BOB = person("bob", "branch_manager", branches=("b1",))
MARY = person("mary", "branch_manager", branches=("b2",))
RITA = person("rita", "regional_manager", branches=("b1",), regions=("r1",))
FIONA = person("fiona", "finance")
CAROL = person("carol", "cfo")
ADMIN = person("adam", "admin")


@pytest.mark.parametrize(
    ("major", "tier"),
    [(1, "T1"), (10_000, "T1"), (10_001, "T2"), (50_000, "T2"), (50_001, "T3"), (250_000, "T3"), (250_001, "T4")],
)
def test_tier_bounds_are_inclusive_in_major_units(major: int, tier: str) -> None:
    assert DEFAULT_POLICY.tier_for("branch", KES(major)).name == tier


def test_one_minor_unit_over_a_bound_is_the_next_tier() -> None:
    assert DEFAULT_POLICY.tier_for("branch", Money("KES", 10_000_01)).name == "T2"
    assert DEFAULT_POLICY.tier_for("branch", Money("JPY", 10_001)).name == "T2"  # JPY has no minor unit


def test_t4_needs_the_cfo_in_both_origins() -> None:
    for origin in ("branch", "head_office"):
        assert "cfo" in DEFAULT_POLICY.tier_for(origin, KES(10**7)).chain


def test_each_default_chain_role_has_a_limit_covering_its_tier() -> None:
    for tiers in DEFAULT_POLICY.tiers.values():
        for tier in tiers:
            top = KES(tier.up_to_major) if tier.up_to_major else KES(10**6)
            assert all(DEFAULT_POLICY.covers(role, top) for role in tier.chain), tier


def test_policy_round_trips_and_validates() -> None:
    assert policy_from_dict(1, DEFAULT_POLICY.to_dict()) == DEFAULT_POLICY


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["tiers"].pop(), "T1..Tn|unbounded|both origins"),
        (lambda d: d["tiers"][0]["chain"].append("branch_manager"), "appears twice"),
        (lambda d: d["tiers"][0]["chain"].append("staff"), "cannot approve"),
        (lambda d: d["tiers"][3].update(chain=["finance"]), "CFO"),
        (lambda d: d["limits"].pop("finance"), "no approval limit"),
        (lambda d: d["tiers"][1].update(up_to_major=5), "increase"),
        (lambda d: d["limits"].update(janitor=5), "unknown roles"),
    ],
)
def test_inconsistent_policies_are_refused(change: object, message: str) -> None:
    data = DEFAULT_POLICY.to_dict()
    change(data)  # type: ignore[operator]
    with pytest.raises(PolicyError, match=message):
        policy_from_dict(2, data)


def test_eligibility_is_scoped_and_excludes_requester_and_earlier_deciders() -> None:
    people = [BOB, MARY, RITA, FIONA, person("alice", "branch_manager", branches=("b1",))]
    assert eligible(people, "branch_manager", FACTS, DEFAULT_POLICY) == [BOB]
    assert eligible(people, "regional_manager", FACTS, DEFAULT_POLICY) == [RITA]
    assert eligible(people, "finance", FACTS, DEFAULT_POLICY) == [FIONA]
    after_bob = replace(FACTS, previous_deciders=frozenset({"bob"}))
    assert eligible(people, "branch_manager", after_bob, DEFAULT_POLICY) == []


def test_nobody_is_eligible_when_the_role_limit_is_below_the_amount() -> None:
    big = replace(FACTS, amount=KES(60_000))
    assert eligible([BOB], "branch_manager", big, DEFAULT_POLICY) == []


def test_the_expected_approver_may_act() -> None:
    assert check_decider(BOB, "branch_manager", False, FACTS, DEFAULT_POLICY) == ("branch_manager", None)


@pytest.mark.parametrize(
    ("actor", "step_role", "admin_may_act", "facts", "rule"),
    [
        (person("alice", "branch_manager", branches=("b1",)), "branch_manager", False, FACTS, "self-approval"),
        (MARY, "branch_manager", False, FACTS, "not-the-expected-approver"),
        (FIONA, "branch_manager", False, FACTS, "not-the-expected-approver"),
        (ADMIN, "branch_manager", False, FACTS, "not-the-expected-approver"),
        (
            BOB,
            "branch_manager",
            False,
            replace(FACTS, previous_deciders=frozenset({"bob"})),
            "approver-already-in-chain",
        ),
        (BOB, "branch_manager", False, replace(FACTS, amount=KES(60_000)), "approver-limit-exceeded"),
    ],
)
def test_invariants_name_the_rule_that_refused(
    actor: Person, step_role: str, admin_may_act: bool, facts: CaseFacts, rule: str
) -> None:
    acting, refusal = check_decider(actor, step_role, admin_may_act, facts, DEFAULT_POLICY)
    assert acting == ""
    assert refusal is not None
    assert refusal.rule == rule


def test_an_admin_acts_only_on_an_escalated_step() -> None:
    assert check_decider(ADMIN, "branch_manager", True, FACTS, DEFAULT_POLICY) == ("admin", None)


def test_fast_track_is_never_for_the_top_tier() -> None:
    for origin in ("branch", "head_office"):
        tiers = DEFAULT_POLICY.tiers[origin]
        assert [fast_track_allowed(True, t, DEFAULT_POLICY) for t in tiers] == [True, True, True, False]
        assert not any(fast_track_allowed(False, t, DEFAULT_POLICY) for t in tiers)


def test_sla_is_shorter_for_urgent_requests() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert due(start, False, DEFAULT_POLICY) == start + timedelta(hours=24)
    assert due(start, True, DEFAULT_POLICY) == start + timedelta(hours=2)
