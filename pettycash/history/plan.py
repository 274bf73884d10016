"""What a generated history holds: how much to load, the organisation's shape, each requisition's life.

Every draw comes from one ``random.Random(plan.seed)``, so a seed repeats its history (ids and
all); times are relative to the moment of loading.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from services.approval.domain import DEFAULT_POLICY
from shared.contracts.money import Money
from shared.contracts.payloads import CATEGORIES
from shared.contracts.roles import SECOND_FACTOR_ROLES, Role

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
    branches: int = 60  # field branches in all, spread evenly over the regions (a head office besides)
    staff_per_branch: int = 3
    treasury_users: int = 300
    finance_users: int = 4
    reserved_at_least: int = 0  # requisitions waiting for treasury: the payment stage pays these
    seed: int = 20250101

    def __post_init__(self) -> None:
        if not 1 <= self.regions <= len(REGIONS):
            raise ValueError(f"regions: 1 to {len(REGIONS)}, not {self.regions}")
        if self.branches < self.regions:
            raise ValueError(f"at least one branch per region: {self.branches} branches for {self.regions} regions")
        if min(self.requisitions, self.transfers, self.reserved_at_least) < 0 or self.staff_per_branch < 1:
            raise ValueError("counts cannot be negative, and every branch has staff")
        if self.treasury_users < 1 or self.finance_users < 1:
            raise ValueError("at least one treasury and one finance user")

    def branches_in(self, region: int) -> int:
        """How many field branches region number ``region`` (from 0) has."""
        return self.branches // self.regions + (1 if region < self.branches % self.regions else 0)


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


# -- the requisitions' lives ----------------------------------------------------------


def _pick_status(rng: random.Random) -> str:
    roll, total = rng.random(), 0.0
    for status, share in STATUS_SHARES:
        total += share
        if roll < total:
            return status
    return "paid"


def draw_amount(rng: random.Random) -> int:
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
    reqs = _draw_requisitions(org, plan, rng)
    # Enough requisitions wait for treasury for the payment stage: paid ones become reserved.
    missing = plan.reserved_at_least - sum(r.status == "reserved" for r in reqs)
    for req in (r for r in reqs if r.status == "paid"):
        if missing <= 0:
            break
        req.status, missing = "reserved", missing - 1
    for req in reqs:
        _live(req, org, rng, now)
    # Voucher numbers are issued per branch in submission order, without gaps.
    reqs.sort(key=lambda r: r.created_at)
    counters: dict[str, int] = defaultdict(int)
    for req in reqs:
        if req.status != "draft":
            counters[req.branch.code] += 1
            req.seq = counters[req.branch.code]
    return reqs


def _draw_requisitions(org: Org, plan: SeedPlan, rng: random.Random) -> list[Req]:
    """Who asked for how much, for what, and how far each got (one in twenty at head office)."""
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
            amount=draw_amount(rng),
            category=rng.choice(CATEGORIES),
            payee=_payee(rng),
            status=status,
            created_at=datetime.min.replace(tzinfo=UTC),
        )
        reqs.append(req)
    return reqs


def _live(req: Req, org: Org, rng: random.Random, now: datetime) -> None:
    """A requisition's life to its status: when, its tier and chain, who decided and who paid."""
    req.created_at = _created_at(rng, req.status, now)
    if req.status == "reserved":
        req.payee = ("Cash payee", "cash", "")  # the payment stage pays from the cash box
    tier = DEFAULT_POLICY.tier_for(origin_of(req), Money(CURRENCY, req.amount))
    req.tier, req.chain = tier.name, tier.chain
    if req.status != "draft":
        req.case_id = uuid.UUID(int=rng.getrandbits(128), version=4)
    decided = {"paid": len(req.chain), "reserved": len(req.chain), "rejected": 1}.get(req.status, 0)
    req.deciders = [_decider(org, rng, role, req.branch) for role in req.chain[:decided]]
    if req.status == "paid":
        req.payer = rng.choice(org.people["treasury"])
    req.times = _timeline(req)


def origin_of(req: Req) -> str:
    return "head_office" if req.branch.head_office else "branch"


def voucher_of(req: Req) -> str | None:
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
