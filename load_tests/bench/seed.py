"""Bulk load of realistic volume: an organisation, its requisitions' whole histories, a large ledger.

The organisation (regions, branches, users of every role, bearer tokens) is made with the
gateway's own identity code, so tokens and the user directory are exactly what production
has. Everything else is generated here and loaded with PostgreSQL ``COPY`` (psycopg's
``cursor.copy``), one transaction per table: requisitions with their history and approval
cases in a realistic spread of statuses (most paid, some open cases waiting for approvers,
some reserved and waiting for treasury), the payment service's records of what was paid, and
a ledger of at least the requested number of transfers whose accounts' cached totals equal
the sums of their transfers (so the trial balance checks out).

Transfers beyond those of the loaded requisitions are the earlier years' activity (hold and
post pairs of archived requisitions) and the floats' monthly replenishments.

Autovacuum is off on this machine's PostgreSQL server, and a planner without statistics
chooses badly, so every database is vacuumed and analysed after loading, as production's
autovacuum would do after an insert-heavy load.
"""

from __future__ import annotations

import json
import math
import random
import secrets
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pyotp
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

from services.approval.domain import DEFAULT_POLICY
from services.gateway import identity
from services.gateway.models import Branch, Region
from services.gateway.passwords import Passwords
from services.ledger import days as float_days
from services.ledger import domain as ledger_domain
from services.payment.domain import payment_id_for
from shared.config import DATABASES, Settings
from shared.contracts.money import Money
from shared.contracts.payloads import CATEGORIES
from shared.contracts.roles import SECOND_FACTOR_ROLES, Role
from shared.db.engine import Database
from shared.db.types import utcnow

CURRENCY = "KES"
KES = 100  # minor units in one shilling (KES has 2 decimals)
REGIONS = (
    ("NAI", "Nairobi region"),
    ("CST", "Coast region"),
    ("RFT", "Rift Valley region"),
    ("WST", "Western region"),
    ("NYZ", "Nyanza region"),
    ("CTR", "Central region"),
)
HEAD_OFFICE = "HQ"
# The spread of a mature installation: most requisitions paid long ago, a few percent open.
STATUS_SHARES = (
    ("paid", 0.85),
    ("rejected", 0.04),
    ("cancelled", 0.03),
    ("pending_approval", 0.04),
    ("reserved", 0.03),
    ("draft", 0.01),
)
# Tier shares and amount bands in shillings (DEFAULT_POLICY's tiers: 10,000 / 50,000 / 250,000).
AMOUNT_BANDS = ((0.70, 200, 10_000), (0.20, 10_001, 50_000), (0.08, 50_001, 250_000), (0.02, 250_001, 1_000_000))
FLOAT_HEADROOM = 5_000_000 * KES  # per branch, above everything loaded: the stages' new holds
REPLENISHMENTS_PER_BRANCH = 60  # monthly, five years
HISTORY_DAYS = 5 * 365
# The people the page users sign in as (with a password): the roles that need no second factor.
PAGE_ROLES: tuple[str, ...] = tuple(r.value for r in (Role.STAFF, Role.BRANCH_MANAGER) if r not in SECOND_FACTOR_ROLES)


@dataclass(frozen=True)
class SeedPlan:
    """How much to load."""

    requisitions: int = 100_000
    transfers: int = 1_000_000
    regions: int = 6
    branches_per_region: int = 10
    staff_per_branch: int = 3
    treasury_users: int = 300
    finance_users: int = 4
    reserved_at_least: int = 0  # requisitions waiting for treasury: the payment stage pays these
    seed: int = 20250101


@dataclass(frozen=True)
class BranchInfo:
    id: str
    code: str
    region_id: str
    head_office: bool


@dataclass(frozen=True)
class Member:
    """A user of the organisation and a real bearer token of theirs."""

    user_id: str
    username: str
    token: str
    role: str
    branches: tuple[str, ...]


@dataclass
class Org:
    """The organisation as the load generator needs it."""

    branches: list[BranchInfo]
    people: dict[str, list[Member]]
    staff_of: dict[str, list[Member]]
    manager_of: dict[str, Member]
    regional_of: dict[str, Member]
    otp_secrets: dict[str, str]  # treasury user id -> TOTP secret (base32)

    @property
    def field_branches(self) -> list[BranchInfo]:
        return [b for b in self.branches if not b.head_office]


