"""Administration of who is who: regions, branches (with their float's levels), users, their
roles and memberships, invitations, deactivation.

The gateway owns identity; the services hear of every change that matters to them through
its outbox: ``UserDirectoryUpdated`` (the approval service routes by it, so a deactivated
user leaves approver routing at once) and ``BranchDirectoryUpdated`` (the ledger keeps each
float's reorder level and imprest amount). Each use case runs in the caller's transaction and
records its security events there; refusals are :class:`~services.gateway.accounts.Refused`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from services.gateway import identity
from services.gateway.accounts import INVITATION, Accounts, Link, Refused
from services.gateway.models import ApiToken, Branch, Membership, Region, RegionMembership, User, UserRole
from services.gateway.readmodels import rm_authenticators
from services.gateway.security import EventType
from shared.contracts.envelope import Actor
from shared.contracts.roles import Role
from shared.db.types import utcnow

LIST_LIMIT = 200


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


# -- regions and branches ---------------------------------------------------------------


def region_body(region: Region) -> dict[str, Any]:
    return {"id": str(region.id), "code": region.code, "name": region.name}


def branch_body(branch: Branch) -> dict[str, Any]:
    """A branch as the administration API shows it (levels as money, or null)."""

    def money(minor: int | None) -> dict[str, Any] | None:
        return (
            None
            if minor is None or not branch.levels_currency
            else {"minor_units": minor, "currency": branch.levels_currency}
        )

    return {
        "id": str(branch.id),
        "code": branch.code,
        "name": branch.name,
        "region": branch.region.code,
        "head_office": branch.is_head_office,
        "reorder_level": identity.level_of(branch, branch.reorder_level),
        "imprest": identity.level_of(branch, branch.imprest),
    }


def regions(session: Session) -> list[dict[str, Any]]:
    return [region_body(r) for r in session.scalars(select(Region).order_by(Region.code))]


def _region(session: Session, code: str) -> Region:
    region = session.scalar(select(Region).where(Region.code == code))
    if region is None:
        raise Refused(422, "unknown-region", f"No region has code {code!r}.")
    return region


def create_region(session: Session, code: str, name: str) -> dict[str, Any]:
    """A new region; 409 if its code is taken."""
    if session.scalar(select(Region.id).where(Region.code == code)) is not None:
        raise Refused(409, "region-exists", f"A region with code {code!r} exists already.")
    region = Region(code=code, name=name)
    session.add(region)
    session.flush()
    return region_body(region)


def update_region(session: Session, code: str, name: str) -> dict[str, Any]:
    """Rename a region; 404 if there is none with this code."""
    region = session.scalar(select(Region).where(Region.code == code))
    if region is None:
        raise Refused(404, "not-found", f"No region has code {code!r}.")
    region.name = name
    return region_body(region)


def branches(session: Session) -> list[dict[str, Any]]:
    return [branch_body(b) for b in session.scalars(select(Branch).order_by(Branch.code))]


def _check_levels(data: dict[str, Any]) -> None:
    reorder, imprest = data.get("reorder_level"), data.get("imprest")
    if reorder is not None and imprest is not None:
        if reorder.currency != imprest.currency:
            raise Refused(422, "levels-currency", "The reorder level and the imprest amount must be in one currency.")
        if imprest.minor_units < reorder.minor_units:
            raise Refused(422, "imprest-below-reorder-level", "The imprest amount may not be below the reorder level.")


def _apply_branch(session: Session, branch: Branch, data: dict[str, Any]) -> None:
    if "name" in data:
        branch.name = data["name"]
    if "region" in data:
        branch.region = _region(session, data["region"])
        branch.region_id = branch.region.id
    if "head_office" in data:
        branch.is_head_office = data["head_office"]
    for key in ("reorder_level", "imprest"):
        if key in data:
            level = data[key]
            setattr(branch, key, None if level is None else level.minor_units)
            if level is not None:
                branch.levels_currency = level.currency
    if branch.reorder_level is None and branch.imprest is None:
        branch.levels_currency = None


def create_branch(session: Session, data: dict[str, Any]) -> dict[str, Any]:
    """A new branch of a region; 409 if its code is taken."""
    if session.scalar(select(Branch.id).where(Branch.code == data["code"])) is not None:
        raise Refused(409, "branch-exists", f"A branch with code {data['code']!r} exists already.")
    _check_levels(data)
    branch = Branch(code=data["code"], name=data["name"], is_head_office=data.get("head_office", False))
    _apply_branch(session, branch, data)
    session.add(branch)
    session.flush()
    identity.announce_branch(session, branch)
    return branch_body(branch)


def update_branch(session: Session, code: str, data: dict[str, Any]) -> dict[str, Any]:
    """Change a branch's name, region, head-office flag or float levels; 404 if there is none."""
    branch = session.scalar(select(Branch).where(Branch.code == code))
    if branch is None:
        raise Refused(404, "not-found", f"No branch has code {code!r}.")
    merged = {"reorder_level": None, "imprest": None, **_levels_of(branch), **data}
    _check_levels(merged)
    _apply_branch(session, branch, data)
    session.flush()
    identity.announce_branch(session, branch)
    return branch_body(branch)


