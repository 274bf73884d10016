"""Branch lookups by code, from a per-process copy of the (small, rarely changing) branch table.

Resolving a code costs a dictionary lookup instead of a database round trip on every request
that names a branch. The copy is reloaded after ``TTL_SECONDS``, and at once when a code is
not found, so a branch created a moment ago is found too.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select

from services.gateway.models import Branch
from shared.db.engine import Database

TTL_SECONDS = 30.0


@dataclass(frozen=True)
class BranchRef:
    """What requests need of a branch."""

    id: str
    code: str
    region_id: str
    head_office: bool

    @property
    def origin(self) -> str:
        return "head_office" if self.head_office else "branch"


class Branches:
    """The branch table of one gateway process."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._by_code: dict[str, BranchRef] = {}
        self._loaded_at = float("-inf")

    def _reload(self) -> None:
        with self._db.uow() as uow:
            rows = uow.session.execute(select(Branch.id, Branch.code, Branch.region_id, Branch.is_head_office)).all()
        self._by_code = {code: BranchRef(str(i), code, str(region), bool(ho)) for i, code, region, ho in rows}
        self._loaded_at = time.monotonic()

    def by_code(self, code: str) -> BranchRef | None:
        """The branch with this code, or None."""
        with self._lock:
            stale = time.monotonic() - self._loaded_at > TTL_SECONDS
            if stale or code not in self._by_code:
                self._reload()
            return self._by_code.get(code)


def branch_by_code(code: str) -> BranchRef | None:
    """The branch with this code, from the current gateway process's copy."""
    extensions = current_app.extensions
    branches = extensions.get("pettycash.branches")
    if branches is None:
        branches = extensions.setdefault("pettycash.branches", Branches(extensions["pettycash"].db))
    return branches.by_code(code)
