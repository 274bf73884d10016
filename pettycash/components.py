"""Where each service's pieces are found, for the commands that start or migrate them."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import cast

from shared.config import DATABASES, Settings
from shared.db.migrate import upgrade
from shared.messaging.runtime import ServiceRuntime


def build_runtime(service: str, settings: Settings) -> ServiceRuntime:
    """A service's runtime with its tasks registered."""
    if service not in DATABASES:
        raise ValueError(f"unknown service {service!r}; one of {', '.join(DATABASES)}")
    module = importlib.import_module(f"services.{service}.worker")
    build = cast(Callable[[Settings], ServiceRuntime], module.build)
    return build(settings)


def migrate_all(settings: Settings, only: str | None = None) -> None:
    """Migrate every database (or one) to its newest revision."""
    for name in DATABASES:
        if only is None or name == only:
            upgrade(f"services.{name}", settings.database_url(name))
