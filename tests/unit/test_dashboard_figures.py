"""The dashboard's arithmetic: days left at the trailing spend, the balance worked back day by
day from today's, spend by category."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

from services.gateway.dashboard import WINDOW_DAYS, _by_category, _history, days_left

TODAY = date(2026, 12, 3)


def test_days_left_is_the_margin_above_the_reorder_level_over_the_daily_spend() -> None:
    # 30,000 spent in 30 days: 1,000 a day; 25,000 above the level: 25 days.
    assert days_left(available=45_000, reorder_level=20_000, spent_in_window=30_000) == 25
    assert days_left(available=15_000, reorder_level=20_000, spent_in_window=30_000) == 0  # below it already
    assert days_left(available=45_000, reorder_level=None, spent_in_window=30_000) is None
    assert days_left(available=45_000, reorder_level=20_000, spent_in_window=0) is None


def day(on: date, funded: int = 0, spent: int = 0, by: dict[str, int] | None = None) -> SimpleNamespace:
    return SimpleNamespace(
        branch_id="b",
        currency="KES",
        day=on,
        funded_minor=funded,
        spent_minor=spent,
        body={"spent_by_category": by or {}},
    )


def test_the_history_ends_at_todays_balance_and_undoes_each_days_flows_going_back() -> None:
    floats = [{"balance": {"minor_units": 70_000, "currency": "KES"}}]
    days = [day(TODAY, spent=5_000), day(date(2026, 12, 1), funded=50_000, spent=1_000)]
    [kes] = _history(floats, days, TODAY)
    points = {p["day"]: p["balance"]["minor_units"] for p in kes["points"]}
    assert len(points) == WINDOW_DAYS
    assert points["2026-12-03"] == 70_000
    assert points["2026-12-02"] == 75_000  # before today's 5,000 went out
    assert points["2026-12-01"] == 75_000  # nothing moved on the 2nd
    assert points["2026-11-30"] == 26_000  # before the 50,000 came in and 1,000 went out


def test_spend_by_category_adds_the_days_up_largest_first() -> None:
    days = [day(TODAY, by={"fuel": 300, "meals": 100}), day(TODAY, by={"fuel": 200, "postage": 0})]
    assert [(c["category"], c["spent"]["minor_units"]) for c in _by_category(days)] == [("fuel", 500), ("meals", 100)]
