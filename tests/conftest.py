"""Session-wide fixtures: real PostgreSQL and Redis, migrated databases, the running stack.

Where the backing services come from, in order:
1. ``PETTYCASH_TEST_POSTGRES_URL`` / ``PETTYCASH_TEST_REDIS_URL`` when set (``make test``
   sets them to this machine's local services);
2. containers started by testcontainers when a Docker engine answers;
3. PostgreSQL and Redis on 127.0.0.1 at their default ports.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import redis

from shared.config import DATABASES, Settings, load_settings
from shared.db.engine import Database
from tests.support import Api, Stack, database_template, free_port, fresh_databases, scalar, wait_for

# Overridable so two test sessions on one machine (two checkouts, two engineers) keep apart.
DB_PREFIX = os.environ.get("PETTYCASH_TEST_DB_PREFIX", "pettycash_test_")
REDIS_DB = int(os.environ.get("PETTYCASH_TEST_REDIS_DB", "15"))


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def backing() -> Iterator[dict[str, str]]:
    """Base URLs of the PostgreSQL server and the Redis server the tests run on."""
    pg = os.environ.get("PETTYCASH_TEST_POSTGRES_URL")
    rd = os.environ.get("PETTYCASH_TEST_REDIS_URL")
    with ExitStack() as stack:
        if not (pg and rd) and _docker_available():
            from testcontainers.postgres import PostgresContainer
            from testcontainers.redis import RedisContainer

            postgres = stack.enter_context(PostgresContainer("postgres:16", driver="psycopg"))
            redis_c = stack.enter_context(RedisContainer("redis:7"))
            pg = pg or postgres.get_connection_url()
            rd = rd or f"redis://{redis_c.get_container_host_ip()}:{redis_c.get_exposed_port(6379)}"
        yield {
            "postgres": pg or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
            "redis": (rd or "redis://127.0.0.1:6379").rstrip("/"),
        }


@pytest.fixture(scope="session")
def tmp_var(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("var")


@pytest.fixture(scope="session")
def test_env(backing: dict[str, str], tmp_var: Path) -> dict[str, str]:
    """The environment every process of the test stack gets."""
    template = database_template(backing["postgres"], DB_PREFIX)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETTYCASH_")}
    env.update(
        PETTYCASH_ENV="test",
        PETTYCASH_VAR_DIR=str(tmp_var),
        PETTYCASH_DATABASE_URL=template,
        PETTYCASH_BROKER_URL=f"{backing['redis']}/{REDIS_DB}",
        PETTYCASH_GATEWAY_PORT=str(free_port()),
        PETTYCASH_VISIBILITY_TIMEOUT="5",
        PETTYCASH_REDELIVERY_SECONDS="3",
        PETTYCASH_RETRY_BACKOFF_SECONDS="0.05",
        PETTYCASH_PAYMENT_RETRY_BASE_SECONDS="0.2",
        PETTYCASH_WORKER_CONCURRENCY="4",
        # Every test signs in from 127.0.0.1: the per-address and per-account limits are
        # tested on gateways of their own (tests/integration/test_sign_in_limits.py).
        PETTYCASH_RATE_LIMIT_SIGN_IN_ADDRESS="1000/minute",
        PETTYCASH_RATE_LIMIT_SIGN_IN_ACCOUNT="1000/minute",
        # Cheap password hashes (the parameters are production's in the rehash test).
        PETTYCASH_ARGON2_TIME_COST="1",
        PETTYCASH_ARGON2_MEMORY_KIB="8192",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(scope="session")
def settings(test_env: dict[str, str], backing: dict[str, str]) -> Settings:
    """Fresh, migrated databases and an empty Redis database; the settings that point at them."""
    cfg = load_settings(test_env)
    fresh_databases(backing["postgres"], DB_PREFIX, cfg)
    redis.Redis.from_url(cfg.broker_url).flushdb()
    return cfg


@pytest.fixture(scope="session")
def dbs(settings: Settings) -> Iterator[dict[str, Database]]:
    """Direct handles on every database, for test setup and as the oracle of assertions."""
    handles = {name: Database(settings.database_url(name)) for name in DATABASES}
    yield handles
    for db in handles.values():
        db.dispose()


@pytest.fixture(scope="session")
def tokens(dbs: dict[str, Database]) -> dict[str, str]:
    """Bearer tokens of the demo users, by username."""
    from services.gateway import identity

    with dbs["gateway"].uow() as uow:
        created = identity.seed_demo(uow.session)
        uow.commit()
    assert created, "the test gateway database should start empty"
    return created


@pytest.fixture(scope="session")
def stack(
    settings: Settings, test_env: dict[str, str], tmp_var: Path, tokens: dict[str, str], dbs: dict[str, Database]
) -> Iterator[Stack]:
    """The whole system: four workers, the relay and the gateway, as separate processes."""
    log_dir = tmp_var / "logs"
    log_dir.mkdir(exist_ok=True)
    running = Stack(dict(test_env), log_dir).start()
    # The approval service routes by its directory of users; wait until it has them all.
    users = scalar(dbs["gateway"], "SELECT count(*) FROM users")
    wait_for(lambda: scalar(dbs["approval"], "SELECT count(*) FROM approvers") >= users, 30, what="the directory")
    yield running
    running.stop()


@pytest.fixture
def api(stack: Stack) -> Api:
    return Api(stack.base_url)
