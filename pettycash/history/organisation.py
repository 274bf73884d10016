"""The organisation of a generated history: regions, branches, users of every role, authenticators.

Made with the gateway's own identity code, so users, memberships, bearer tokens and the
directory events the other services learn their users from are exactly what production has.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import psycopg
import pyotp
from cryptography.fernet import Fernet
from sqlalchemy.orm import Session

from pettycash.history.plan import (
    HEAD_OFFICE,
    PAGE_ROLES,
    REGIONS,
    BranchInfo,
    Member,
    Org,
    SeedPlan,
    conninfo,
    copy_rows,
)
from services.gateway import identity
from services.gateway.models import Branch, Region
from shared.config import Settings
from shared.db.engine import Database
from shared.db.types import utcnow

# Head-office people besides treasury and finance, whose numbers the plan sets.
HEAD_OFFICE_ROLES = (("cfo", 1), ("auditor", 2), ("admin", 1))


def seed_organisation(settings: Settings, plan: SeedPlan, otp_key: str, password_hash: str = "") -> Org:
    """Regions, branches and users of every role through the gateway's identity code; active authenticators.

    The people of :data:`PAGE_ROLES` get ``password_hash`` (if given), so the page users can sign in.
    """
    db = Database(settings.database_url("gateway"))
    try:
        with db.uow() as uow:
            staffing = _Staffing(uow.session, password_hash)
            regions = _regions_and_branches(uow.session, plan, staffing.org)
            staffing.staff(plan, regions)
            uow.commit()
    finally:
        db.dispose()
    org = staffing.org
    org.otp_secrets = {m.user_id: pyotp.random_base32(32) for m in org.people.get("treasury", [])}
    _enrol_authenticators(settings, org.people.get("treasury", []), org.otp_secrets, otp_key)
    return org


def _regions_and_branches(session: Session, plan: SeedPlan, org: Org) -> list[Region]:
    """The plan's regions, a head office and the field branches spread over the regions."""
    regions = [Region(code=code, name=name) for code, name in REGIONS[: plan.regions]]
    session.add_all(regions)
    session.flush()
    rows = [Branch(code=HEAD_OFFICE, name="Head office", region_id=regions[0].id, is_head_office=True)]
    for number, region in enumerate(regions):
        rows += [
            Branch(code=f"{region.code}-{i:02d}", name=f"{region.name} branch {i}", region_id=region.id)
            for i in range(1, plan.branches_in(number) + 1)
        ]
    session.add_all(rows)
    session.flush()
    org.branches = [BranchInfo(str(b.id), b.code, str(b.region_id), b.is_head_office) for b in rows]
    return regions


class _Staffing:
    """Creates the organisation's people, each with a bearer token, and files them in the ``Org``."""

    def __init__(self, session: Session, password_hash: str) -> None:
        self.session = session
        self.password_hash = password_hash
        self.org = Org([], defaultdict(list), {}, {}, {}, {})

    def person(self, username: str, role: str, codes: list[str]) -> Member:
        user = identity.create_user(self.session, username, username.replace("-", " ").title(), [role], codes)
        if self.password_hash and role in PAGE_ROLES:
            user.password_hash, user.password_changed_at = self.password_hash, utcnow()
        token = identity.issue_token(self.session, user, "bench")
        member = Member(str(user.id), username, token, role, tuple(codes))
        self.org.people[role].append(member)
        return member

    def staff(self, plan: SeedPlan, regions: list[Region]) -> None:
        """Staff for every branch, a manager for each field branch, one per region, then head office."""
        org = self.org
        for branch in org.branches:
            code = branch.code
            org.staff_of[code] = [
                self.person(f"staff-{code}-{i}", "staff", [code]) for i in range(plan.staff_per_branch)
            ]
            if not branch.head_office:
                org.manager_of[code] = self.person(f"bm-{code}", "branch_manager", [code])
        for region in regions:
            codes = [b.code for b in org.field_branches if b.region_id == str(region.id)]
            org.regional_of[str(region.id)] = self.person(f"rm-{region.code}", "regional_manager", codes)
        for role, count in (("treasury", plan.treasury_users), ("finance", plan.finance_users), *HEAD_OFFICE_ROLES):
            for i in range(count):
                self.person(f"{role}-{i:03d}", role, [HEAD_OFFICE])
        org.people = dict(org.people)


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
