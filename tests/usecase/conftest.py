"""The use-case tier: each service's use cases run in process on its migrated PostgreSQL database.

No worker, relay or gateway runs: a test calls a use case as the service's runtime would (the
payload loaded through its contract, one unit of work, committed), inside an outer
transaction that is rolled back at teardown, so every test starts from the empty migrated
database. The unit of work is the real one, with the service's real read-model snapshots;
what it sends after its commit is captured instead of reaching the broker.

    def test_something(requisition_uc: Harness) -> None:
        reply = requisition_uc.run(service.submit_requisition, command(SUBMIT_REQUISITION, submission(), ALICE))
        assert requisition_uc.emitted_types() == ["RequisitionSubmitted"]

This tier has databases of its own (``<prefix>uc_<service>``, fresh and migrated once a
session): ``settings`` and ``dbs`` are overridden here, so what the process tiers leave in
theirs never meets these tests, whichever order the tiers run in. Nothing here may use the
fixtures that start processes.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Executable
from sqlalchemy.orm import Session, sessionmaker

from shared.config import DATABASES, Settings, load_settings
from shared.contracts import instances
from shared.contracts.catalog import EVENTS, TASKS_BY_NAME, subscriptions
from shared.contracts.envelope import Envelope, load_envelope
from shared.db.engine import Database
from shared.db.uow import Publisher, UnitOfWork
from shared.messaging.errors import DomainError
from shared.messaging.runtime import ServiceRuntime
from shared.messaging.snapshots import Snapshots
from tests.support import database_template, fresh_databases

HERE = Path(__file__).parent
DB_PREFIX = os.environ.get("PETTYCASH_TEST_DB_PREFIX", "pettycash_test_")
# The fixtures that start the process stack (tests/conftest.py): this tier runs without them.
PROCESS_FIXTURES = frozenset({"stack", "api", "tokens"})
# The read-model snapshot events (the gateway projects them; every service publishes some).
SNAPSHOT_EVENTS = frozenset(spec.name for spec in subscriptions("gateway"))

UseCase = Callable[[UnitOfWork, Envelope, dict[str, Any]], Any]
RefusalHandler = Callable[[UnitOfWork, Envelope, dict[str, Any], DomainError], None]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse, at collection, a use-case test that would start the process stack."""
    for item in items:
        if HERE in item.path.parents:
            started = PROCESS_FIXTURES & set(getattr(item, "fixturenames", ()))
            if started:
                raise pytest.UsageError(f"{item.nodeid} uses {sorted(started)}: the use-case tier starts no process")


def load_payload(envelope: Envelope) -> dict[str, Any]:
    """The payload as the runtime hands it to a use case: loaded through the contract of the
    command or event the envelope carries (Money, UUIDs and datetimes, not their wire form)."""
    spec = TASKS_BY_NAME.get(envelope.type) or EVENTS[envelope.type]
    loaded: dict[str, Any] = instances.schema(spec.payload).load(envelope.payload)
    return loaded


class JoinedDatabase(Database):
    """A service's ``Database`` whose sessions join the test's outer transaction, for the use
    cases that open their own units of work (the payment's disbursement job, its providers)."""

    def __init__(
        self, connection: Connection, sessions: sessionmaker[Session], snapshots: Snapshots, publish: Publisher
    ):
        self.url = connection.engine.url.render_as_string()
        self.engine = connection.engine
        self.sessions = sessions
        self.snapshots = snapshots
        self.publish = publish


