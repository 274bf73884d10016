"""Generating a history, start to finish: the guards, the bulk load, the checks and the read models.

The load itself writes each service's own tables with ``COPY`` (its own database only, one
transaction per table); what the services would otherwise derive as they go (the floats'
days, the gateway's projections) is derived afterwards with the services' own code, so a
generated history reads exactly like one the system lived through.
"""

from __future__ import annotations

import multiprocessing
import random
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from typing import Any

import psycopg
from kombu.utils import json as wire
from psycopg import sql

from pettycash.components import build_runtime
from pettycash.history.ledger import load_ledger
from pettycash.history.organisation import seed_organisation
from pettycash.history.plan import Seeded, SeedPlan, conninfo, plan_requisitions
from pettycash.history.services import load_approval_service, load_payment_service, load_requisition_service
from services.gateway.rebuild import rebuild
from services.ledger import service as ledger_service
from shared.config import DATABASES, Settings
from shared.contracts.catalog import READ_MODELS, TaskSpec
from shared.contracts.envelope import SYSTEM_ACTOR, Envelope
from shared.db.engine import Database
from shared.messaging.tables import metadata as messaging_metadata

# Tables a history may find filled and still count as empty: migrations' bookkeeping, and the
# messages a stack that ran on empty databases leaves (its documents published, their acks).
BOOKKEEPING = frozenset({"alembic_version", *messaging_metadata.tables})


class HistoryError(Exception):
    """A history cannot be generated here (not PostgreSQL, databases not empty); the message says why."""


def require_postgres(settings: Settings) -> None:
    """Refuse anything but PostgreSQL: the load is ``COPY``, which SQLite does not have."""
    other = [name for name in DATABASES if not settings.database_url(name).startswith("postgresql")]
    if other:
        raise HistoryError(
            f"a history is bulk-loaded with PostgreSQL COPY; the {', '.join(other)} database(s) are not "
            "PostgreSQL (embedded SQLite?). Set PETTYCASH_DATABASE_URL to PostgreSQL URLs, e.g. "
            "postgresql+psycopg://postgres@127.0.0.1:5432/pettycash_{service}"
        )


def _tables(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
    return [str(row[0]) for row in rows]


def occupied(settings: Settings) -> dict[str, list[str]]:
    """Per database, the tables that hold rows (bookkeeping aside): none means a history may be loaded."""
    found: dict[str, list[str]] = {}
    for name in DATABASES:
        with psycopg.connect(conninfo(settings.database_url(name))) as conn:
            for table in _tables(conn):
                if table in BOOKKEEPING:
                    continue
                # Whether a row exists, not how many: a table of millions answers at once.
                query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(table))
                row = conn.execute(query).fetchone()
                if row and row[0]:
                    found.setdefault(name, []).append(table)
    return found


def erase(settings: Settings) -> None:
    """Empty every table of every database but the migrations' own (the stack should be stopped)."""
    for name in DATABASES:
        with psycopg.connect(conninfo(settings.database_url(name))) as conn:
            tables = [t for t in _tables(conn) if t != "alembic_version"]
            if tables:
                names = sql.SQL(", ").join(sql.Identifier(t) for t in tables)
                conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(names))
            conn.commit()


def analyse(settings: Settings, names: Iterable[str] = DATABASES) -> None:
    """VACUUM (ANALYZE) each database: what autovacuum would do after a bulk load (it is off here)."""
    for name in names:
        with psycopg.connect(conninfo(settings.database_url(name)), autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE)")


