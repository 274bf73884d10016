"""Fixtures of the gateway-path tests: the rig (see :mod:`tests.integration.gateway_path.rig`) and its gateways."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
from sqlalchemy import update
from sqlalchemy.engine import make_url

from shared.config import Settings
from shared.db.engine import Database
from shared.db.migrate import upgrade
from shared.db.types import utcnow
from shared.messaging.tables import outbox
from tests.integration.gateway_path.netproxy import TcpProxy
from tests.integration.gateway_path.rig import OWN_REQUISITION_DB, Rig, ThrowawayRedis, recreate_database
from tests.support import Api


@pytest.fixture(scope="package")
def rig(
    settings: Settings, test_env: dict[str, str], tokens: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Rig]:
    log_dir = tmp_path_factory.mktemp("gateway-path")
    redis_server = ThrowawayRedis(log_dir / "redis-server.log")
    redis_server.start()
    gateway_db = make_url(settings.database_url("gateway"))
    # Named after this session's databases (their prefix keeps concurrent test sessions apart).
    own_name = (gateway_db.database or "").removesuffix("gateway") + OWN_REQUISITION_DB
    own_db = gateway_db.set(database=own_name)
    recreate_database(settings.database_url("gateway"), own_name)
    upgrade("services.requisition", own_db.render_as_string(hide_password=False))
    requisitions = Database(own_db.render_as_string(hide_password=False))
    redis_proxy = TcpProxy("127.0.0.1", redis_server.port)
    pg_proxy = TcpProxy(gateway_db.host or "127.0.0.1", gateway_db.port or 5432, postgres=True)
    env = dict(test_env)
    rig = Rig(settings, env, log_dir, redis_server, redis_proxy, pg_proxy, requisitions)
    started = utcnow()
    try:
        rig.start_worker()
        yield rig
    finally:
        rig.stop_gateways()
        rig.stop_worker()
        _settle_commands_sent_since(settings, started)
        redis_proxy.close()
        pg_proxy.close()
        redis_server.kill()
        requisitions.dispose()


def _settle_commands_sent_since(settings: Settings, started: datetime) -> None:
    """The rig's gateways track their commands in this session's gateway outbox, for re-sending
    until acknowledged; their worker is gone now, so mark them done, or the session's relay
    would later re-send them to the shared stack's workers (a requisition out of nowhere)."""
    db = Database(settings.database_url("gateway"))
    try:
        with db.uow() as uow:
            unacknowledged = outbox.c.acked_at.is_(None), outbox.c.created_at >= started
            uow.session.execute(update(outbox).where(*unacknowledged).values(acked_at=utcnow()))
            uow.commit()
    finally:
        db.dispose()


@pytest.fixture
def gateway(rig: Rig) -> Iterator[Callable[..., Api]]:
    """Start gateways for this test (``gateway(PETTYCASH_COMMAND_WAIT_SECONDS="0.2")``); all stop at its end."""
    yield rig.start_gateway
    rig.stop_gateways()
    # A test may leave a link cut or Redis down: the next one starts whole.
    rig.redis_proxy.restore()
    rig.pg_proxy.restore()
    if rig.redis_server.process is None or rig.redis_server.process.poll() is not None:
        rig.redis_server.start()
