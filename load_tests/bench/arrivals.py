"""How the stages' users pace themselves: as people do, each on their own.

locust's ``constant_throughput`` starts a user's task once a second from the start of its last
one, so the users' phases never move. Once a slow warm-up has lined them up (each started again
as its answer came), they stay in step: the benchmark's 10 reports a second arrived as ten at
once each second (nine in ten of them inside the same 0.2 s), queueing at the worker that
computes them. Requests from separate people are independent; this pacing gives each user the
start times of a Poisson process, so the stage's requests arrive as one of the summed rate.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any


def poisson_throughput(
    rate: float, rng: random.Random | None = None, clock: Callable[[], float] = time.monotonic
) -> Callable[[Any], float]:
    """A locust ``wait_time``: the user's tasks start ``rate`` times a second on average, the
    gaps between their planned starts drawn from the exponential distribution.

    Planned starts are counted on from the last plan, not from when the task ended, so a slow
    answer does not slow the rate; a user whose answer came after its next planned start
    starts at once and plans on from then (it does not make up the time it lost in a burst).
    """
    draw = rng or random.Random()  # noqa: S311 - arrival times, not secrets

    def wait_time(user: Any) -> float:
        now = clock()
        planned = getattr(user, "_planned_start", now) + draw.expovariate(rate)
        user._planned_start = max(planned, now)
        return float(user._planned_start - now)

    return wait_time