class Harness:
    """One service's use cases on its database, inside a transaction that is never committed.

    ``sent`` holds what the units of work sent after their commits (wire form), in order;
    ``emitted`` and friends read those of the last use case run, as typed envelopes.
    """

    def __init__(self, service: str, connection: Connection, snapshots: Snapshots) -> None:
        self.service = service
        self.sessions = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
        snapshots.install(self.sessions)
        self.snapshots = snapshots
        self.sent: list[dict[str, Any]] = []
        self._last_run_from = 0
        self.database = JoinedDatabase(connection, self.sessions, snapshots, self.sent.extend)

    def uow(self) -> UnitOfWork:
        """The service's unit of work: its snapshots published at commit, what it emits captured."""
        # Every message is captured as sent, however many one commit emits.
        return UnitOfWork(
            self.sessions, self.snapshots.publish_touched, publish=self.sent.extend, direct_send_limit=None
        )

    # -- running use cases ----------------------------------------------------------------

    def run(self, use_case: UseCase, envelope: Envelope) -> Any:
        """Run a use case as the runtime does: payload loaded, one unit of work, committed."""
        self._last_run_from = len(self.sent)
        payload = load_payload(envelope)
        with self.uow() as uow:
            reply = use_case(uow, envelope, payload)
            uow.commit()
        return reply

    def refuse(self, use_case: UseCase, envelope: Envelope, on_refusal: RefusalHandler | None = None) -> DomainError:
        """Run a use case that must refuse; its effects roll back. With ``on_refusal`` (the
        command's refusal handler in its tasks module), that runs next and is committed, as the
        runtime records a refusal. Returns the refusal, for its ``code`` and ``status``."""
        self._last_run_from = len(self.sent)
        payload = load_payload(envelope)
        with self.uow() as uow:
            with pytest.raises(DomainError) as refused:
                use_case(uow, envelope, payload)
            uow.rollback()
            if on_refusal is not None:
                on_refusal(uow, envelope, payload, refused.value)
                uow.commit()
        return refused.value

    def job(self, job: Callable[[Database, Envelope, dict[str, Any]], Any], envelope: Envelope) -> Any:
        """Run a job that opens its own units of work (``ServiceRuntime.job``)."""
        self._last_run_from = len(self.sent)
        return job(self.database, envelope, load_payload(envelope))

    # -- what was sent --------------------------------------------------------------------

    def emitted(self, *types: str, snapshots: bool = False) -> list[Envelope]:
        """What the last use case sent, as envelopes: its events and commands (``types``: only
        those), without the read-model snapshots unless ``snapshots``."""
        envelopes = [load_envelope(raw) for raw in self.sent[self._last_run_from :]]
        if types:
            return [e for e in envelopes if e.type in types]
        return [e for e in envelopes if snapshots or e.type not in SNAPSHOT_EVENTS]

    def emitted_types(self) -> list[str]:
        """The types of the events and commands the last use case sent (no snapshots)."""
        return [e.type for e in self.emitted()]

    def one(self, event_type: str) -> dict[str, Any]:
        """The payload of the one message of this type the last use case sent."""
        found = self.emitted(event_type)
        assert len(found) == 1, f"expected one {event_type}, the last use case sent {self.emitted_types()}"
        return found[0].payload

    def snapshot(self, event_type: str, aggregate_id: Any) -> dict[str, Any]:
        """The last read-model snapshot of one aggregate the last use case published."""
        found = [e.payload for e in self.emitted(event_type) if e.payload["id"] == str(aggregate_id)]
        assert found, f"no {event_type} of {aggregate_id} among {[e.type for e in self.emitted(snapshots=True)]}"
        return found[-1]

    # -- the state written ----------------------------------------------------------------

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A fresh session on the test's transaction, to look at what the use cases wrote."""
        with self.sessions() as session:
            yield session

    def get(self, model: type[Any], key: Any) -> Any:
        with self.session() as session:
            return session.get(model, key)

    def scalar(self, statement: Executable) -> Any:
        with self.session() as session:
            return session.scalar(statement)

    def scalars(self, statement: Executable) -> list[Any]:
        with self.session() as session:
            return list(session.scalars(statement))


@pytest.fixture(scope="session")
def settings(test_env: dict[str, str], backing: dict[str, str]) -> Settings:
    """Settings pointing at this tier's own databases, dropped, created and migrated."""
    prefix = DB_PREFIX + "uc_"
    cfg = load_settings({**test_env, "PETTYCASH_DATABASE_URL": database_template(backing["postgres"], prefix)})
    fresh_databases(backing["postgres"], prefix, cfg)
    return cfg


@pytest.fixture(scope="session")
def dbs(settings: Settings) -> Iterator[dict[str, Database]]:
    """Handles on this tier's databases."""
    handles = {name: Database(settings.database_url(name)) for name in DATABASES}
    yield handles
    for db in handles.values():
        db.dispose()


@pytest.fixture(scope="session")
def runtimes(settings: Settings) -> Callable[[str], ServiceRuntime]:
    """Each service's runtime as its worker builds it (``services.<svc>.worker.build``): where
    its read models are declared. Built once, never started: it connects to nothing."""

    @cache
    def runtime(service: str) -> ServiceRuntime:
        built: ServiceRuntime = importlib.import_module(f"services.{service}.worker").build(settings)
        return built

    return runtime


@contextmanager
def harness(service: str, db: Database, runtime: ServiceRuntime) -> Iterator[Harness]:
    """A harness on ``db`` inside an outer transaction, rolled back when it closes."""
    with db.engine.connect() as connection:
        outer = connection.begin()
        try:
            yield Harness(service, connection, runtime.snapshots)
        finally:
            outer.rollback()


@pytest.fixture
def open_harness(dbs: dict[str, Database], runtimes: Callable[[str], ServiceRuntime]) -> Callable[[str], Any]:
    """``open_harness(service)``: a context manager giving a harness on that service's database."""
    return lambda service: harness(service, dbs[service], runtimes(service))


def _harness_fixture(service: str) -> Any:
    """The fixture ``<service>_uc``: a harness on that service's database, for one test."""

    @pytest.fixture(name=f"{service}_uc")
    def fixture(open_harness: Callable[[str], Any]) -> Iterator[Harness]:
        with open_harness(service) as opened:
            yield opened

    return fixture


requisition_uc = _harness_fixture("requisition")
approval_uc = _harness_fixture("approval")
payment_uc = _harness_fixture("payment")
ledger_uc = _harness_fixture("ledger")