def generate(settings: Settings, plan: SeedPlan, otp_key: str, password_hash: str = "") -> Seeded:
    """Load the organisation and the volume into empty, migrated databases; analyse; what was loaded.

    ``otp_key`` seals the treasury users' authenticators (the payment service's key);
    ``password_hash`` is given to every person of ``PAGE_ROLES`` (the benchmark's page users sign in).
    """
    rng = random.Random(plan.seed)  # noqa: S311 - reproducible data, not secrets
    now = datetime.now(UTC)
    seconds: dict[str, float] = {}
    rows: dict[str, int] = {}

    started = time.perf_counter()
    org = seed_organisation(settings, plan, otp_key, password_hash)
    rows["users"] = sum(len(v) for v in org.people.values())
    rows["branches"] = len(org.branches)
    seconds["organisation"] = time.perf_counter() - started

    mark = time.perf_counter()
    reqs = plan_requisitions(org, plan, rng, now)
    seconds["plan"] = time.perf_counter() - mark
    loaders = (
        ("requisition", load_requisition_service),
        ("approval", load_approval_service),
        ("payment", load_payment_service),
    )
    for service, load in loaders:
        mark = time.perf_counter()
        with psycopg.connect(conninfo(settings.database_url(service))) as conn:
            rows.update(load(conn, reqs, rng))
        seconds[service] = time.perf_counter() - mark

    mark = time.perf_counter()
    with psycopg.connect(conninfo(settings.database_url("ledger"))) as conn:
        rows.update(load_ledger(conn, org, reqs, plan.transfers, rng, now))
    seconds["ledger"] = time.perf_counter() - mark

    mark = time.perf_counter()
    analyse(settings)
    seconds["vacuum_analyze"] = time.perf_counter() - mark
    seconds["total"] = time.perf_counter() - started

    recent: dict[str, list[str]] = defaultdict(list)
    for req in sorted(reqs, key=lambda r: r.created_at, reverse=True):
        ids = recent[req.branch.code]
        if len(ids) < 50:
            ids.append(str(req.id))
    payable = [str(r.id) for r in sorted(reqs, key=lambda r: r.created_at) if r.status == "reserved"]
    return Seeded(org, dict(recent), payable, rows, seconds)


def check_ledger(settings: Settings) -> dict[str, Any]:
    """The ledger's own balance check (``ledger.verify_ledger``), run here and kept for the trial balance."""
    db = Database(settings.database_url("ledger"))
    try:
        with db.uow() as uow:
            found = ledger_service.verify_ledger(uow, Envelope(type="history", payload={}, actor=SYSTEM_ACTOR), {})
            uow.commit()
    finally:
        db.dispose()
    return found


def rebuild_read_models(settings: Settings, processes: int = 2) -> dict[str, int]:
    """The gateway's read models from the services' state, as ``pettycash projections rebuild``
    does, but each service's export answered here (no worker needs to run), a few kinds at once.

    Exporting and projecting is Python through and through (snapshots built, encoded, decoded
    and upserted), so the kinds are spread over processes, not threads; each kind has tables
    of its own, so they never meet."""
    kinds = [(service, kind) for service, service_kinds in READ_MODELS.items() for kind in service_kinds]
    context = multiprocessing.get_context("spawn")  # no connection of this process is inherited
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        counts = dict(pool.map(_rebuild_kind, [settings] * len(kinds), kinds))
    return {kind: counts[kind] for _service, kind in kinds}


def _rebuild_kind(settings: Settings, service_kind: tuple[str, str]) -> tuple[str, int]:
    """One read model rebuilt, in a process of its own."""
    service, kind = service_kind
    runtime = build_runtime(service, settings)

    def ask(spec: TaskSpec, payload: dict[str, Any]) -> dict[str, Any]:
        with runtime.db.uow() as uow:
            page = runtime.snapshots.export(uow.session, payload["kind"], payload["after"], payload["limit"])
        # Through the broker's own encoding, so the projection gets what a worker's reply carries.
        answer: dict[str, Any] = wire.loads(wire.dumps(page))
        return answer

    gateway = Database(settings.database_url("gateway"))
    try:
        return kind, rebuild(gateway, ask, [kind])[kind]
    finally:
        gateway.dispose()
        runtime.db.dispose()