def _levels_of(branch: Branch) -> dict[str, Any]:
    from shared.contracts.money import Money

    levels: dict[str, Any] = {}
    for key in ("reorder_level", "imprest"):
        minor = getattr(branch, key)
        if minor is not None and branch.levels_currency:
            levels[key] = Money(branch.levels_currency, minor)
    return levels


# -- users --------------------------------------------------------------------------------


def user_body(session: Session, user: User) -> dict[str, Any]:
    """A user as the administration API shows it."""
    second_factor = session.scalar(select(rm_authenticators.c.status).where(rm_authenticators.c.id == str(user.id)))
    return {
        "id": str(user.id),
        "username": user.username,
        "full_name": user.full_name,
        "email": user.email,
        "active": user.is_active,
        "roles": sorted(r.role for r in user.roles),
        "branches": sorted(m.branch.code for m in user.memberships),
        "regions": sorted(m.region.code for m in user.region_memberships),
        "password_set": user.password_hash is not None,
        "second_factor": second_factor or "none",
        "locked_until": user.locked_until.isoformat() if user.locked_until else None,
        "last_sign_in_at": user.last_sign_in_at.isoformat() if user.last_sign_in_at else None,
        "created_at": user.created_at.isoformat(),
    }


def list_users(
    session: Session,
    *,
    q: str | None = None,
    role: str | None = None,
    branch: str | None = None,
    active: bool | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """Users by username, filtered by a text, a role, a branch code and whether active."""
    query = select(User).order_by(User.username)
    if q:
        pattern = f"%{q.lower()}%"
        query = query.where(
            or_(
                func.lower(User.username).like(pattern),
                func.lower(User.full_name).like(pattern),
                func.lower(func.coalesce(User.email, "")).like(pattern),
            )
        )
    if role:
        query = query.where(User.roles.any(UserRole.role == role))
    if branch:
        query = query.where(User.memberships.any(Membership.branch.has(Branch.code == branch)))
    if active is not None:
        query = query.where(User.is_active.is_(active))
    rows = session.scalars(query.limit(min(limit, LIST_LIMIT)).offset(offset)).all()
    return {"items": [user_body(session, u) for u in rows], "limit": limit, "offset": offset}


def get_user(session: Session, user_id: str) -> User:
    """The user with this id; 404 if there is none."""
    key = _uuid(user_id)
    user = session.get(User, key) if key else None
    if user is None:
        raise Refused(404, "not-found", "No such user.")
    return user


def _branches(session: Session, codes: Iterable[str]) -> list[Branch]:
    codes = sorted(set(codes))
    found = list(session.scalars(select(Branch).where(Branch.code.in_(codes))))
    unknown = sorted(set(codes) - {b.code for b in found})
    if unknown:
        raise Refused(422, "unknown-branch", f"No branch has code {', '.join(map(repr, unknown))}.")
    return found


def _regions(session: Session, codes: Iterable[str]) -> list[Region]:
    codes = sorted(set(codes))
    found = list(session.scalars(select(Region).where(Region.code.in_(codes))))
    unknown = sorted(set(codes) - {r.code for r in found})
    if unknown:
        raise Refused(422, "unknown-region", f"No region has code {', '.join(map(repr, unknown))}.")
    return found


def _other_active_admins(session: Session, user: User) -> int:
    return int(
        session.scalar(
            select(func.count(func.distinct(User.id)))
            .join(UserRole, UserRole.user_id == User.id)
            .where(UserRole.role == Role.ADMIN, User.is_active.is_(True), User.id != user.id)
        )
        or 0
    )


def _keep_an_admin(session: Session, user: User, still_admin: bool) -> None:
    """Refuse a change that would leave the organisation without an active admin."""
    if Role.ADMIN in {r.role for r in user.roles} and not still_admin and not _other_active_admins(session, user):
        raise Refused(409, "last-admin", "This is the last active administrator: make another one first.")


def _check_unique(session: Session, user: User | None, username: str | None, email: str | None) -> None:
    own = user.id if user else None
    if username and session.scalar(select(User.id).where(User.username == username, User.id != own)):
        raise Refused(409, "username-taken", f"The username {username!r} is taken.")
    if email and session.scalar(select(User.id).where(func.lower(User.email) == email.lower(), User.id != own)):
        raise Refused(409, "email-taken", "Another user has this e-mail address.")


@dataclass
class Directory:
    """The administration use cases that reach beyond the database: mail, sessions."""

    accounts: Accounts
    clock: Callable[[], datetime] = utcnow

    def invite(self, session: Session, admin: Actor, data: dict[str, Any]) -> tuple[User, Link]:
        """A new user with roles and memberships, and an invitation link that sets their password."""
        _check_unique(session, None, data["username"], data.get("email"))
        user = User(
            id=uuid.uuid4(),
            username=data["username"],
            full_name=data["full_name"],
            email=(data.get("email") or None) and data["email"].lower(),
            created_at=self.clock(),
        )
        user.roles = [UserRole(role=r) for r in sorted(set(data["roles"]))]
        user.memberships = [Membership(branch_id=b.id) for b in _branches(session, data.get("branches", []))]
        user.region_memberships = [RegionMembership(region_id=r.id) for r in _regions(session, data.get("regions", []))]
        session.add(user)
        session.flush()
        identity.announce(session, user)
        link = self.accounts.make_link(session, user, INVITATION)
        self.accounts.security.add(
            session,
            EventType.USER_CREATED,
            actor=admin,
            subject=(str(user.id), user.username),
            roles=sorted(data["roles"]),
        )
        return user, link

    def change(self, session: Session, admin: Actor, user: User, data: dict[str, Any]) -> None:
        """Change a user's name, address, roles or memberships."""
        _check_unique(session, user, None, data.get("email"))
        subject = (str(user.id), user.username)
        if "full_name" in data:
            user.full_name = data["full_name"]
        if "email" in data:
            user.email = data["email"].lower() if data["email"] else None
        if "roles" in data:
            self._change_roles(session, admin, user, set(data["roles"]))
        if "branches" in data or "regions" in data:
            self._change_memberships(session, user, data)
            self.accounts.security.add(
                session,
                EventType.MEMBERSHIPS_CHANGED,
                actor=admin,
                subject=subject,
                branches=data.get("branches"),
                regions=data.get("regions"),
            )
        session.flush()
        identity.announce(session, user)

    def _change_roles(self, session: Session, admin: Actor, user: User, roles: set[str]) -> None:
        before = {r.role for r in user.roles}
        if roles == before:
            return
        _keep_an_admin(session, user, Role.ADMIN in roles)
        user.roles = [UserRole(role=r) for r in sorted(roles)]
        self.accounts.security.add(
            session,
            EventType.ROLES_CHANGED,
            actor=admin,
            subject=(str(user.id), user.username),
            before=sorted(before),
            after=sorted(roles),
        )

    def _change_memberships(self, session: Session, user: User, data: dict[str, Any]) -> None:
        if "branches" in data:
            user.memberships = [Membership(branch_id=b.id) for b in _branches(session, data["branches"])]
        if "regions" in data:
            user.region_memberships = [RegionMembership(region_id=r.id) for r in _regions(session, data["regions"])]

    def deactivate(self, session: Session, admin: Actor, user: User) -> None:
        """Deactivate: no sign-in, every session and token ended, out of approver routing."""
        if not user.is_active:
            return
        _keep_an_admin(session, user, still_admin=False)
        now = self.clock()
        user.is_active = False
        user.sessions_valid_after = now
        session.execute(
            update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)).values(revoked_at=now)
        )
        session.flush()
        identity.announce(session, user)
        self.accounts.security.add(
            session, EventType.USER_DEACTIVATED, actor=admin, subject=(str(user.id), user.username)
        )

    def reactivate(self, session: Session, admin: Actor, user: User) -> None:
        """Let a deactivated user sign in again (their old tokens stay revoked)."""
        if user.is_active:
            return
        user.is_active = True
        session.flush()
        identity.announce(session, user)
        self.accounts.security.add(
            session, EventType.USER_REACTIVATED, actor=admin, subject=(str(user.id), user.username)
        )

    def unlock(self, session: Session, admin: Actor, user: User) -> None:
        """Lift a lockout earned by wrong passwords."""
        user.locked_until = None
        user.failed_sign_ins = 0
        self.accounts.security.add(
            session, EventType.ACCOUNT_UNLOCKED, actor=admin, subject=(str(user.id), user.username)
        )