@dataclass
class Seeded:
    """What the stages use of the loaded data, and what the report says about the load."""

    org: Org
    recent: dict[str, list[str]]  # branch code -> ids of its latest requisitions
    payable: list[str]  # reserved requisitions treasury may pay, oldest approval first
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class Req:
    """One requisition's planned life (its status decides which rows it leaves behind)."""

    id: uuid.UUID
    branch: BranchInfo
    requester: Member
    amount: int
    category: str
    payee: tuple[str, str, str]
    status: str
    created_at: datetime
    tier: str = ""
    chain: tuple[str, ...] = ()
    seq: int | None = None
    case_id: uuid.UUID | None = None
    deciders: list[Member] = field(default_factory=list)
    payer: Member | None = None
    times: dict[str, datetime] = field(default_factory=dict)


def conninfo(sqlalchemy_url: str) -> str:
    """A psycopg connection string from a SQLAlchemy URL."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


def copy_rows(conn: psycopg.Connection[Any], table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """COPY rows into a table in one transaction; returns how many."""
    count = 0
    # Table and column names are this module's constants, never input.
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with conn.transaction(), conn.cursor() as cur, cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


# -- the organisation -----------------------------------------------------------------


def page_password(settings: Settings) -> tuple[str, str]:
    """A random password for this run's page users, and its Argon2id hash (the gateway's hasher
    and cost): one hash for all of them, since Argon2 is slow by design. The password stays in
    the load generator's memory; only its hash is stored."""
    password = secrets.token_urlsafe(24)
    return password, Passwords.from_settings(settings.identity).hash(password)


def seed_organisation(settings: Settings, plan: SeedPlan, otp_key: str, password_hash: str = "") -> Org:
    """Regions, branches and users of every role through the gateway's identity code; active authenticators.

    The people of :data:`PAGE_ROLES` get ``password_hash`` (if given), so the page users can sign in.
    """
    db = Database(settings.database_url("gateway"))
    people: dict[str, list[Member]] = defaultdict(list)
    staff_of: dict[str, list[Member]] = defaultdict(list)
    manager_of: dict[str, Member] = {}
    regional_of: dict[str, Member] = {}
    branches: list[BranchInfo] = []
    try:
        with db.uow() as uow:
            session = uow.session
            regions = [Region(code=code, name=name) for code, name in REGIONS[: plan.regions]]
            session.add_all(regions)
            session.flush()
            rows = [Branch(code=HEAD_OFFICE, name="Head office", region_id=regions[0].id, is_head_office=True)]
            for region in regions:
                rows += [
                    Branch(code=f"{region.code}-{i:02d}", name=f"{region.name} branch {i}", region_id=region.id)
                    for i in range(1, plan.branches_per_region + 1)
                ]
            session.add_all(rows)
            session.flush()
            branches = [BranchInfo(str(b.id), b.code, str(b.region_id), b.is_head_office) for b in rows]

            def person(username: str, role: str, codes: list[str]) -> Member:
                user = identity.create_user(session, username, username.replace("-", " ").title(), [role], codes)
                if password_hash and role in PAGE_ROLES:
                    user.password_hash, user.password_changed_at = password_hash, utcnow()
                member = Member(
                    str(user.id), username, identity.issue_token(session, user, "bench"), role, tuple(codes)
                )
                people[role].append(member)
                return member

            for branch in branches:
                code = branch.code
                staff_of[code] = [person(f"staff-{code}-{i}", "staff", [code]) for i in range(plan.staff_per_branch)]
                if not branch.head_office:
                    manager_of[code] = person(f"bm-{code}", "branch_manager", [code])
            for region in regions:
                codes = [b.code for b in branches if b.region_id == str(region.id) and not b.head_office]
                regional_of[str(region.id)] = person(f"rm-{region.code}", "regional_manager", codes)
            for role, count in (
                ("treasury", plan.treasury_users),
                ("finance", plan.finance_users),
                ("cfo", 1),
                ("auditor", 2),
                ("admin", 1),
            ):
                for i in range(count):
                    person(f"{role}-{i:03d}", role, [HEAD_OFFICE])
            uow.commit()
    finally:
        db.dispose()
    secrets_by_user = {m.user_id: pyotp.random_base32(32) for m in people["treasury"]}
    _enrol_authenticators(settings, people["treasury"], secrets_by_user, otp_key)
    return Org(branches, dict(people), dict(staff_of), manager_of, regional_of, secrets_by_user)


