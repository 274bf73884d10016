"""The ledger of a generated history: accounts, at least the asked-for number of transfers, replenishments.

Transfers beyond those of the loaded requisitions are the earlier years' activity (hold and
post pairs of archived requisitions) and the floats' monthly replenishments. The accounts'
cached totals equal the sums of their transfers by construction (the ledger's own check
proves it after loading), and no float ever goes below zero.
"""

from __future__ import annotations

import math
import random
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg

from pettycash.history.plan import (
    CURRENCY,
    FLOAT_HEADROOM,
    HISTORY_DAYS,
    REPLENISHMENTS_PER_BRANCH,
    BranchInfo,
    Org,
    Req,
    copy_rows,
    draw_amount,
)
from services.ledger import days as float_days
from services.ledger import domain as ledger_domain
from shared.contracts.payloads import CATEGORIES

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
        yield from ledger.spend(rid, rng.choice(codes), rng.choice(CATEGORIES), draw_amount(rng), held, posted)
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
    rows.update(rebuild_aggregates(conn))
    conn.commit()
    return rows


def rebuild_aggregates(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """The ledger's aggregates from the transfers just loaded, as the ledger keeps them with each
    transfer: the one place a bulk load fills them, so a new aggregate is added here."""
    return {
        "float_days": conn.execute(float_days.REBUILD_SQL).rowcount,
        "account_days": conn.execute(float_days.ACCOUNT_DAYS_REBUILD_SQL).rowcount,
    }
