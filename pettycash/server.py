"""The gateway under gunicorn, configured from code (no config file to drift)."""

from __future__ import annotations

import logging
import os
from typing import Any

from gunicorn.app.base import BaseApplication

from shared.config import Settings
from shared.heap import freeze_startup_heap

log = logging.getLogger(__name__)

# Seconds an idle keep-alive connection stays open. gunicorn's default (2 s) closes a connection
# between two requests of any client that pauses to think, and the client's next request on it
# fails. It must also outlast the idle timeout of a proxy that pools connections to us (nginx's
# upstream keepalive_timeout, 60 s by default), so the proxy, not gunicorn, closes an idle one:
# otherwise nginx may send a request on a connection gunicorn is closing, and answer 502.
# Idle connections cost the gthread worker a socket in its poller, not a thread.
KEEPALIVE_SECONDS = 75


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from services.gateway.app import create_app

        return create_app(self.settings)


def _settle(worker: Any) -> None:
    """Once a worker has loaded the app: its connections opened, what it loaded frozen."""
    try:
        worker.wsgi.extensions["pettycash"].warm()
    except Exception:  # the database or Redis away at start: the first requests open them
        log.warning("gateway worker %s could not open its connections yet", os.getpid(), exc_info=True)
    freeze_startup_heap()


# gunicorn processes and threads per process, chosen by `make bench`'s dashboard reads at 500
# users on this 2-core machine, p95: 4 x 4 39, 44 and 49 ms (three runs); 2 x 8 78, 83 and
# 110 ms (three runs); 6 x 3 44 and 72 ms; 3 x 6 61 ms; 1 x 16 250 ms; the same throughput in
# all. The GIL lets one process use about one core, and a request is mostly Python (JSON,
# marshmallow, SQLAlchemy), so four processes keep both cores busy while threads cover the
# time each request waits on PostgreSQL or a service's reply; the total of 16 threads bounds
# commands waiting at once.
WORKERS = 4
THREADS = 4


def serve(settings: Settings, workers: int = WORKERS, threads: int = THREADS) -> None:
    """Serve the gateway on the configured host and port until stopped."""
    _Gunicorn(settings, options(settings, workers, threads)).run()


def options(settings: Settings, workers: int = WORKERS, threads: int = THREADS) -> dict[str, Any]:
    """gunicorn's settings for the gateway."""
    return {
        "bind": f"{settings.gateway_host}:{settings.gateway_port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "accesslog": "-",
        "graceful_timeout": 5,
        "timeout": 30,
        "keepalive": KEEPALIVE_SECONDS,
        # Once a worker has loaded the app (each loads its own: nothing is preloaded).
        "post_worker_init": _settle,
    }