def _enrol_authenticators(settings: Settings, treasury: list[Member], secrets: dict[str, str], otp_key: str) -> None:
    """Active TOTP enrolments, sealed as the payment service seals them (what enrol + activate leave)."""
    fernet = Fernet(otp_key.encode())
    now = datetime.now(UTC)
    rows = (
        (m.user_id, m.username, fernet.encrypt(secrets[m.user_id].encode()).decode(), "active", now, now)
        for m in treasury
    )
    columns = ("user_id", "username", "sealed_secret", "status", "created_at", "activated_at")
    with psycopg.connect(conninfo(settings.database_url("payment"))) as conn:
        copy_rows(conn, "otp_enrolments", columns, rows)


# -- the requisitions' lives ----------------------------------------------------------


def _pick_status(rng: random.Random) -> str:
    roll, total = rng.random(), 0.0
    for status, share in STATUS_SHARES:
        total += share
        if roll < total:
            return status
    return "paid"


def _amount(rng: random.Random) -> int:
    roll, total = rng.random(), 0.0
    for share, low, high in AMOUNT_BANDS:
        total += share
        if roll < total:
            return rng.randint(low, high) * KES
    return rng.randint(AMOUNT_BANDS[0][1], AMOUNT_BANDS[0][2]) * KES


def _payee(rng: random.Random) -> tuple[str, str, str]:
    roll = rng.random()
    if roll < 0.5:
        return ("Cash payee", "cash", "")
    if roll < 0.85:
        return ("Mobile payee", "mobile_money", f"07{rng.randrange(10**8):08d}")
    return ("Supplier Ltd", "bank", f"ACC-{rng.randrange(10**8):08d}")


def _created_at(rng: random.Random, status: str, now: datetime) -> datetime:
    # Open work is recent: cases still inside their SLA, holds waiting days, not years.
    if status == "pending_approval":
        return now - timedelta(seconds=rng.uniform(60, 12 * 3600))
    if status == "reserved":
        return now - timedelta(seconds=rng.uniform(3600, 3 * 86400))
    if status == "draft":
        return now - timedelta(seconds=rng.uniform(60, 30 * 86400))
    return now - timedelta(seconds=rng.uniform(4 * 86400, 365 * 86400))


def _decider(org: Org, rng: random.Random, role: str, branch: BranchInfo) -> Member:
    if role == "branch_manager":
        return org.manager_of[branch.code]
    if role == "regional_manager":
        return org.regional_of[branch.region_id]
    return rng.choice(org.people[role])


def plan_requisitions(org: Org, plan: SeedPlan, rng: random.Random, now: datetime) -> list[Req]:
    """Every requisition's life: who asked, how much, how far it got, who decided and paid."""
    field_branches = org.field_branches
    head_office = next(b for b in org.branches if b.head_office)
    # A few busy branches and many quiet ones, as in any branch network.
    weights = [1.0 / (1 + i) ** 0.6 for i in range(len(field_branches))]
    branches = rng.choices(field_branches, weights, k=plan.requisitions)
    reqs: list[Req] = []
    for i in range(plan.requisitions):
        branch = head_office if i % 20 == 0 else branches[i]
        status = _pick_status(rng)
        req = Req(
            id=uuid.UUID(int=rng.getrandbits(128), version=4),
            branch=branch,
            requester=rng.choice(org.staff_of[branch.code]),
            amount=_amount(rng),
            category=rng.choice(CATEGORIES),
            payee=_payee(rng),
            status=status,
            created_at=datetime.min.replace(tzinfo=UTC),
        )
        reqs.append(req)
    # Enough requisitions wait for treasury for the payment stage: paid ones become reserved.
    missing = plan.reserved_at_least - sum(r.status == "reserved" for r in reqs)
    for req in reqs:
        if missing <= 0:
            break
        if req.status == "paid":
            req.status, missing = "reserved", missing - 1
    for req in reqs:
        req.created_at = _created_at(rng, req.status, now)
        if req.status == "reserved":
            req.payee = ("Cash payee", "cash", "")  # the payment stage pays from the cash box
        origin = "head_office" if req.branch.head_office else "branch"
        tier = DEFAULT_POLICY.tier_for(origin, Money(CURRENCY, req.amount))
        req.tier, req.chain = tier.name, tier.chain
        if req.status != "draft":
            req.case_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        decided = {"paid": len(req.chain), "reserved": len(req.chain), "rejected": 1}.get(req.status, 0)
        req.deciders = [_decider(org, rng, role, req.branch) for role in req.chain[:decided]]
        if req.status == "paid":
            req.payer = rng.choice(org.people["treasury"])
        req.times = _timeline(req)
    # Voucher numbers are issued per branch in submission order, without gaps.
    reqs.sort(key=lambda r: r.created_at)
    counters: dict[str, int] = defaultdict(int)
    for req in reqs:
        if req.status != "draft":
            counters[req.branch.code] += 1
            req.seq = counters[req.branch.code]
    return reqs


