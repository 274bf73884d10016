from __future__ import annotations

import random

from shared.backoff import exponential, full_jitter


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap() -> None:
    random.seed(7)
    for retries in range(10):
        ceiling = min(60.0, 0.5 * 2**retries)
        samples = [full_jitter(0.5, retries, 60.0) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8  # jitter spreads over the whole window


def test_exponential_doubles_from_the_base_up_to_the_cap() -> None:
    assert [exponential(0.5, n, 5.0) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_full_jitter_draws_between_zero_and_the_exponential_delay() -> None:
    assert full_jitter(1.0, 3, 60.0, lambda low, high: high) == 8.0
    assert full_jitter(1.0, 3, 60.0, lambda low, high: low) == 0.0
