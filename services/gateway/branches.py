"""Branch lookups by code, from a per-process copy of the (small, rarely changing) branch table.

Resolving a code costs a dictionary lookup instead of a database round trip on every request
that names a branch. The copy is reloaded after ``TTL_SECONDS``, and at once when a code is
not found, so a branch created a moment ago is found too.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from flask import Response, current_app
from sqlalchemy import select

from services.gateway import problems
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

    def as_payload(self) -> dict[str, str]:
        """How commands name a branch: its id, its code and its region."""
        return {"branch_id": self.id, "branch_code": self.code, "region_id": self.region_id}


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

    def codes(self) -> dict[str, str]:
        """Branch ids to codes."""
        with self._lock:
            if time.monotonic() - self._loaded_at > TTL_SECONDS:
                self._reload()
            return {ref.id: code for code, ref in self._by_code.items()}

    def by_code(self, code: str) -> BranchRef | None:
        """The branch with this code, or None."""
        with self._lock:
            stale = time.monotonic() - self._loaded_at > TTL_SECONDS
            if stale or code not in self._by_code:
                self._reload()
            return self._by_code.get(code)


def _branches() -> Branches:
    extensions = current_app.extensions
    branches = extensions.get("pettycash.branches")
    if branches is None:
        branches = extensions.setdefault("pettycash.branches", Branches(extensions["pettycash"].db))
    return branches  # type: ignore[no-any-return]


def branch_by_code(code: str) -> BranchRef | None:
    """The branch with this code, from the current gateway process's copy."""
    return _branches().by_code(code)


def branch_codes() -> dict[str, str]:
    """Every branch's code by its id (the current gateway process's copy)."""
    return _branches().codes()


class UnknownBranch(Exception):
    """A request named a branch code no branch has.

    The one answer for it: 404 when the URL's path names the branch (the resource asked for
    does not exist), 422 when a body or a query does (the request names something that cannot
    be acted on). The app turns it into the problem response.
    """

    def __init__(self, code: str, *, in_path: bool = False) -> None:
        super().__init__(code)
        self.code = code
        self.in_path = in_path

    def response(self) -> Response:
        return problems.problem(404 if self.in_path else 422, "unknown-branch", f"No branch has code {self.code!r}.")


def branch(code: str, *, in_path: bool = False) -> BranchRef:
    """The branch with this code, or ``UnknownBranch`` (see there for the status it answers)."""
    found = branch_by_code(code)
    if found is None:
        raise UnknownBranch(code, in_path=in_path)
    return found