def _origin(req: Req) -> str:
    return "head_office" if req.branch.head_office else "branch"


def _voucher(req: Req) -> str | None:
    return None if req.seq is None else f"{req.branch.code}-{req.seq:06d}"


def _timeline(req: Req) -> dict[str, datetime]:
    """When each thing happened to a requisition (deterministic per requisition)."""
    local = random.Random(req.id.int)  # noqa: S311 - a reproducible timeline, not a secret
    t = req.created_at
    times = {"created": t, "submitted": t, "routed": t + timedelta(milliseconds=local.uniform(15, 60))}
    cursor = times["routed"]
    for n in range(len(req.deciders)):
        cursor += timedelta(seconds=local.uniform(300, 8 * 3600))
        times[f"step{n + 1}"] = cursor
    if req.status == "cancelled":
        times["cancelled"] = cursor + timedelta(seconds=local.uniform(60, 86400))
    if req.status in ("reserved", "paid"):
        times["reserved"] = cursor + timedelta(milliseconds=local.uniform(20, 80))
    if req.status == "paid":
        times["payment"] = times["reserved"] + timedelta(seconds=local.uniform(600, 2 * 86400))
        times["paid"] = times["payment"] + timedelta(milliseconds=local.uniform(20, 120))
    return times


# -- the requisition service ----------------------------------------------------------

REQUISITION_COLUMNS = (
    "id",
    "voucher_no",
    "voucher_seq",
    "branch_id",
    "branch_code",
    "region_id",
    "origin",
    "requester_id",
    "requester_name",
    "amount_minor",
    "currency",
    "category",
    "purpose",
    "payee_name",
    "payee_method",
    "payee_account_ref",
    "urgent",
    "urgency_reason",
    "status",
    "revision",
    "changes_deadline",
    "submitted_at",
    "approval_case_id",
    "tier",
    "created_at",
    "updated_at",
)
HISTORY_COLUMNS = (
    "requisition_id",
    "at",
    "actor_id",
    "actor_name",
    "action",
    "from_status",
    "to_status",
    "comment",
    "message_id",
)


def _history(req: Req, times: dict[str, datetime], rng: random.Random) -> Iterator[tuple[Any, ...]]:
    requester = (req.requester.user_id, req.requester.username)

    def entry(
        at: datetime, actor: tuple[str, str], action: str, before: str | None, after: str, comment: str = ""
    ) -> tuple[Any, ...]:
        return (req.id, at, *actor, action, before, after, comment, uuid.UUID(int=rng.getrandbits(128), version=4))

    yield entry(times["created"], requester, "created", None, "draft")
    if req.status == "draft":
        return
    yield entry(times["submitted"], requester, "submitted", "draft", "submitted")
    chain = " > ".join(req.chain)
    yield entry(
        times["routed"], requester, "routed", "submitted", "pending_approval", f"tier {req.tier}, chain {chain}"
    )
    if req.status == "cancelled":
        yield entry(times["cancelled"], requester, "cancelled", "pending_approval", "cancelled", "no longer needed")
        return
    for n, decider in enumerate(req.deciders, start=1):
        actor = (decider.user_id, decider.username)
        if req.status == "rejected":
            yield entry(times[f"step{n}"], actor, "rejected", "pending_approval", "rejected", "not within policy")
            return
        role = req.chain[n - 1]
        yield entry(times[f"step{n}"], actor, f"approved as {role} (step {n})", "pending_approval", "pending_approval")
    if req.status in ("reserved", "paid"):
        last = req.deciders[-1]
        at = times[f"step{len(req.deciders)}"]
        yield entry(at, (last.user_id, last.username), "approved", "pending_approval", "approved")
        yield entry(times["reserved"], ("system", "system"), "funds-reserved", "approved", "reserved")
    if req.status == "paid" and req.payer is not None:
        payer = (req.payer.user_id, req.payer.username)
        yield entry(times["payment"], payer, "payment-started", "reserved", "payment_processing", f"by {payer[1]}")
        yield entry(times["paid"], payer, "paid", "payment_processing", "paid", f"{req.payee[1]} ref SEEDED")


