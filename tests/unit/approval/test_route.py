"""``route``: which tier and chain a submission gets, and when it was routed already."""

from __future__ import annotations

import pytest

from services.approval.domain import DEFAULT_POLICY, Refusal, Routing, Rule, StepKind, Submission, route
from tests.unit.approval.factories import a_submission


def routing_of(submission: Submission, routed_revision: int | None = None) -> Routing:
    verdict = route(submission, routed_revision, DEFAULT_POLICY)
    assert isinstance(verdict, Routing), verdict
    return verdict


@pytest.mark.parametrize(("routed", "revision"), [(1, 1), (2, 1), (3, 2)])
def test_a_revision_already_routed_is_refused(routed: int, revision: int) -> None:
    verdict = route(a_submission(revision=revision), routed, DEFAULT_POLICY)
    assert isinstance(verdict, Refusal)
    assert verdict.rule == Rule.ALREADY_ROUTED


@pytest.mark.parametrize(("routed", "revision"), [(None, 1), (1, 2), (1, 5)])
def test_a_first_or_newer_revision_is_routed(routed: int | None, revision: int) -> None:
    assert routing_of(a_submission(revision=revision), routed).tier == "T1"


@pytest.mark.parametrize(
    ("origin", "major", "tier", "chain"),
    [
        ("branch", 5_000, "T1", ("branch_manager",)),
        ("branch", 30_000, "T2", ("branch_manager", "regional_manager")),
        ("branch", 200_000, "T3", ("regional_manager", "finance")),
        ("branch", 300_000, "T4", ("finance", "cfo")),
        ("head_office", 30_000, "T2", ("finance",)),
        ("head_office", 300_000, "T4", ("finance", "cfo")),
    ],
)
def test_a_normal_request_walks_its_tier_chain(origin: str, major: int, tier: str, chain: tuple[str, ...]) -> None:
    assert routing_of(a_submission(origin=origin, major=major)) == Routing(
        tier, DEFAULT_POLICY.version, False, StepKind.APPROVE, chain
    )


@pytest.mark.parametrize(
    ("major", "tier", "final_approver"),
    [(5_000, "T1", "branch_manager"), (30_000, "T2", "regional_manager"), (200_000, "T3", "finance")],
)
def test_an_urgent_request_waits_only_for_its_final_approver(major: int, tier: str, final_approver: str) -> None:
    assert routing_of(a_submission(major=major, urgent=True)) == Routing(
        tier, DEFAULT_POLICY.version, True, StepKind.URGENCY_CONFIRMATION, (final_approver,)
    )


def test_an_urgent_request_in_the_top_tier_walks_the_whole_chain() -> None:
    assert routing_of(a_submission(major=300_000, urgent=True)) == Routing(
        "T4", DEFAULT_POLICY.version, False, StepKind.APPROVE, ("finance", "cfo")
    )
