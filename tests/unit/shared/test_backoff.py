from __future__ import annotations

import random

from shared.messaging.runtime import backoff_seconds


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap() -> None:
    random.seed(7)
    for retries in range(10):
        ceiling = min(60.0, 0.5 * 2**retries)
        samples = [backoff_seconds(0.5, retries) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8  # jitter spreads over the whole window