def load_requisition_service(conn: psycopg.Connection[Any], reqs: list[Req], rng: random.Random) -> dict[str, int]:
    """The requisition service's tables: requisitions, their history, the voucher counters."""
    rows: dict[str, int] = {}

    def requisition(req: Req) -> tuple[Any, ...]:
        times = req.times
        updated = max(times.values())
        submitted = None if req.status == "draft" else times["submitted"]
        return (
            req.id,
            _voucher(req),
            req.seq,
            req.branch.id,
            req.branch.code,
            req.branch.region_id,
            _origin(req),
            req.requester.user_id,
            req.requester.username,
            req.amount,
            CURRENCY,
            req.category,
            f"{req.category.replace('_', ' ')} for {req.branch.code}",
            *req.payee,
            False,
            "",
            req.status,
            0 if req.status == "draft" else 1,
            None,
            submitted,
            req.case_id,
            None if req.status == "draft" else req.tier,
            req.created_at,
            updated,
        )

    rows["requisitions"] = copy_rows(conn, "requisitions", REQUISITION_COLUMNS, map(requisition, reqs))
    history = (h for r in reqs for h in _history(r, r.times, rng))
    rows["requisition_history"] = copy_rows(conn, "requisition_history", HISTORY_COLUMNS, history)
    last: dict[str, tuple[str, int]] = {}
    for req in reqs:
        if req.seq is not None:
            last[req.branch.code] = (req.branch.id, max(req.seq, last.get(req.branch.code, ("", 0))[1]))
    rows["voucher_sequences"] = copy_rows(conn, "voucher_sequences", ("branch_id", "last_no"), last.values())
    return rows


# -- the approval service -------------------------------------------------------------

CASE_COLUMNS = (
    "id",
    "requisition_id",
    "voucher_no",
    "branch_id",
    "region_id",
    "origin",
    "requester_id",
    "requester_name",
    "amount_minor",
    "currency",
    "category",
    "urgent",
    "urgency_reason",
    "payee",
    "reused_receipts",
    "fast_track",
    "tier",
    "policy_version",
    "revision",
    "status",
    "opened_at",
    "closed_at",
)
STEP_COLUMNS = (
    "case_id",
    "revision",
    "seq",
    "role",
    "kind",
    "status",
    "admin_may_act",
    "escalation_reason",
    "activated_at",
    "due_at",
    "sla_escalated",
    "decided_by",
    "decided_by_name",
    "acted_as",
    "decision",
    "decided_at",
    "comment",
)
CASE_STATUS = {"pending_approval": "open", "rejected": "rejected", "cancelled": "cancelled"}


def _steps(req: Req, times: dict[str, datetime]) -> Iterator[tuple[Any, ...]]:
    sla = timedelta(hours=DEFAULT_POLICY.sla_hours)
    for n, role in enumerate(req.chain, start=1):
        decided = req.deciders[n - 1] if n <= len(req.deciders) else None
        activated = times["routed"] if n == 1 else times.get(f"step{n - 1}")
        if decided is not None:
            decision = "reject" if req.status == "rejected" else "approve"
            status, decider = "done", (decided.user_id, decided.username, role, decision, times[f"step{n}"])
        elif req.status == "pending_approval":
            status, decider = ("active" if n == 1 else "waiting"), (None, None, None, None, None)
            activated = times["routed"] if n == 1 else None
        else:  # the case closed (cancelled, rejected) before this step: it never ran
            status, decider, activated = "void", (None, None, None, None, None), None
        due = activated + sla if activated is not None else None
        yield (req.case_id, 1, n, role, "approve", status, False, "", activated, due, False, *decider, "")


def load_approval_service(conn: psycopg.Connection[Any], reqs: list[Req], rng: random.Random) -> dict[str, int]:
    """The approval service's cases and steps (the approvers' directory fills from the gateway's events)."""
    submitted = [r for r in reqs if r.case_id is not None]

    def case(req: Req) -> tuple[Any, ...]:
        times = req.times
        status = CASE_STATUS.get(req.status, "approved")
        closed = None
        if status == "approved":
            closed = times[f"step{len(req.deciders)}"]
        elif status == "rejected":
            closed = times["step1"]
        elif status == "cancelled":
            closed = times["cancelled"]
        payee = json.dumps({"name": req.payee[0], "method": req.payee[1], "account_ref": req.payee[2]})
        return (
            req.case_id,
            req.id,
            _voucher(req),
            req.branch.id,
            req.branch.region_id,
            _origin(req),
            req.requester.user_id,
            req.requester.username,
            req.amount,
            CURRENCY,
            req.category,
            False,
            "",
            payee,
            "[]",
            False,
            req.tier,
            DEFAULT_POLICY.version,
            1,
            status,
            times["routed"],
            closed,
        )

    rows = {"approval_cases": copy_rows(conn, "approval_cases", CASE_COLUMNS, map(case, submitted))}
    steps = (s for r in submitted for s in _steps(r, r.times))
    rows["approval_steps"] = copy_rows(conn, "approval_steps", STEP_COLUMNS, steps)
    return rows


