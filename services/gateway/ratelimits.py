"""Rate limits, kept in Redis (``limits``, the library under Flask-Limiter), answered 429 with
``Retry-After``.

The rules are named in ``shared.config.RATE_LIMITS`` and set by ``PETTYCASH_RATE_LIMIT_<NAME>``:
sign-in attempts per account and per client address, password-reset requests, one-time codes
per user, and every caller's requests per minute (per API token, or per signed-in user). The
counters live in Redis so every gateway process shares them; in embedded mode (no Redis) each
process counts in memory.

A refusal is a security event, recorded once per rule and key per minute however many
requests it refuses, so a flood of refused requests cannot flood the event table.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

from flask import Response
from limits import RateLimitItem, parse, parse_many
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from services.gateway import problems
from services.gateway.auth import TOKEN, Principal
from services.gateway.security import EventType, SecurityLog

# At most one security event per refused (rule, key) per minute.
EVENT_THROTTLE = parse("1/minute")


class RateLimits:
    """The configured rules over one counter store."""

    def __init__(self, rules: Mapping[str, str], storage_url: str, security: SecurityLog) -> None:
        self.rules: dict[str, list[RateLimitItem]] = {name: parse_many(rule) for name, rule in rules.items()}
        # Redis errors surface (a 503 like any outage) rather than letting requests through unchecked.
        self.limiter = SlidingWindowCounterRateLimiter(storage_from_string(storage_url))
        self.security = security

    def retry_after(self, name: str, *keys: str) -> int | None:
        """Count one request against rule ``name`` for ``keys``; seconds to wait if it is over."""
        for item in self.rules[name]:
            if not self.limiter.hit(item, name, *keys):
                reset = self.limiter.get_window_stats(item, name, *keys).reset_time
                return max(1, math.ceil(reset - time.time()))
        return None

    def check(self, name: str, *keys: str, what: str = "requests") -> Response | None:
        """None while under the rule; else 429 with ``Retry-After`` (and a throttled security event)."""
        wait = self.retry_after(name, *keys)
        if wait is None:
            return None
        if self.limiter.hit(EVENT_THROTTLE, "event", name, *keys):
            self.security.record(EventType.RATE_LIMITED, rule=name, key=":".join(keys))
        response = problems.problem(
            429, "rate-limited", f"Too many {what}; try again in {wait} seconds.", retry_after=wait, rule=name
        )
        response.headers["Retry-After"] = str(wait)
        return response

    def check_caller(self, principal: Principal) -> Response | None:
        """Every authenticated request counts against its caller (token, or signed-in user)."""
        key = f"token:{principal.token_id}" if principal.via == TOKEN else f"user:{principal.actor.user_id}"
        return self.check("api_token", key)
