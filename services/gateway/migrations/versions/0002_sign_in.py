"""People sign in: passwords, lockout, e-mail and region memberships of users; personal API
tokens (kind, read-only, expiry); one-time password links; recovery codes; sessions of
embedded mode; security events; branch float levels; the authenticator projection.

Revision ID: gateway_0002
Revises: gateway_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "gateway_0002"
down_revision: str | None = "gateway_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _timestamp(name: str, *, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    # Batch mode: SQLite cannot add a unique constraint to a table in place.
    with op.batch_alter_table("users") as users:
        users.add_column(sa.Column("email", sa.String(length=254), nullable=True))
        users.add_column(sa.Column("password_hash", sa.String(length=256), nullable=True))
        users.add_column(_timestamp("password_changed_at"))
        users.add_column(sa.Column("failed_sign_ins", sa.Integer(), nullable=False, server_default="0"))
        users.add_column(_timestamp("locked_until"))
        users.add_column(_timestamp("last_sign_in_at"))
        users.add_column(_timestamp("sessions_valid_after"))
        users.create_unique_constraint("uq_users_email", ["email"])
    with op.batch_alter_table("api_tokens") as tokens:
        tokens.add_column(sa.Column("kind", sa.String(length=16), nullable=False, server_default="personal"))
        tokens.add_column(sa.Column("read_only", sa.Boolean(), nullable=False, server_default=sa.false()))
        tokens.add_column(_timestamp("expires_at"))
    with op.batch_alter_table("branches") as branches:
        branches.add_column(sa.Column("levels_currency", sa.String(length=3), nullable=True))
        branches.add_column(sa.Column("reorder_level", sa.BigInteger(), nullable=True))
        branches.add_column(sa.Column("imprest", sa.BigInteger(), nullable=True))

    op.create_table(
        "region_memberships",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("region_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["region_id"], ["regions.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("user_id", "region_id"),
    )
    op.create_table(
        "password_links",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        _timestamp("created_at", nullable=False),
        _timestamp("expires_at", nullable=False),
        _timestamp("used_at"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_password_links_user_id", "password_links", ["user_id"])
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        _timestamp("created_at", nullable=False),
        _timestamp("used_at"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_recovery_codes_user_id", "recovery_codes", ["user_id"])
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("data", JSON, nullable=False),
        _timestamp("expires_at", nullable=False),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    op.create_index("ix_web_sessions_user_id", "web_sessions", ["user_id"])
    op.create_index("ix_web_sessions_expires_at", "web_sessions", ["expires_at"])
    op.create_table(
        "security_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        _timestamp("at", nullable=False),
        sa.Column("type", sa.String(length=48), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column("actor_username", sa.String(length=64), nullable=True),
        sa.Column("subject_id", sa.String(length=64), nullable=True),
        sa.Column("subject_username", sa.String(length=64), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=256), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_security_events_at", "security_events", ["at"])
    op.create_index("ix_security_events_type_at", "security_events", ["type", "at"])
    op.create_index("ix_security_events_subject_at", "security_events", ["subject_id", "at"])
    op.create_table(
        "rm_authenticators",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("body", JSON, nullable=False),
        _timestamp("source_at", nullable=False),
        _timestamp("projected_at", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    for table in ("rm_authenticators", "security_events", "web_sessions", "recovery_codes", "password_links"):
        op.drop_table(table)
    op.drop_table("region_memberships")
    with op.batch_alter_table("branches") as branches:
        for column in ("imprest", "reorder_level", "levels_currency"):
            branches.drop_column(column)
    with op.batch_alter_table("api_tokens") as tokens:
        for column in ("expires_at", "read_only", "kind"):
            tokens.drop_column(column)
    with op.batch_alter_table("users") as users:
        users.drop_constraint("uq_users_email", type_="unique")
        for column in (
            "sessions_valid_after",
            "last_sign_in_at",
            "locked_until",
            "failed_sign_ins",
            "password_changed_at",
            "password_hash",
            "email",
        ):
            users.drop_column(column)