# -- the payment service --------------------------------------------------------------

PAYABLE_COLUMNS = (
    "requisition_id",
    "voucher_no",
    "branch_id",
    "region_id",
    "requester_id",
    "approver_ids",
    "amount_minor",
    "currency",
    "payee_name",
    "payee_method",
    "payee_account_ref",
    "hold_transfer_id",
    "approved_at",
    "reserved_at",
)
PAYMENT_COLUMNS = (
    "id",
    "requisition_id",
    "branch_id",
    "region_id",
    "amount_minor",
    "currency",
    "payee_name",
    "payee_method",
    "payee_account_ref",
    "state",
    "executions",
    "attempts",
    "executor_id",
    "executor_name",
    "provider",
    "provider_reference",
    "redrives",
    "created_at",
    "updated_at",
    "completed_at",
)
EXECUTION_COLUMNS = (
    "payment_id",
    "number",
    "executor_id",
    "executor_name",
    "started_at",
    "finished_at",
    "outcome",
    "reason",
)


def load_payment_service(conn: psycopg.Connection[Any], reqs: list[Req], rng: random.Random) -> dict[str, int]:
    """What payment knows of approved requisitions, and the payments of the paid ones."""
    approved = [r for r in reqs if r.status in ("reserved", "paid")]
    paid = [r for r in approved if r.status == "paid" and r.payer is not None]

    def payable(req: Req) -> tuple[Any, ...]:
        times = req.times
        approvers = json.dumps(sorted({d.user_id for d in req.deciders}))
        approved_at = times[f"step{len(req.deciders)}"]
        hold = ledger_domain.transfer_id("hold", req.id)
        return (
            req.id,
            _voucher(req),
            req.branch.id,
            req.branch.region_id,
            req.requester.user_id,
            approvers,
            req.amount,
            CURRENCY,
            *req.payee,
            hold,
            approved_at,
            times["reserved"],
        )

    def payment(req: Req) -> tuple[Any, ...]:
        times = req.times
        assert req.payer is not None
        return (
            payment_id_for(req.id),
            req.id,
            req.branch.id,
            req.branch.region_id,
            req.amount,
            CURRENCY,
            *req.payee,
            "completed",
            1,
            1,
            req.payer.user_id,
            req.payer.username,
            req.payee[1],
            f"SEED-{req.seq:06d}",
            0,
            times["payment"],
            times["paid"],
            times["paid"],
        )

    def execution(req: Req) -> tuple[Any, ...]:
        times = req.times
        assert req.payer is not None
        payer = req.payer
        return (
            payment_id_for(req.id),
            1,
            payer.user_id,
            payer.username,
            times["payment"],
            times["paid"],
            "completed",
            "",
        )

    rows = {"payable_requisitions": copy_rows(conn, "payable_requisitions", PAYABLE_COLUMNS, map(payable, approved))}
    rows["payments"] = copy_rows(conn, "payments", PAYMENT_COLUMNS, map(payment, paid))
    rows["payment_executions"] = copy_rows(conn, "payment_executions", EXECUTION_COLUMNS, map(execution, paid))
    return rows


# -- the ledger -----------------------------------------------------------------------

ACCOUNT_COLUMNS = (
    "id",
    "code",
    "kind",
    "currency",
    "branch_id",
    "branch_code",
    "region_id",
    "debits_posted",
    "credits_posted",
    "debits_pending",
    "credits_pending",
    "created_at",
)
TRANSFER_COLUMNS = (
    "id",
    "debit_account_id",
    "credit_account_id",
    "amount_minor",
    "currency",
    "kind",
    "pending",
    "pending_id",
    "requisition_id",
    "memo",
    "created_at",
)
REPLENISHMENT_COLUMNS = (
    "id",
    "branch_id",
    "amount_minor",
    "currency",
    "status",
    "requested_by",
    "requested_at",
    "comment",
    "decided_by",
    "decided_at",
    "decision_comment",
    "transfer_id",
    "seq",
)


@dataclass(slots=True)
class Account:
    id: uuid.UUID
    code: str
    kind: str
    branch: BranchInfo | None
    # debits_posted, credits_posted, debits_pending, credits_pending
    totals: list[int] = field(default_factory=lambda: [0, 0, 0, 0])


