"""The migrations build exactly the schema the models describe, on PostgreSQL and on SQLite.

Every service's database holds two Alembic branches: the service's own history and the
messaging history shared by all (``shared/messaging/migrations``). ``compare_metadata``
against the service's metadata plus the messaging tables catches drift between a model and
the migrations: a column, index or table added to one and not the other fails here.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, create_engine, inspect, text
from sqlalchemy.engine import make_url

from pettycash.components import migrate_all
from shared.config import DATABASES, load_settings
from shared.db.migrate import MigrationError, alembic_config, upgrade
from shared.messaging.tables import metadata as messaging_metadata

# Apart from the session's own databases, and from other sessions' (see tests/conftest.py).
DB_PREFIX = os.environ.get("PETTYCASH_TEST_DB_PREFIX", "pettycash_test_") + "mig_"


def target_metadata(service: str) -> list[MetaData]:
    """What the database of ``service`` should hold: its models and the messaging tables."""
    models = importlib.import_module(f"services.{service}.models")
    if service == "gateway":
        importlib.import_module("services.gateway.readmodels")  # registers the rm_* tables
    return [models.metadata, messaging_metadata]


def inspect_db(url: str, look: Any) -> Any:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return look(conn)
    finally:
        engine.dispose()


def drift(service: str, url: str) -> list[Any]:
    return inspect_db(url, lambda conn: compare_metadata(MigrationContext.configure(conn), target_metadata(service)))


def tables(url: str) -> set[str]:
    return set(inspect_db(url, lambda conn: inspect(conn).get_table_names()))


def stamped(url: str) -> set[str]:
    return set(inspect_db(url, lambda conn: MigrationContext.configure(conn).get_current_heads()))


def heads(service: str, url: str) -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config(f"services.{service}", url)).get_heads())


def round_trip(service: str, url: str) -> None:
    """Upgrade gives the models' schema; downgrade to base leaves nothing; upgrade again works."""
    upgrade(f"services.{service}", url)
    assert len(heads(service, url)) == 2  # the service's branch and the messaging branch
    assert stamped(url) == heads(service, url)
    assert drift(service, url) == []

    command.downgrade(alembic_config(f"services.{service}", url), "base")
    assert tables(url) == {"alembic_version"}
    assert stamped(url) == set()

    upgrade(f"services.{service}", url)
    assert stamped(url) == heads(service, url)
    assert drift(service, url) == []


@pytest.fixture
def fresh_database(backing: dict[str, str], service: str) -> Iterator[str]:
    """The URL of a PostgreSQL database that does not exist yet (``upgrade`` creates it)."""
    url = make_url(backing["postgres"]).set(database=DB_PREFIX + service)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))

    try:
        drop()
        yield url.render_as_string(hide_password=False)
        drop()
    finally:
        admin.dispose()


@pytest.mark.parametrize("service", DATABASES)
def test_postgresql_schema_is_the_models_and_comes_down_clean(service: str, fresh_database: str) -> None:
    round_trip(service, fresh_database)


def test_embedded_mode_sqlite_schema_is_the_models_and_comes_down_clean(tmp_path: Path) -> None:
    # SQLite type reflection is coarse, but compare_metadata still finds nothing to report here,
    # so the whole comparison (tables, columns, types, nullability, indexes) applies as on PostgreSQL.
    settings = load_settings({"PETTYCASH_VAR_DIR": str(tmp_path)})
    migrate_all(settings)  # what `pettycash run` does on embedded defaults
    for service in DATABASES:
        url = settings.database_url(service)
        assert make_url(url).get_backend_name() == "sqlite"
        assert drift(service, url) == []
        round_trip(service, url)


def test_a_database_of_the_histories_before_the_squash_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('0004')"))
    engine.dispose()
    with pytest.raises(MigrationError, match="0004"):
        upgrade("services.ledger", url)
    assert tables(url) == {"alembic_version"}  # nothing was changed
