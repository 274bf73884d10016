from __future__ import annotations

import re

from shared.config import DATABASES
from shared.contracts import catalog


def test_task_names_read_service_verb_noun_and_route_to_their_service() -> None:
    routes = catalog.task_routes()
    for name, route in routes.items():
        service, _, verb_noun = name.partition(".")
        assert service in DATABASES
        assert re.fullmatch(r"[a-z]+_[a-z_]+", verb_noun), name
        spec = catalog.TASKS_BY_NAME.get(name)
        # Queries (reports, exports) and jobs have queues of their own, never behind the service's
        # saga events (nor its commands behind a payment run's jobs).
        own = {"query": f"{service}-queries", "job": f"{service}-jobs"}
        assert route == {"queue": own.get(spec.kind, service) if spec else service}


def test_events_are_past_tense_and_subscribed_by_known_services() -> None:
    for name, spec in catalog.EVENTS.items():
        assert re.fullmatch(r"([A-Z][a-z]+)+", name)
        assert name.endswith(("ed", "Opened")), name
        assert spec.subscribers
        assert set(spec.subscribers) <= set(DATABASES)


def test_each_name_is_declared_once() -> None:
    names = [t.name for t in catalog.TASKS]
    assert len(names) == len(set(names))