class Ledger:
    """Accounts and the transfers between them, each transfer kept in the accounts' cached totals.

    Transfers are produced lazily, straight into COPY, so generating them in Python overlaps
    PostgreSQL storing them; the accounts are written after them, with their final totals.
    """

    def __init__(self, branches: list[BranchInfo], start: datetime) -> None:
        self.start = start
        self.bank = Account(uuid.uuid4(), ledger_domain.bank_code(CURRENCY), "bank", None)
        self.floats = {
            b.code: Account(uuid.uuid4(), ledger_domain.float_code(b.code, CURRENCY), "float", b) for b in branches
        }
        self.over_short = [
            Account(uuid.uuid4(), ledger_domain.over_short_code(b.code, CURRENCY), "over_short", b) for b in branches
        ]
        self.expenses = {
            (c, b.code): Account(uuid.uuid4(), ledger_domain.expense_code(c, b.code, CURRENCY), "expense", b)
            for b in branches
            for c in CATEGORIES
        }
        self.held: dict[str, int] = defaultdict(int)  # float code -> every hold ever placed on it

    def accounts(self) -> list[Account]:
        return [self.bank, *self.floats.values(), *self.over_short, *self.expenses.values()]

    def transfer(
        self,
        transfer_id: uuid.UUID,
        debit: Account,
        credit: Account,
        amount: int,
        kind: str,
        at: datetime,
        *,
        pending_id: uuid.UUID | None = None,
        requisition_id: uuid.UUID | None = None,
        memo: str = "",
    ) -> tuple[Any, ...]:
        """One transfer's row, with the cache arithmetic of ``services.ledger.service._transfer``."""
        pending = kind == "hold"
        if kind in ("post", "void"):
            debit.totals[2] -= amount
            credit.totals[3] -= amount
        if pending:
            debit.totals[2] += amount
            credit.totals[3] += amount
            self.held[credit.code] += amount
        elif kind != "void":
            debit.totals[0] += amount
            credit.totals[1] += amount
        return (
            transfer_id,
            debit.id,
            credit.id,
            amount,
            CURRENCY,
            kind,
            pending,
            pending_id,
            requisition_id,
            memo,
            at,
        )

    def spend(
        self, rid: uuid.UUID, branch: str, category: str, amount: int, held: datetime, posted: datetime | None
    ) -> Iterator[tuple[Any, ...]]:
        """A requisition's hold on its branch float, and its posting once paid (ids as the ledger derives them)."""
        expense, float_account = self.expenses[(category, branch)], self.floats[branch]
        hold = ledger_domain.transfer_id("hold", rid)
        memo = f"hold for requisition {rid}"
        yield self.transfer(hold, expense, float_account, amount, "hold", held, requisition_id=rid, memo=memo)
        if posted is not None:
            post = ledger_domain.transfer_id("post", rid)
            yield self.transfer(
                post, expense, float_account, amount, "post", posted, pending_id=hold, requisition_id=rid, memo="paid"
            )

    def fund(self, key: object, branch: str, amount: int, at: datetime, kind: str) -> tuple[Any, ...]:
        """Money from the bank to a float: its opening (``open``) or a replenishment (``replenish``)."""
        float_account = self.floats[branch]
        return self.transfer(ledger_domain.transfer_id(kind, key), float_account, self.bank, amount, "funding", at)


@dataclass
class LedgerPlan:
    """The ledger to load: its transfers (a generator) and, once they are drawn, the replenishments."""

    ledger: Ledger
    replenishments: list[tuple[Any, ...]] = field(default_factory=list)


