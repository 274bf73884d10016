"""Alembic, driven from code: each service migrates its own database with its own scripts."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, create_engine, text
from sqlalchemy.engine import make_url

from shared.db.engine import make_engine


def alembic_config(package: str, url: str) -> Config:
    """An Alembic config for ``services.<name>`` (or the gateway) at ``url``."""
    module = importlib.import_module(package)
    assert module.__file__ is not None
    config = Config()
    config.set_main_option("script_location", str(Path(module.__file__).parent / "migrations"))
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


def upgrade(package: str, url: str) -> None:
    """Bring one database to the newest revision of its package's migrations."""
    ensure_database(url)
    command.upgrade(alembic_config(package, url), "head")


def run_env(context: Any, metadatas: list[MetaData]) -> None:
    """The body of every service's ``migrations/env.py``."""
    url = context.config.attributes["url"]
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=metadatas, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
    finally:
        engine.dispose()
