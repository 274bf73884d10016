"""The bare floor, measured in the same run: a no-op Celery round trip and a trivial Flask request.

- Celery: a no-op task on its own queue, served by a worker started here with the services'
  Celery configuration (``shared.messaging.app.make_celery``), on the same Redis database;
  the client sends and polls the result every 2 ms, as the gateway waits for a reply.
- Flask: one route returning a small JSON body, served by gunicorn with the gateway's worker
  and thread counts, loaded by locust's FastHttpUser like the stages.

Run as a process: ``python -m load_tests.bench.baseline celery-worker`` (the bench's
environment) or ``python -m load_tests.bench.baseline flask --port P --workers W --threads T``.
"""

from __future__ import annotations

import argparse
import time
import uuid
from typing import TYPE_CHECKING, Any

from celery import Celery

if TYPE_CHECKING:
    from shared.config import Settings

NOOP_QUEUE = "bench-noop"
NOOP_TASK = "bench.noop"
POLL_SECONDS = 0.002  # the gateway's reply poll (services/gateway/bus.py)


def celery_app(settings: Settings | None = None) -> Celery:
    """The services' Celery configuration, with one no-op task on its own queue."""
    from shared.config import load_settings
    from shared.messaging.app import make_celery

    app = make_celery(settings or load_settings(), "bench-baseline")

    @app.task(name=NOOP_TASK)
    def noop(envelope: dict[str, Any]) -> dict[str, Any]:
        return {"status": 200, "body": {"echo": envelope.get("message_id")}}

    return app


def round_trip(app: Celery) -> float:
    """One no-op task sent and its result polled for; the seconds it took."""
    from celery.result import AsyncResult

    started = time.perf_counter()
    task_id = str(uuid.uuid4())
    app.send_task(NOOP_TASK, args=[{"message_id": task_id}], queue=NOOP_QUEUE, task_id=task_id)
    result = AsyncResult(task_id, app=app)
    deadline = started + 10
    while result.state != "SUCCESS":
        if time.perf_counter() > deadline:
            raise TimeoutError("no-op task not answered in 10 s")
        time.sleep(POLL_SECONDS)
    result.forget()
    return time.perf_counter() - started


def flask_app() -> Any:
    """A Flask app with one trivial JSON route."""
    from flask import Flask, jsonify

    app = Flask("bench-baseline")

    @app.get("/ping")
    def ping() -> Any:
        return jsonify(status="ok")

    return app


def serve_flask(port: int, workers: int, threads: int) -> None:
    """The trivial app under gunicorn, configured as ``pettycash.server`` configures the gateway."""
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            options = {
                "bind": f"127.0.0.1:{port}",
                "workers": workers,
                "threads": threads,
                "worker_class": "gthread",
                "accesslog": None,
                "graceful_timeout": 5,
                "timeout": 30,
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return flask_app()

    Server().run()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    worker = sub.add_parser("celery-worker")
    worker.add_argument("--concurrency", type=int, default=4)
    flask = sub.add_parser("flask")
    flask.add_argument("--port", type=int, required=True)
    flask.add_argument("--workers", type=int, default=2)
    flask.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    if args.what == "celery-worker":
        celery_app().worker_main(
            [
                "worker",
                f"--queues={NOOP_QUEUE}",
                "--hostname=bench-noop@%h",
                "--pool=threads",
                f"--concurrency={args.concurrency}",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
            ]
        )
    else:
        serve_flask(args.port, args.workers, args.threads)


# -- the client side (in the bench's process) -------------------------------------------


def _summary(latencies: list[float], seconds: float, concurrency: int) -> dict[str, Any]:
    from load_tests.bench.lags import percentiles

    stats = percentiles([1000 * x for x in latencies])
    return {
        "concurrency": concurrency,
        "p50_ms": stats.get("p50"),
        "p95_ms": stats.get("p95"),
        "per_second": round(len(latencies) / seconds, 1),
        "count": len(latencies),
    }


def measure_celery(settings: Settings, seconds: float, concurrency: int) -> dict[str, Any]:
    """No-op round trips: one client after another, then ``concurrency`` clients at once."""
    import gevent

    app = celery_app(settings)
    round_trip(app)  # connections and queues set up outside the measurement

    def loop(until: float, into: list[float]) -> None:
        while time.monotonic() < until:
            into.append(round_trip(app))

    results = {}
    for clients in (1, concurrency):
        latencies: list[float] = []
        started = time.monotonic()
        until = started + seconds
        gevent.joinall([gevent.spawn(loop, until, latencies) for _ in range(clients)])
        results[f"Celery no-op round trip ({'sequential' if clients == 1 else 'concurrent'})"] = _summary(
            latencies, time.monotonic() - started, clients
        )
    return results


def measure_flask(base_url: str, seconds: float, users: int) -> dict[str, Any]:
    """Trivial requests as fast as ``users`` locust users send them (FastHttpUser, no think time)."""
    import gevent
    from locust import constant, task
    from locust.contrib.fasthttp import FastHttpUser
    from locust.env import Environment

    if not base_url.startswith("http://127.0.0.1:"):
        raise RuntimeError(f"refusing to load anything but this machine: {base_url}")

    class Ping(FastHttpUser):
        wait_time = constant(0)

        @task
        def ping(self) -> None:
            self.client.get("/ping", name="GET /ping")

    results = {}
    for clients in (1, users):
        runner = Environment(user_classes=[Ping], host=base_url).create_local_runner()
        runner.start(clients, spawn_rate=clients)
        gevent.sleep(min(1.0, seconds))
        runner.stats.reset_all()
        started = time.monotonic()
        gevent.sleep(seconds)
        elapsed = time.monotonic() - started
        total = runner.stats.total
        runner.quit()
        results[f"Flask trivial request ({'sequential' if clients == 1 else 'concurrent'})"] = {
            "concurrency": clients,
            "p50_ms": total.get_response_time_percentile(0.5),
            "p95_ms": total.get_response_time_percentile(0.95),
            "per_second": round(total.num_requests / elapsed, 1),
            "count": total.num_requests,
            "failures": total.num_failures,
        }
    return results


if __name__ == "__main__":
    main()