def ledger_transfers(plan: LedgerPlan, org: Org, reqs: list[Req], transfers: int, rng: random.Random) -> Iterator:
    """Every transfer: the loaded requisitions', the archive's (earlier years), then the floats' funding.

    Funding comes last because it is sized from what was spent: every float ends with
    ``FLOAT_HEADROOM`` available, never below zero.
    """
    ledger = plan.ledger
    start = ledger.start
    count = 0
    for req in reqs:
        if req.status in ("reserved", "paid"):
            for row in ledger.spend(
                req.id, req.branch.code, req.category, req.amount, req.times["reserved"], req.times.get("paid")
            ):
                count += 1
                yield row
    funding = len(org.branches) * (1 + REPLENISHMENTS_PER_BRANCH)
    archived = max(0, (transfers - count - funding + 1) // 2)
    codes = [b.code for b in org.branches]
    span = (timedelta(days=HISTORY_DAYS - 366) - timedelta(days=1)).total_seconds()
    for _ in range(archived):
        rid = uuid.UUID(int=rng.getrandbits(128), version=4)
        held = start + timedelta(days=1, seconds=rng.uniform(0, span))
        posted = held + timedelta(seconds=rng.uniform(600, 86400))
        yield from ledger.spend(rid, rng.choice(codes), rng.choice(CATEGORIES), _amount(rng), held, posted)
    treasury, finance = org.people["treasury"], org.people["finance"]
    for branch in org.branches:
        float_account = ledger.floats[branch.code]
        need = ledger.held[float_account.code] + FLOAT_HEADROOM
        opening = need // 10
        yield ledger.fund(float_account.id, branch.code, opening, start, "open")
        monthly = math.ceil((need - opening) / REPLENISHMENTS_PER_BRANCH)
        for n in range(REPLENISHMENTS_PER_BRANCH):
            request_id = uuid.UUID(int=rng.getrandbits(128), version=4)
            at = start + timedelta(days=30 * n + 1)
            row = ledger.fund(request_id, branch.code, monthly, at, "replenish")
            asker, decider = rng.choice(treasury), rng.choice(finance)
            plan.replenishments.append(
                (
                    request_id,
                    branch.id,
                    monthly,
                    CURRENCY,
                    "approved",
                    asker.user_id,
                    at - timedelta(hours=4),
                    "monthly top-up",
                    decider.user_id,
                    at,
                    "ok",
                    row[0],
                    n + 1,
                )
            )
            yield row


def load_ledger(
    conn: psycopg.Connection[Any], org: Org, reqs: list[Req], transfers: int, rng: random.Random, now: datetime
) -> dict[str, int]:
    """Transfers, then accounts (their cached totals equal to their transfers' sums), then replenishments.

    The transfers go in first, with the foreign-key triggers off for that session
    (``session_replication_role = replica``, as ``pg_restore --disable-triggers`` does): the
    accounts they name are only written once every transfer has added to their totals. The
    rows are consistent by construction, and the trial balance checks them.
    """
    plan = LedgerPlan(Ledger(org.branches, now - timedelta(days=HISTORY_DAYS)))
    conn.execute("SET session_replication_role = replica")
    rows = {
        "transfers": copy_rows(conn, "transfers", TRANSFER_COLUMNS, ledger_transfers(plan, org, reqs, transfers, rng))
    }
    conn.execute("RESET session_replication_role")
    conn.commit()
    accounts = (
        (
            a.id,
            a.code,
            a.kind,
            CURRENCY,
            a.branch.id if a.branch else None,
            a.branch.code if a.branch else None,
            a.branch.region_id if a.branch else None,
            *a.totals,
            plan.ledger.start,
        )
        for a in plan.ledger.accounts()
    )
    rows["accounts"] = copy_rows(conn, "accounts", ACCOUNT_COLUMNS, accounts)
    rows["replenishments"] = copy_rows(conn, "replenishments", REPLENISHMENT_COLUMNS, plan.replenishments)
    # Each float's days, from the transfers just loaded, as the ledger keeps them with each transfer.
    rows["float_days"] = conn.execute(float_days.REBUILD_SQL).rowcount
    conn.commit()
    return rows


# -- after loading --------------------------------------------------------------------


def analyse(settings: Settings, names: Iterable[str] = DATABASES) -> None:
    """VACUUM (ANALYZE) each database: what autovacuum would do after a bulk load (it is off here)."""
    for name in names:
        with psycopg.connect(conninfo(settings.database_url(name)), autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE)")


def projections_command_exists(env: dict[str, str]) -> bool:
    """Whether this tree's command line has ``pettycash projections`` (the gateway's read models)."""
    probe = subprocess.run(
        [sys.executable, "-m", "pettycash", "projections", "--help"],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return probe.returncode == 0


def rebuild_projections(env: dict[str, str]) -> str:
    """Fill the gateway's read models from the services (needs the stack running); what it said."""
    done = subprocess.run(
        [sys.executable, "-m", "pettycash", "projections", "rebuild"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pettycash projections rebuild failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return (done.stdout + done.stderr).strip()[-500:]


# -- all of it ------------------------------------------------------------------------


def seed(settings: Settings, plan: SeedPlan, otp_key: str, password_hash: str = "") -> Seeded:
    """Load the organisation and the volume; analyse; return what the stages need.

    ``password_hash``: the page users' (see :func:`page_password`), given to every person of
    :data:`PAGE_ROLES`."""
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
