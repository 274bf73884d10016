"""Alembic, driven from code: each service migrates its own database.

A service's database holds two independent Alembic branches, recorded in its one
``alembic_version`` table:

- the service's own tables, in ``services/<name>/migrations/versions/`` (branch label ``<name>``);
- the messaging tables every service keeps (outbox, acknowledgements, inbox, dead letters,
  read-model versions), in ``shared/messaging/migrations/versions/`` (branch label
  ``messaging``), written once and applied to every database.

:func:`upgrade` takes both to their heads. Each history was squashed into one initial
revision before the first release (no database outside development and tests existed);
a database stamped with a revision of the old histories is refused with a message saying so.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, create_engine, text
from sqlalchemy.engine import make_url

from shared.db.engine import make_engine
from shared.messaging.tables import metadata as messaging_metadata

# The messaging tables' one history, applied to every service's database.
MESSAGING_VERSIONS = Path(__file__).resolve().parent.parent / "messaging" / "migrations" / "versions"


class MigrationError(RuntimeError):
    """A database cannot be migrated by this version's scripts; nothing was changed."""


def _package_dir(package: str) -> Path:
    module = importlib.import_module(package)
    if module.__file__ is None:
        raise MigrationError(f"{package} is a namespace package: it has no folder of its own to hold migrations/")
    return Path(module.__file__).parent


def _option(value: str) -> str:
    # Config options go through ConfigParser interpolation, where '%' is special.
    return value.replace("%", "%%")


def alembic_config(package: str, url: str) -> Config:
    """An Alembic config for ``services.<name>`` (or the gateway) at ``url``.

    The script location (``env.py``, the revision template) is the package's ``migrations/``;
    the revisions are its ``versions/`` and the shared messaging history.
    """
    migrations = _package_dir(package) / "migrations"
    config = Config()
    config.set_main_option("script_location", _option(str(migrations)))
    config.set_main_option("path_separator", "newline")
    config.set_main_option("version_locations", _option(f"{migrations / 'versions'}\n{MESSAGING_VERSIONS}"))
    config.attributes["url"] = url
    return config


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in ``url`` if it does not exist yet."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql" or not parsed.database:
        return
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}).first()
            if not exists:
                # Identifiers cannot be bound parameters; quote it with the dialect's preparer.
                name = admin.dialect.identifier_preparer.quote(parsed.database)
                conn.execute(text(f"CREATE DATABASE {name}"))
    finally:
        admin.dispose()


def check_history(config: Config, url: str) -> None:
    """Refuse a database stamped with revisions these scripts do not know (the pre-squash histories)."""
    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            stamped = set(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()
    unknown = sorted(stamped - known)
    if unknown:
        where = make_url(url).render_as_string(hide_password=True)
        raise MigrationError(
            f"{where} is at revision {', '.join(unknown)}, which these migrations do not have: the "
            "histories were squashed into one initial revision each before the first release. "
            "Drop that development database (embedded mode: its file under var/db/) and migrate again."
        )


def upgrade(package: str, url: str) -> None:
    """Bring one database to the newest revision of its package's and the messaging migrations."""
    ensure_database(url)
    config = alembic_config(package, url)
    check_history(config, url)
    command.upgrade(config, "heads")


def run_env(context: Any, metadatas: list[MetaData]) -> None:
    """The body of every service's ``migrations/env.py``: ``metadatas`` are the service's own.

    The messaging tables' metadata is added here, so autogenerate sees the whole database; a
    change to them belongs in the messaging branch (a revision with head ``messaging@head``).
    """
    url = context.config.attributes["url"]
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection, target_metadata=[*metadatas, messaging_metadata], render_as_batch=True
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
    finally:
        engine.dispose()
