"""The production-like stack under test: every role of ``pettycash.supervisor.roles`` a process of its own.

The roles come from the supervisor (so a role added there, such as the gateway's projector,
is benchmarked too); only the gateway's gunicorn worker and thread counts are the bench's
choice. Everything runs on this machine: its own PostgreSQL databases (``pettycash_bench_*``),
``PETTYCASH_ENV=production`` with random keys for this run, and its own Redis server, started
with production's settings (append-only file, ``noeviction``) on a free loopback port.

Why its own Redis server rather than a database number on the shared one: test sessions
choose their Redis database freely (``PETTYCASH_TEST_REDIS_DB``), and a test stack's workers
on the same number would consume the bench's messages. A server of its own also makes the
broker's CPU this run's alone. ``--redis-url`` points the bench at a shared server instead.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import functools
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import psutil
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from pettycash.components import migrate_all
from pettycash.server import THREADS, WORKERS
from pettycash.supervisor import Child, roles, stop_all
from shared.config import DATABASES, RATE_LIMITS, SERVICES, Settings, load_settings
from shared.contracts.catalog import TASKS

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
PR_SET_PDEATHSIG = 1
WORKER_READY = "ready."
# The sign-in rate limits (shared.config.RATE_LIMITS) lifted for the bench's stack; the others stay production's.
# Each service's query worker (docker-compose.yml's ``queries-*``). Two threads: a prefork pool of
# two processes measured worse here (reports p95 320 ms against 280 ms: its hand-off to a child
# costs more than the interpreter the threads share).
QUERY_POOL = ["--concurrency", "2"]
SIGN_IN_LIMITS = {name: "1000000/minute" for name in RATE_LIMITS if name.startswith("sign_in_")}


@dataclass(frozen=True)
class StackOptions:
    """Where the stack's data lives and how big its gateway is."""

    db_prefix: str = "pettycash_bench_"
    gunicorn_workers: int = WORKERS
    gunicorn_threads: int = THREADS
    worker_concurrency: int = 4
    postgres_url: str = f"postgresql+psycopg://postgres@{LOOPBACK}:5432/postgres"
    # The broker: redis://127.0.0.1:PORT/DB. Empty: a Redis server of the run's own (see above).
    redis_url: str = ""

    def __post_init__(self) -> None:
        # The benchmark sends traffic to this machine only, whatever it is told.
        for url in filter(None, (self.postgres_url, self.redis_url)):
            if make_url(url.replace("redis://", "redis+x://", 1)).host not in (LOOPBACK, "localhost"):
                raise ValueError(f"the benchmark only talks to 127.0.0.1, not {url!r}")

    @property
    def broker_url(self) -> str:
        if not self.redis_url:
            raise RuntimeError("the run's own Redis server is not started yet")
        return self.redis_url

    def database_template(self) -> str:
        marker = "SERVICEMARKER"
        server = make_url(self.postgres_url).set(database=self.db_prefix + marker)
        return server.render_as_string(hide_password=False).replace(marker, "{service}")


def free_port() -> int:
    """A TCP port nobody listens on right now, on the loopback interface."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def fernet_key() -> str:
    """A fresh Fernet key (the OTP secrets of this run are sealed with it)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def bench_env(options: StackOptions, var_dir: Path) -> dict[str, str]:
    """The environment of every process of the stack: production mode, this run's keys and stores."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETTYCASH_")}
    env.update(
        PETTYCASH_ENV="production",
        PETTYCASH_SECRET_KEY=secrets.token_urlsafe(32),
        PETTYCASH_OTP_ENCRYPTION_KEY=fernet_key(),
        PETTYCASH_VAR_DIR=str(var_dir),
        PETTYCASH_DATABASE_URL=options.database_template(),
        PETTYCASH_BROKER_URL=options.broker_url,
        PETTYCASH_GATEWAY_HOST=LOOPBACK,
        PETTYCASH_GATEWAY_PORT=str(free_port()),
        PETTYCASH_WORKER_CONCURRENCY=str(options.worker_concurrency),
        # The pages stage signs in a hundred users from 127.0.0.1 within seconds: production's
        # limits per address and per account (shared.config.RATE_LIMITS) would refuse most.
        **{f"PETTYCASH_RATE_LIMIT_{name.upper()}": rule for name, rule in SIGN_IN_LIMITS.items()},
        PYTHONUNBUFFERED="1",
    )
    return env


def recreate_databases(options: StackOptions, settings: Settings) -> None:
    """Drop and recreate every ``pettycash_bench_*`` database, then migrate each to its newest revision."""
    admin = create_engine(make_url(options.postgres_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for name in DATABASES:
                database = options.db_prefix + name
                conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{database}"'))
    finally:
        admin.dispose()
    migrate_all(settings)


def flush_redis(options: StackOptions) -> None:
    """Empty the bench's Redis database (queues and results of an earlier run)."""
    import redis

    redis.Redis.from_url(options.broker_url).flushdb()


