"""Backoff: how long to wait before the next attempt, in one place for every retry loop.

Exponential growth with a cap, and, where many clients retry at once, full jitter (AWS
Architecture Blog, "Exponential Backoff And Jitter"): a uniform draw in [0, the exponential
delay], so retries spread out instead of arriving in step.
"""

from __future__ import annotations

import random
from collections.abc import Callable

Uniform = Callable[[float, float], float]


def exponential(base: float, attempt: int, cap: float) -> float:
    """``base`` doubled ``attempt`` times (0: ``base`` itself), at most ``cap``."""
    return min(cap, base * 2**attempt)


def full_jitter(base: float, attempt: int, cap: float, uniform: Uniform = random.uniform) -> float:
    """Uniform in [0, :func:`exponential`]; ``uniform`` is a parameter so tests can fix it."""
    return uniform(0.0, exponential(base, attempt, cap))
