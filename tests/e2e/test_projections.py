"""The gateway's projections over the real stack: read-your-writes, scope, convergence, rebuild."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text

from services.gateway import readmodels
from shared.config import Settings
from shared.contracts import catalog
from shared.contracts.envelope import SYSTEM_ACTOR, Envelope
from shared.db.engine import Database
from shared.messaging.app import make_celery
from tests.payment_support import enrol, ensure_float, new_person, reserved_requisition
from tests.support import Api, float_of, kes, pettycash, requisition_body, wait_for

SERVICES_WITH_READ_MODELS = ("requisition", "approval", "payment", "ledger")
VOLATILE = {"projected_at", "source_at"}


def _published_versions(dbs: dict[str, Database]) -> dict[tuple[str, str], int]:
    versions: dict[tuple[str, str], int] = {}
    for service in SERVICES_WITH_READ_MODELS:
        with dbs[service].engine.connect() as conn:
            for kind, key, version in conn.execute(text("SELECT kind, key, version FROM read_model_versions")):
                versions[(kind, key)] = int(version)
    return versions


def _projected_versions(gateway: Database) -> dict[tuple[str, str], int]:
    versions: dict[tuple[str, str], int] = {}
    with gateway.engine.connect() as conn:
        for kind, table in readmodels.TABLES.items():
            query = select(table.c.id, table.c.version)
            if table is readmodels.rm_documents:
                query = query.where(table.c.id == kind)
            for key, version in conn.execute(query):
                versions[(kind, str(key))] = int(version)
    return versions


def wait_projected(dbs: dict[str, Database], settle: float = 0.0) -> None:
    """Until the gateway holds every version the services published (the projector caught up)
    and, with ``settle``, nothing was published for that many seconds (the sagas came to rest)."""
    last: dict[tuple[str, str], int] = {}

    def caught_up() -> bool:
        nonlocal last
        published = _published_versions(dbs)
        projected = _projected_versions(dbs["gateway"])
        quiet = published == last
        last = published
        return (quiet or not settle) and all(projected.get(key, -1) >= v for key, v in published.items())

    wait_for(caught_up, 30, max(settle, 0.1), "the projector to catch up")


def _dump(gateway: Database) -> dict[str, list[dict[str, Any]]]:
    tables = {*readmodels.TABLES.values(), readmodels.rm_case_deciders}
    dump: dict[str, list[dict[str, Any]]] = {}
    with gateway.engine.connect() as conn:
        for table in tables:
            rows = conn.execute(select(table)).mappings().all()
            cleaned = [{k: v for k, v in row.items() if k not in VOLATILE} for row in rows]
            dump[table.name] = sorted(cleaned, key=lambda r: tuple(str(r[c.name]) for c in table.primary_key))
    return dump


def test_a_user_reads_their_own_writes_at_once(api: Api, tokens: dict[str, str]) -> None:
    created = api.post("/api/v1/requisitions", tokens["alice"], json=requisition_body(amount=kes(2_000)))
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    # No waiting: the first read after the 201 shows it (the reply's snapshot was projected).
    assert api.get(f"/api/v1/requisitions/{rid}", tokens["alice"]).json()["status"] == "submitted"
    mine = api.get("/api/v1/requisitions?scope=mine&limit=200", tokens["alice"]).json()["items"]
    assert rid in {item["id"] for item in mine}

    wait_for(lambda: api.get(f"/api/v1/requisitions/{rid}", tokens["bob"]).json()["approval"], 15, what="the case")
    approved = api.post(f"/api/v1/requisitions/{rid}/approve", tokens["bob"], json={"comment": "fine"})
    assert approved.status_code == 200, approved.text
    case = api.get(f"/api/v1/requisitions/{rid}", tokens["bob"]).json()["approval"]
    assert case["status"] == "approved"
    assert case["steps"][0]["decided_by_name"] == "bob"

    other = api.post("/api/v1/requisitions", tokens["alice"], json=requisition_body(draft=True))
    cancelled = api.post(f"/api/v1/requisitions/{other.json()['id']}/cancel", tokens["alice"], json={"comment": "no"})
    assert cancelled.status_code == 200, cancelled.text
    assert api.get(f"/api/v1/requisitions/{other.json()['id']}", tokens["alice"]).json()["status"] == "cancelled"

    caps = {"caps": [{"kind": "branch_monthly", "branch_id": "MLD-01", "limit": kes(9_999_999)}]}
    assert api.request("PUT", "/api/v1/caps", tokens["admin"], json=caps).status_code == 200
    assert api.get("/api/v1/caps", tokens["admin"]).json()["caps"][0]["limit"] == kes(9_999_999)


def test_a_payment_and_a_float_read_at_once(
    api: Api, tokens: dict[str, str], settings: Settings, dbs: dict[str, Database]
) -> None:
    opened = api.post("/api/v1/floats", tokens["tom"], json={"branch": "NBO-WST", "amount": kes(5_000)})
    assert opened.status_code in (201, 409), opened.text  # a rerun finds it open
    before = float_of(api, tokens["fiona"], "NBO-WST")["balance"]
    asked = api.post("/api/v1/floats/NBO-WST/replenishments", tokens["tom"], json={"amount": kes(700)})
    assert asked.status_code == 201, asked.text
    decided = api.post(f"/api/v1/replenishments/{asked.json()['id']}/decision", tokens["fiona"], json={"approve": True})
    assert decided.status_code == 200, decided.text
    assert float_of(api, tokens["fiona"], "NBO-WST")["balance"] == before + 70_000

    requisition = reserved_requisition(api, tokens, settings, dbs)
    person = new_person(dbs)
    device = enrol(api, person)
    paid = api.post(
        f"/api/v1/requisitions/{requisition['id']}/payment",
        person.token,
        json={"otp": device.code()},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert paid.status_code == 201, paid.text
    payment = api.get(f"/api/v1/requisitions/{requisition['id']}/payment", person.token)
    assert payment.status_code == 200, payment.text
    assert payment.json()["id"] == paid.json()["id"]


def test_out_of_scope_rows_never_appear_in_lists_filters_or_pages(api: Api, tokens: dict[str, str]) -> None:
    nairobi = [
        api.post("/api/v1/requisitions", tokens["alice"], json=requisition_body()).json()["id"] for _ in range(3)
    ]
    mombasa = [
        api.post("/api/v1/requisitions", tokens["sam"], json=requisition_body(branch="MSA-01")).json()["id"]
        for _ in range(3)
    ]
    # Sam (staff, Mombasa) pages through everything his scope covers, two at a time.
    seen: list[str] = []
    for offset in range(0, 400, 2):
        page = api.get(f"/api/v1/requisitions?scope=all&limit=2&offset={offset}", tokens["sam"]).json()["items"]
        seen += [item["id"] for item in page]
        assert all(item["branch_code"] == "MSA-01" for item in page), page
        if len(page) < 2:
            break
    assert set(mombasa) <= set(seen)
    assert not set(nairobi) & set(seen)
    # Naming another branch in a filter shows nothing of it.
    for scope in ("all", "branch", "mine"):
        filtered = api.get(f"/api/v1/requisitions?scope={scope}&branch=NBO-CBD", tokens["sam"]).json()["items"]
        assert not {item["id"] for item in filtered} & set(nairobi)
    # One by one: out of scope looks exactly like absent.
    assert api.get(f"/api/v1/requisitions/{nairobi[0]}", tokens["sam"]).status_code == 404
    assert api.get(f"/api/v1/requisitions/{nairobi[0]}/payment", tokens["sam"]).status_code == 404
    # Mary approves for Mombasa only; Bob for Nairobi only.
    wait_for(
        lambda: (
            {i["requisition_id"] for i in api.get("/api/v1/approvals/inbox", tokens["mary"]).json()["items"]}
            >= set(mombasa)
        ),
        15,
        what="Mombasa's cases in Mary's inbox",
    )
    mary_inbox = {i["requisition_id"] for i in api.get("/api/v1/approvals/inbox", tokens["mary"]).json()["items"]}
    assert not mary_inbox & set(nairobi)
    floats = api.get("/api/v1/floats", tokens["sam"]).json()["items"]
    assert all(f["branch_code"] == "MSA-01" for f in floats)


def test_alerts_are_scoped_and_regional_managers_see_their_region(api: Api, tokens: dict[str, str]) -> None:
    # Mombasa has no float: an approved requisition there waits for funds, with an alert.
    rid = api.post("/api/v1/requisitions", tokens["sam"], json=requisition_body(branch="MSA-01")).json()["id"]
    wait_for(
        lambda: (
            api.post(f"/api/v1/requisitions/{rid}/approve", tokens["mary"], json={"comment": "ok"}).status_code == 200
        ),
        15,
        what="Mary's approval",
    )

    def alert_for(token: str) -> bool:
        return any(a["requisition_id"] == rid for a in api.get("/api/v1/alerts", token).json()["items"])

    wait_for(lambda: alert_for(tokens["fiona"]), 20, what="the awaiting-funds alert")
    assert alert_for(tokens["mary"])  # her branch
    rita = api.get("/api/v1/alerts", tokens["rita"])
    assert rita.status_code == 200, rita.text  # a regional manager reads her region's alerts...
    assert not alert_for(tokens["rita"])  # ...and Mombasa is in another region
    assert not alert_for(tokens["bob"])
    assert api.get("/api/v1/alerts", tokens["alice"]).status_code == 403


def test_duplicated_and_reordered_snapshots_converge_on_the_newest(
    api: Api, tokens: dict[str, str], settings: Settings, dbs: dict[str, Database]
) -> None:
    created = api.post("/api/v1/requisitions", tokens["alice"], json=requisition_body(draft=True))
    rid = created.json()["id"]
    live = api.get(f"/api/v1/requisitions/{rid}", tokens["alice"]).json()
    base = {
        "id": rid,
        "branch_id": live["branch_id"],
        "region_id": live["region_id"],
        "requester_id": live["requester_id"],
        "created_at": live["created_at"],
    }
    at = datetime.now(UTC)
    newer = {**base, "version": 50, "status": "draft", "at": at.isoformat(), "body": {**live, "purpose": "newest"}}
    older = {
        **base,
        "version": 49,
        "status": "draft",
        "at": (at - timedelta(seconds=1)).isoformat(),
        "body": {**live, "purpose": "older"},
    }
    app = make_celery(settings, "test")
    # The newest first, then a stale one, then the newest again: as a broker may deliver them.
    for payload in (newer, older, newer):
        envelope = Envelope(type=catalog.REQUISITION_CHANGED.name, payload=payload, actor=SYSTEM_ACTOR).to_dict()
        app.send_task(catalog.handle_event_task("gateway"), args=[envelope], queue=catalog.queue_of("gateway"))
    wait_for(
        lambda: api.get(f"/api/v1/requisitions/{rid}", tokens["alice"]).json()["purpose"] == "newest",
        15,
        what="the newest snapshot",
    )
    with dbs["gateway"].engine.connect() as conn:
        handled = conn.execute(
            text("SELECT count(*) FROM inbox WHERE task_name = 'gateway.handle_event' AND processed_at > :t"),
            {"t": at - timedelta(seconds=5)},
        ).scalar()
    assert handled is not None
    assert handled >= 2
    assert api.get(f"/api/v1/requisitions/{rid}", tokens["alice"]).json()["purpose"] == "newest"
    # Put the truth back (the fake versions outrank the service's): forget the row, then a real
    # change projects the service's own state again.
    with dbs["gateway"].uow() as uow:
        uow.session.execute(delete(readmodels.rm_requisitions).where(readmodels.rm_requisitions.c.id == rid))
        uow.commit()
    assert api.post(f"/api/v1/requisitions/{rid}/cancel", tokens["alice"], json={"comment": "x"}).status_code == 200
    assert api.get(f"/api/v1/requisitions/{rid}", tokens["alice"]).json()["status"] == "cancelled"


def test_a_rebuilt_projection_equals_the_live_one(
    api: Api, tokens: dict[str, str], test_env: dict[str, str], dbs: dict[str, Database]
) -> None:
    ensure_float(api, tokens)
    made = [api.post("/api/v1/requisitions", tokens["alice"], json=requisition_body()).json()["id"] for _ in range(3)]
    wait_projected(dbs, settle=1.0)
    live = _dump(dbs["gateway"])
    published = _published_versions(dbs)
    assert live["rm_requisitions"]
    assert live["rm_accounts"]
    assert live["rm_documents"]
    with dbs["gateway"].uow() as uow:
        for table in {*readmodels.TABLES.values(), readmodels.rm_case_deciders}:
            uow.session.execute(delete(table))
        uow.commit()
    # Nothing to read now: the pages are served from the (empty) projections alone.
    assert api.get("/api/v1/requisitions?scope=all", tokens["fiona"]).json()["items"] == []
    rebuilt = pettycash(test_env, "projections", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "requisition:" in rebuilt.stdout
    wait_projected(dbs)
    # What a service published anew since the live dump (a periodic job's ledger check, an
    # alert seen again) is rebuilt as it is now: everything else must be as the live projection had it.
    moved = {key for key, version in _published_versions(dbs).items() if published.get(key) != version}
    assert not moved & {("requisition", rid) for rid in made}
    assert _unmoved(_dump(dbs["gateway"]), moved) == _unmoved(live, moved)


def _unmoved(dump: dict[str, list[dict[str, Any]]], moved: set[tuple[str, str]]) -> dict[str, list[dict[str, Any]]]:
    """The dump without the rows of the read models whose (kind, key) is in ``moved``."""
    kinds = {table.name: kind for kind, table in readmodels.TABLES.items() if table is not readmodels.rm_documents}
    kinds[readmodels.rm_case_deciders.name] = "approval_case"

    def key(table: str, row: dict[str, Any]) -> tuple[str, str]:
        if table == readmodels.rm_documents.name:
            return str(row["id"]), str(row["id"])
        return kinds[table], str(row["case_id"] if table == readmodels.rm_case_deciders.name else row["id"])

    return {table: [row for row in rows if key(table, row) not in moved] for table, rows in dump.items()}
