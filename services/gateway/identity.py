"""Identity use cases: users, roles, memberships, bearer tokens, and the demo organisation."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, or_, select
from sqlalchemy.orm import Session

from services.gateway.models import ApiToken, Branch, Membership, Region, RegionMembership, User, UserRole
from shared.contracts.catalog import BRANCH_DIRECTORY_UPDATED, USER_DIRECTORY_UPDATED
from shared.contracts.envelope import SYSTEM_ACTOR, Actor, Envelope
from shared.contracts.roles import ROLES
from shared.db.types import utcnow
from shared.messaging.outbox import add_to_outbox

TOKEN_PREFIX = "pc_"  # noqa: S105 - a public prefix, not a secret
DEMO_TOKEN = "demo"  # noqa: S105 - the kind of the demo users' tokens (refused in production)


def hash_token(token: str) -> str:
    """The stored form of a bearer token."""
    return hashlib.sha256(token.encode()).hexdigest()


def actor_of(user: User) -> Actor:
    """The actor a message envelope carries for this user."""
    branches = [m.branch for m in user.memberships]
    return Actor(
        user_id=str(user.id),
        username=user.username,
        roles=frozenset(r.role for r in user.roles),
        branch_ids=frozenset(str(b.id) for b in branches),
        region_ids=frozenset(str(b.region_id) for b in branches) | {str(m.region_id) for m in user.region_memberships},
    )


@dataclass(frozen=True)
class TokenIdentity:
    """Who a bearer token speaks for, and what the token itself allows."""

    actor: Actor
    token_id: str
    read_only: bool


def _actor_columns() -> Any:
    """The user, roles, branches and regions of one user in one SELECT (joined; the product of
    roles, branches and regions is small and folded by :func:`_actor_from_rows`)."""
    return (
        select(User.id, User.username, UserRole.role, Branch.id, Branch.region_id, RegionMembership.region_id)
        .outerjoin(UserRole, UserRole.user_id == User.id)
        .outerjoin(Membership, Membership.user_id == User.id)
        .outerjoin(Branch, Branch.id == Membership.branch_id)
        .outerjoin(RegionMembership, RegionMembership.user_id == User.id)
    )


def _token_query(*, demo_tokens: bool) -> Any:
    query = (
        _actor_columns()
        .add_columns(ApiToken.id, ApiToken.read_only)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(
            ApiToken.token_hash == bindparam("token_hash"),
            ApiToken.revoked_at.is_(None),
            or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > bindparam("now", type_=ApiToken.expires_at.type)),
            User.is_active.is_(True),
        )
    )
    return query if demo_tokens else query.where(ApiToken.kind != DEMO_TOKEN)


# Built once: every request runs one of these, and building a SELECT costs more than running it.
TOKEN_QUERIES = {True: _token_query(demo_tokens=True), False: _token_query(demo_tokens=False)}
SESSION_ACTOR_QUERY = _actor_columns().where(
    User.id == bindparam("user_id"),
    User.is_active.is_(True),
    or_(
        User.sessions_valid_after.is_(None),
        User.sessions_valid_after <= bindparam("began_at", type_=User.sessions_valid_after.type),
    ),
)


def authenticate(
    session: Session | Connection, token: str, *, now: datetime | None = None, demo_tokens: bool = True
) -> TokenIdentity | None:
    """Who a bearer token speaks for, or None for an unknown, revoked, expired or inactive one
    (or a demo token where demo tokens are off).

    One SELECT (every request pays it): the token, its user, the user's roles, branches and
    regions, joined. No cache, so a revoked token or a deactivated user is refused from the
    next request on.
    """
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        return None
    rows = session.execute(TOKEN_QUERIES[demo_tokens], {"token_hash": hash_token(token), "now": now or utcnow()}).all()
    if not rows:
        return None
    return TokenIdentity(_actor_from_rows(rows), str(rows[0][6]), bool(rows[0][7]))


def session_actor(session: Session | Connection, user_id: str, began_at: datetime) -> Actor | None:
    """The actor of a session begun at ``began_at``, or None if the user is gone, inactive, or
    ended their sessions after it began (sign out everywhere, a password reset)."""
    try:
        key = uuid.UUID(user_id)
    except ValueError:
        return None
    rows = session.execute(SESSION_ACTOR_QUERY, {"user_id": key, "began_at": began_at}).all()
    return _actor_from_rows(rows) if rows else None


def _actor_from_rows(rows: Any) -> Actor:
    """Fold (user id, username, role, branch id, branch's region id, region id) rows into
    :func:`actor_of`'s shape."""
    roles: set[str] = set()
    branches: set[str] = set()
    regions: set[str] = set()
    for row in rows:
        _user_id, _username, role, branch_id, branch_region, region_id = row[:6]
        if role is not None:
            roles.add(role)
        if branch_id is not None:
            branches.add(str(branch_id))
            regions.add(str(branch_region))
        if region_id is not None:
            regions.add(str(region_id))
    user_id, username = rows[0][0], rows[0][1]
    return Actor(
        user_id=str(user_id),
        username=username,
        roles=frozenset(roles),
        branch_ids=frozenset(branches),
        region_ids=frozenset(regions),
    )


def issue_token(session: Session, user: User, name: str = "default", *, kind: str = "cli") -> str:
    """Create a bearer token for a user; the plain token is returned once and never stored."""
    return new_token(session, user, name, kind=kind)[0]


def new_token(
    session: Session,
    user: User,
    name: str,
    *,
    kind: str = "personal",
    read_only: bool = False,
    expires_at: datetime | None = None,
) -> tuple[str, ApiToken]:
    """Create a bearer token; the plain token (shown once, never stored) and its row."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id,
        token_hash=hash_token(token),
        name=name,
        kind=kind,
        read_only=read_only,
        expires_at=expires_at,
        created_at=utcnow(),
    )
    session.add(row)
    return token, row


def create_user(session: Session, username: str, full_name: str, roles: list[str], branch_codes: list[str]) -> User:
    """Create a user with roles and branch memberships; the caller commits."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles: {sorted(unknown)}")
    branches = list(session.scalars(select(Branch).where(Branch.code.in_(branch_codes))))
    if len(branches) != len(set(branch_codes)):
        raise ValueError(f"unknown branch in {branch_codes}")
    user = User(id=uuid.uuid4(), username=username, full_name=full_name, created_at=utcnow())
    user.roles = [UserRole(role=r) for r in roles]
    user.memberships = [Membership(branch_id=b.id) for b in branches]
    session.add(user)
    session.flush()
    announce(session, user)
    return user