def start_redis(work: Path, log_dir: Path) -> tuple[Child, str]:
    """A Redis server of this run's own, configured as production's (docker-compose.yml); its URL."""
    import redis

    port = free_port()
    data = work / "redis"
    data.mkdir(parents=True, exist_ok=True)
    argv = ["redis-server", "--bind", LOOPBACK, "--port", str(port), "--dir", str(data), "--save", ""]
    argv += ["--appendonly", "yes", "--appendfsync", "everysec", "--maxmemory-policy", "noeviction"]
    child = spawn("redis-server", argv, os.environ, log_dir / "redis-server.log")
    url = f"redis://{LOOPBACK}:{port}/0"
    deadline = time.monotonic() + 20
    while True:
        if child.process.poll() is not None:
            raise RuntimeError(f"redis-server exited: {(log_dir / 'redis-server.log').read_text()[-2000:]}")
        with contextlib.suppress(redis.exceptions.ConnectionError):
            if redis.Redis.from_url(url).ping():
                return child, url
        if time.monotonic() > deadline:
            stop_all([child])
            raise RuntimeError("redis-server did not answer")
        time.sleep(0.05)


def drop_databases(options: StackOptions) -> None:
    """Drop the run's databases (the smoke run leaves nothing behind)."""
    admin = create_engine(make_url(options.postgres_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for name in DATABASES:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{options.db_prefix + name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _die_with_parent() -> None:
    # The kernel sends SIGTERM to the child if the bench dies without cleaning up (kill -9).
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(name: str, argv: list[str], env: Mapping[str, str], log_path: Path) -> Child:
    """Start one process in its own process group, its output in ``log_path``."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            argv,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, safe before exec
        )
    return Child(name, process)


def http_ok(url: str) -> bool:
    """Whether a loopback URL answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own loopback URL
            return bool(response.status == 200)
    except OSError:
        return False


@dataclass
class Stack:
    """The running roles; a context manager that stops every process group it started."""

    env: dict[str, str]
    log_dir: Path
    options: StackOptions
    children: list[Child] = field(default_factory=list)
    readiness: dict[str, str] = field(default_factory=dict)
    # Processes of the run that are not roles but whose CPU counts (its own Redis server).
    companions: dict[str, psutil.Process] = field(default_factory=dict)

    @functools.cached_property
    def settings(self) -> Settings:
        return load_settings(self.env)

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.env['PETTYCASH_GATEWAY_PORT']}"

    def role_argv(self) -> list[tuple[str, list[str]]]:
        """Every role's ``pettycash`` arguments, the gateway's with this run's gunicorn sizes, and
        each service's worker split as ``docker-compose.yml`` splits it: commands and events in
        one process, queries (reports, exports) in another, jobs (the payment service's) in a third."""
        argv = []
        gateway = ["--workers", str(self.options.gunicorn_workers), "--threads", str(self.options.gunicorn_threads)]
        for name, args in roles(self.settings):
            if args[:1] == ["gateway"]:
                argv.append((name, ["gateway", *gateway]))
            elif args[:1] == ["worker"] and args[1] in SERVICES:
                argv.append((name, [*args, "--only", "events"]))
                argv.append((f"queries-{args[1]}", [*args, "--only", "queries", *QUERY_POOL]))
                if any(t.kind == "job" and t.service == args[1] for t in TASKS):
                    argv.append((f"jobs-{args[1]}", [*args, "--only", "jobs"]))
            else:
                argv.append((name, args))
        return argv

    def start(self) -> Self:
        """Start every role and wait until each is ready (workers consuming, the gateway answering)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        workers = []
        for name, args in self.role_argv():
            child = spawn(name, [sys.executable, "-m", "pettycash", *args], self.env, self.log_dir / f"{name}.log")
            self.children.append(child)
            if args[0] == "worker":
                workers.append(child)
        deadline = time.monotonic() + 90
        for child in workers:
            self._wait(lambda c=child: WORKER_READY in self.log(c.name), deadline, child.name)
        self._wait(lambda: http_ok(f"{self.base_url}/healthz"), deadline, "gateway")
        self.readiness["seconds"] = f"{time.monotonic() - started:.1f}"
        return self

    def _wait(self, ready: Callable[[], bool], deadline: float, what: str) -> None:
        while True:
            dead = next((c for c in self.children if c.process.poll() is not None), None)
            if dead is not None:
                raise RuntimeError(f"{dead.name} exited with {dead.process.returncode}:\n{self.log(dead.name)[-3000:]}")
            if ready():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} was not ready in time:\n{self.log(what)[-3000:]}")
            time.sleep(0.1)

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def check_alive(self) -> None:
        """Fail loudly if a role died during a stage (its numbers would be meaningless)."""
        for child in self.children:
            if child.process.poll() is not None:
                raise RuntimeError(f"{child.name} died (exit {child.process.returncode}); see {self.log_dir}")

    def processes(self) -> dict[str, psutil.Process]:
        """Each role's leading process (its children, e.g. gunicorn's workers, hang below it)."""
        return {c.name: psutil.Process(c.process.pid) for c in self.children if c.process.poll() is None}

    def stop(self) -> None:
        stop_all(self.children)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
