"""The benchmark's pacing (``load_tests.bench.arrivals``): each user's task starts are a Poisson
process of the rate asked for, a slow answer neither slows the rate nor makes up for lost time
in a burst, and two users do not keep in step."""

from __future__ import annotations

import itertools
import math
import random
import statistics

from load_tests.bench.arrivals import poisson_throughput


class _User:
    """A locust user as the pacing sees it: an object to keep its plan on."""


def _starts(rate: float, seed: int, task_seconds: float, n: int = 4000) -> list[float]:
    """When a simulated user's tasks start: each takes ``task_seconds``, then it waits as told."""
    clock = [0.0]
    wait = poisson_throughput(rate, random.Random(seed), clock=lambda: clock[0])
    user, starts = _User(), []
    for _ in range(n):
        starts.append(clock[0])
        clock[0] += task_seconds
        clock[0] += wait(user)
    return starts


def test_the_gaps_between_starts_are_exponential_at_the_rate() -> None:
    starts = _starts(rate=2.0, seed=1, task_seconds=0.01)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    mean = statistics.mean(gaps)
    assert abs(mean - 0.5) < 0.03
    assert abs(statistics.pstdev(gaps) / mean - 1) < 0.08  # an exponential's spread equals its mean
    assert abs(sum(g < 0.5 for g in gaps) / len(gaps) - 0.632) < 0.03  # P(gap < mean) = 1 - 1/e


def test_a_slow_answer_starts_the_next_task_at_once_and_the_rate_stays_near() -> None:
    starts = _starts(rate=1.0, seed=2, task_seconds=0.3)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.3 - 1e-9  # never two at once: a late task starts as the answer comes
    # A gap is then at least the answer's 0.3 s: E[max(gap, 0.3)] = 0.3 + e^-0.3, about 1.04 s.
    assert abs(starts[-1] / len(starts) - (0.3 + math.exp(-0.3))) < 0.05


def test_two_users_are_not_in_step() -> None:
    a, b = _starts(1.0, seed=3, task_seconds=0.01), _starts(1.0, seed=4, task_seconds=0.01)
    phases = [round((x - y) % 1.0, 1) for x, y in zip(a[:500], b[:500], strict=True)]
    assert len(set(phases)) >= 9  # their starts meet at every offset, not at one