def announce(session: Session, user: User) -> None:
    """Tell the other services who this user is now (they keep read models, e.g. approvers)."""
    session.refresh(user)
    payload = {**actor_of(user).to_dict(), "full_name": user.full_name, "active": user.is_active}
    add_to_outbox(session, Envelope(type=USER_DIRECTORY_UPDATED.name, payload=payload, actor=SYSTEM_ACTOR))


@dataclass(frozen=True)
class DemoUser:
    username: str
    full_name: str
    roles: tuple[str, ...]
    branches: tuple[str, ...]


DEMO_REGIONS = (("NAI", "Nairobi region"), ("CST", "Coast region"))
# code, name, region, head office, (reorder level, imprest) in KES major units
DEMO_BRANCHES = (
    ("HQ", "Head office", "NAI", True, None),
    ("NBO-CBD", "Nairobi CBD", "NAI", False, (50_000, 200_000)),
    ("NBO-WST", "Westlands", "NAI", False, (30_000, 120_000)),
    ("MSA-01", "Mombasa Island", "CST", False, (40_000, 150_000)),
    ("MLD-01", "Malindi", "CST", False, (20_000, 80_000)),
)
DEMO_MAIL_DOMAIN = "pettycash.example"
DEMO_USERS = (
    DemoUser("alice", "Alice Wanjiru (staff)", ("staff",), ("NBO-CBD",)),
    DemoUser("bob", "Bob Otieno (branch manager)", ("branch_manager",), ("NBO-CBD",)),
    DemoUser("rita", "Rita Njeri (regional manager)", ("regional_manager",), ("NBO-CBD", "NBO-WST")),
    DemoUser("tom", "Tom Mwangi (treasury)", ("treasury",), ("HQ",)),
    DemoUser("fiona", "Fiona Achieng (finance)", ("finance",), ("HQ",)),
    DemoUser("carol", "Carol Kamau (CFO)", ("cfo",), ("HQ",)),
    DemoUser("aud", "Audrey Mutua (auditor)", ("auditor",), ("HQ",)),
    DemoUser("admin", "Adam Kiprop (admin)", ("admin",), ("HQ",)),
    DemoUser("sam", "Sam Hassan (staff)", ("staff",), ("MSA-01",)),
    DemoUser("mary", "Mary Wekesa (branch manager)", ("branch_manager",), ("MSA-01",)),
)


def seed_demo(session: Session) -> dict[str, str]:
    """Create the demo organisation once; returns the tokens of users created now."""
    if session.scalar(select(Region.id).limit(1)) is not None:
        return {}
    regions = {code: Region(code=code, name=name) for code, name in DEMO_REGIONS}
    session.add_all(regions.values())
    session.flush()
    for code, name, region, head_office, levels in DEMO_BRANCHES:
        branch = Branch(code=code, name=name, region_id=regions[region].id, is_head_office=head_office)
        if levels is not None:
            branch.levels_currency = "KES"
            branch.reorder_level, branch.imprest = (major * 100 for major in levels)
        session.add(branch)
        session.flush()
        announce_branch(session, branch)
    tokens: dict[str, str] = {}
    for demo in DEMO_USERS:
        user = create_user(session, demo.username, demo.full_name, list(demo.roles), list(demo.branches))
        user.email = f"{demo.username}@{DEMO_MAIL_DOMAIN}"
        tokens[demo.username] = issue_token(session, user, "demo", kind=DEMO_TOKEN)
    return tokens


def set_demo_passwords(session: Session, hash_password: Callable[[str], str]) -> dict[str, str]:
    """Give every demo user a random password (printed by ``make run``); username to password."""
    passwords: dict[str, str] = {}
    for demo in DEMO_USERS:
        user = session.scalar(select(User).where(User.username == demo.username))
        if user is not None:
            passwords[demo.username] = "-".join(secrets.token_urlsafe(4) for _ in range(4))
            user.password_hash = hash_password(passwords[demo.username])
            user.password_changed_at = utcnow()
    return passwords


def level_of(branch: Branch, minor: int | None) -> dict[str, Any] | None:
    if minor is None or not branch.levels_currency:
        return None
    return {"minor_units": minor, "currency": branch.levels_currency}


def announce_branch(session: Session, branch: Branch) -> None:
    """Tell the ledger about a branch (it keeps its float's reorder level and imprest amount)."""
    payload = {
        "branch_id": str(branch.id),
        "branch_code": branch.code,
        "region_id": str(branch.region_id),
        "name": branch.name,
        "head_office": branch.is_head_office,
        "reorder_level": level_of(branch, branch.reorder_level),
        "imprest": level_of(branch, branch.imprest),
    }
    add_to_outbox(session, Envelope(type=BRANCH_DIRECTORY_UPDATED.name, payload=payload, actor=SYSTEM_ACTOR))
