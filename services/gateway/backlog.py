"""How far behind the services are: queue depths from the broker, projection lag from the projections.

The gateway refuses new work (503 with ``Retry-After``) while any service's queue is deeper
than ``PETTYCASH_MAX_QUEUE_DEPTH``, instead of answering 201 to work the pipeline cannot
finish; operators read both figures at ``GET /api/v1/system/status``.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from datetime import timedelta
from typing import Any

import redis

from services.gateway.readmodels import lag_seconds
from shared.config import DATABASES, Settings
from shared.contracts.catalog import queues_of
from shared.db.engine import Database
from shared.db.types import utcnow

log = logging.getLogger(__name__)

REFRESH_SECONDS = 1.0
RETRY_AFTER_SECONDS = 5


class Backlog:
    """Queue depths, read from Redis at most once a second per process (embedded broker: none)."""

    def __init__(self, settings: Settings) -> None:
        self.limit = settings.max_queue_depth
        self._redis = None if settings.embedded else redis.Redis.from_url(settings.broker_url, socket_timeout=0.5)
        self._lock = threading.Lock()
        self._read_at = 0.0
        self._depths: dict[str, int] = {}

    def depths(self) -> dict[str, int]:
        """Messages waiting in each queue (commands and events; and the query queues)."""
        if self._redis is None:
            return {}
        with self._lock:
            if time.monotonic() - self._read_at >= REFRESH_SECONDS:
                queues = [q for s in DATABASES for q in queues_of(s)]
                try:
                    with self._redis.pipeline(transaction=False) as pipe:
                        for queue in queues:
                            pipe.llen(queue)
                        self._depths = dict(zip(queues, (int(n) for n in pipe.execute()), strict=True))
                except redis.RedisError:
                    log.warning("could not read queue depths", exc_info=True)
                self._read_at = time.monotonic()
            return dict(self._depths)

    def behind(self) -> str | None:
        """The queue that is past the bound, if one is."""
        for queue, depth in self.depths().items():
            if depth > self.limit:
                return queue
        return None


def status(backlog: Backlog, db: Database, window: timedelta = timedelta(minutes=1)) -> dict[str, Any]:
    """Queue depths and the projection lag (publish to projection) over the last ``window``."""
    with db.uow() as uow:
        lags = sorted(lag_seconds(uow.session, utcnow() - window))
    lag: dict[str, Any] = {"samples": len(lags), "p50_ms": None, "p95_ms": None, "max_ms": None}
    if lags:
        cut = statistics.quantiles(lags, n=20)[-1] if len(lags) > 1 else lags[0]
        lag.update(p50_ms=round(statistics.median(lags) * 1000, 1), p95_ms=round(cut * 1000, 1))
        lag["max_ms"] = round(lags[-1] * 1000, 1)
    return {"queues": backlog.depths(), "queue_limit": backlog.limit, "projection_lag": lag}
