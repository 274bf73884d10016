"""Every account's days (what its transfers added to its four totals each UTC day), kept with
its transfers for the trial balance at a date; rebuilt here from the transfers already written
(``days.ACCOUNT_DAYS_REBUILD_SQL``, PostgreSQL; an embedded SQLite ledger starts them empty).
Indexes for the reports: transfers in the order they were written (the general ledger export's
pages), and a float's days by day (fund health).

Revision ID: ledger_0005
Revises: ledger_0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ledger_0005"
down_revision: str | None = "ledger_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As ``services.ledger.days.ACCOUNT_DAYS_REBUILD_SQL`` at this revision (a migration never imports
# the code it upgrades, which may change after it).
REBUILD = """
WITH moves AS (
    SELECT (created_at AT TIME ZONE 'UTC')::date AS day, debit_account_id, credit_account_id,
           CASE WHEN pending OR kind = 'void' THEN 0 ELSE amount_minor END AS posted,
           (CASE WHEN pending THEN amount_minor ELSE 0 END)
           - (CASE WHEN kind IN ('post', 'void') THEN amount_minor ELSE 0 END) AS held
    FROM transfers
),
sides AS (
    SELECT debit_account_id AS account_id, day, posted AS dp, 0 AS cp, held AS dh, 0 AS ch FROM moves
    UNION ALL
    SELECT credit_account_id, day, 0, posted, 0, held FROM moves
)
INSERT INTO account_days (account_id, day, debits_posted, credits_posted, debits_pending, credits_pending)
SELECT account_id, day, sum(dp), sum(cp), sum(dh), sum(ch) FROM sides GROUP BY account_id, day
"""


def upgrade() -> None:
    op.create_table(
        "account_days",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("debits_posted", sa.BigInteger(), nullable=False),
        sa.Column("credits_posted", sa.BigInteger(), nullable=False),
        sa.Column("debits_pending", sa.BigInteger(), nullable=False),
        sa.Column("credits_pending", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("account_id", "day"),
    )
    op.create_index("ix_account_days_day", "account_days", ["day"])
    op.create_index("ix_transfers_created_at_id", "transfers", ["created_at", "id"])
    op.create_index("ix_float_days_account_day", "float_days", ["account_id", "day"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(REBUILD)


def downgrade() -> None:
    op.drop_index("ix_float_days_account_day", table_name="float_days")
    op.drop_index("ix_transfers_created_at_id", table_name="transfers")
    op.drop_index("ix_account_days_day", table_name="account_days")
    op.drop_table("account_days")
