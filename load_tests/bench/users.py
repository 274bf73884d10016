"""The earlier system's four locust user types, doing what each role does, on real bearer tokens;
and people in a browser, signed in with a password, opening the pages they use most.

TreasuryUser (weight 3), FinanceUser (2), BranchUser (5) and GeneralUser (3), as in the
earlier system's load test. Each has dashboard-like reads (tag ``read``) and its role's
write: BranchUser creates requisitions (``create``), TreasuryUser pays them with a one-time
password (``pay``), GeneralUser drives whole chains, create, approve, pay, posted (``chain``).
A stage picks the tags and the users it needs. Requests are named by endpoint template, so
locust's statistics group per endpoint.

The page users (tag ``pages``: branch staff and branch managers, the roles that sign in without
a second factor) sign in once, as a browser does: the sign-in form for the session cookie and
its CSRF token, the form posted, the 303 followed to the home page; then they open pages on
that session cookie (FastHttpUser keeps a cookie jar per user), each named ``PAGE <template>``.

What the users share (tokens, the requisitions to read and to pay, the authenticators, what
they measured) lives in one :class:`World`, set by :func:`configure` before a stage starts.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlencode, urlsplit

import gevent
import psycopg
import pyotp
from gevent.event import Event
from locust import between, tag, task
from locust.contrib.fasthttp import FastHttpUser

from pettycash.history.plan import PAGE_ROLES, Member, Seeded
from services.ledger.domain import transfer_id
from shared.contracts.roles import Role

UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
OTP_STEP_SECONDS = 30
CHAIN_WAIT_SECONDS = 10.0
KES = 100

# Endpoint templates: the names statistics are grouped by.
LIST_BRANCH = "GET /api/v1/requisitions?scope=branch"
LIST_RESERVED = "GET /api/v1/requisitions?scope=all&status=reserved"
GET_REQUISITION = "GET /api/v1/requisitions/{id}"
INBOX = "GET /api/v1/approvals/inbox"
FLOATS = "GET /api/v1/floats"
TRIAL_BALANCE = "GET /api/v1/ledger/trial-balance"
DASHBOARD = "GET /api/v1/dashboard"
ALERTS = "GET /api/v1/alerts"
CREATE = "POST /api/v1/requisitions"
APPROVE = "POST /api/v1/requisitions/{id}/approve"
PAY = "POST /api/v1/requisitions/{id}/payment"
CHAIN = "CHAIN create → approve → pay → posted (client)"
# The pages' templates (server-rendered HTML on a session cookie).
SIGN_IN_FORM = "PAGE /sign-in"
SIGN_IN = "PAGE POST /sign-in (303 to /)"
PAGE_HOME = "PAGE /"
PAGE_MINE = "PAGE /requisitions"
PAGE_ALL = "PAGE /requisitions?scope=all"
PAGE_REQUISITION = "PAGE /requisitions/{id}"
PAGE_INBOX = "PAGE /approvals"
PAGES = (PAGE_HOME, PAGE_MINE, PAGE_ALL, PAGE_REQUISITION, PAGE_INBOX)  # what the pages stage is judged on
CSRF_INPUT = re.compile(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"')
ALERT = re.compile(r'role="alert">([^<]*)<')
TITLE = re.compile(r"<title>([^<]*)</title>")


class ChainBroke(Exception):
    """A whole chain stopped at this step (the step's own request counted its failure)."""


class OtpPool:
    """Treasury users' authenticators: hands out (token, code) pairs the server will accept once.

    The payment service accepts a code of the current time step or one either side, each step
    once per user (``services/payment/domain.py``). So one user pays about once per 30 s
    once its first three steps are spent: the pool round-robins over hundreds of users, and
    waits for the next step only when every one of them is spent (counted in ``waits``).
    """

    def __init__(self, devices: list[tuple[str, str]]) -> None:
        self.devices = [(token, pyotp.TOTP(secret)) for token, secret in devices]
        self.spent: list[set[int]] = [set() for _ in devices]
        self.next = 0
        self.waits = 0

    def take(self) -> tuple[str, str]:
        """A token and a fresh code for it (older steps first, so later ones stay for later)."""
        while True:
            now = time.time()
            step, into = divmod(now, OTP_STEP_SECONDS)
            step = int(step)
            # step-1 only early in a step: a request late in it may be checked in the next one.
            candidates = ([step - 1] if into < 20 else []) + [step, step + 1]
            for _ in range(len(self.devices)):
                i = self.next
                self.next = (self.next + 1) % len(self.devices)
                for candidate in candidates:
                    if candidate not in self.spent[i]:
                        self.spent[i].add(candidate)
                        token, totp = self.devices[i]
                        return token, str(totp.generate_otp(candidate))
            self.waits += 1
            gevent.sleep(OTP_STEP_SECONDS - into + 0.2)


class Watcher:
    """Tells chain clients when a requisition reached a state, from the owning service's database.

    A real client would be notified; polling the API for it would load the gateway with reads
    the chain does not make. One greenlet asks each database, every few milliseconds, about
    all the requisitions being waited for at once.
    """

    QUERIES: ClassVar[dict[str, tuple[str, str]]] = {
        # A case waits for its first approver.
        "case_open": ("approval", "SELECT requisition_id FROM approval_cases WHERE requisition_id = ANY(%s)"),
        # Payment may run: it knows the approval and the ledger's hold.
        "payable": (
            "payment",
            "SELECT requisition_id FROM payable_requisitions WHERE requisition_id = ANY(%s) "
            "AND approved_at IS NOT NULL AND reserved_at IS NOT NULL",
        ),
        # The ledger posted the hold.
        "posted": ("ledger", "SELECT requisition_id FROM transfers WHERE id = ANY(%s)"),
    }

    def __init__(self, conninfos: dict[str, str], interval: float = 0.003) -> None:
        self.conninfos = conninfos
        self.interval = interval
        self.waiting: dict[str, dict[uuid.UUID, Event]] = {k: {} for k in self.QUERIES}
        self.seen: dict[tuple[str, uuid.UUID], float] = {}
        self.loop: gevent.Greenlet | None = None

    def wait(self, state: str, requisition_id: str, timeout: float = CHAIN_WAIT_SECONDS) -> float | None:
        """The wall-clock time the state was seen, or None after ``timeout``."""
        rid = uuid.UUID(requisition_id)
        event = self.waiting[state].setdefault(rid, Event())
        if self.loop is None or self.loop.dead:
            self.loop = gevent.spawn(self._run)
        event.wait(timeout)
        self.waiting[state].pop(rid, None)
        return self.seen.pop((state, rid), None)

    def stop(self) -> None:
        if self.loop is not None:
            self.loop.kill()

    def _run(self) -> None:
        conns = {name: psycopg.connect(info, autocommit=True) for name, info in self.conninfos.items()}
        try:
            while True:
                for state, (db, sql) in self.QUERIES.items():
                    ids = list(self.waiting[state])
                    if not ids:
                        continue
                    keys = [transfer_id("post", r) for r in ids] if state == "posted" else ids
                    found = {row[0] for row in conns[db].execute(sql, (keys,))}
                    now = time.time()
                    for rid in found:
                        if rid in self.waiting[state]:
                            self.seen[(state, rid)] = now
                            self.waiting[state][rid].set()
                gevent.sleep(self.interval)
        finally:
            for conn in conns.values():
                conn.close()


@dataclass
class World:
    """Everything the users of a run share."""

    seeded: Seeded
    otp: OtpPool
    watcher: Watcher
    payable: deque[str] = field(default_factory=deque)
    created: list[tuple[str, float]] = field(default_factory=list)  # (requisition id, time of the 201)
    paid: list[tuple[str, float, float]] = field(default_factory=list)  # (id, sent, 201)
    chains: list[dict[str, Any]] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(7))  # noqa: S311 - load mix, not secrets
    # The page users' password (every seeded person of PAGE_ROLES has its hash): this run's,
    # random, in memory only; never in a report or a log (hence no repr).
    page_password: str = field(default="", repr=False)
    sign_ins: list[float] = field(default_factory=list)  # seconds from the form to the home page, per sign-in
    sign_in_failures: int = 0
    _turns: dict[str, Iterator[Member]] = field(default_factory=dict)

    def member(self, role: str) -> Member:
        """The next person of a role, round-robin (many locust users may act as one person)."""
        if role not in self._turns:
            self._turns[role] = itertools.cycle(self.seeded.org.people[role])
        return next(self._turns[role])

    def recent_id(self, branch_code: str | None = None) -> str:
        """A requisition id to read: one of the branch's latest, or anyone's."""
        recent = self.seeded.recent
        codes = [branch_code] if branch_code in recent else list(recent)
        return self.rng.choice(recent[self.rng.choice(codes)])

    def recent_in(self, branch_code: str) -> str | None:
        """One of the branch's latest requisitions (None if it has none): always in its people's scope."""
        ids = self.seeded.recent.get(branch_code)
        return self.rng.choice(ids) if ids else None


_world: World | None = None


def configure(world: World) -> None:
    """Make the world the users of the next stages act in."""
    global _world  # noqa: PLW0603 - locust instantiates users itself; this is how they find the run
    _world = world


def world() -> World:
    if _world is None:
        raise RuntimeError("load_tests.bench.users.configure() was not called")
    return _world


def why(status: int, text: str) -> str:
    """A failure as locust groups it: the status and the problem's type, without ids."""
    if status == 202:
        return "202: accepted, the reply came later than the gateway waits"
    try:
        problem = json.loads(text)
        kind = problem.get("type") or problem.get("title") or problem.get("message") or ""
    except (ValueError, AttributeError):
        kind = text[:120]
    return f"{status}: {UUID_PATTERN.sub('{id}', str(kind))}"


def page_why(status: int, text: str, location: str = "") -> str:
    """A page's failure as locust groups it: the status, where it sent the browser, or what it said."""
    if 300 <= status < 400:
        return f"{status}: redirected to {urlsplit(location).path or '?'}"
    said = ALERT.search(text) or TITLE.search(text)
    if said is None:  # not a page: a problem in JSON (an error the web pages do not render)
        return why(status, text)
    return f"{status}: {UUID_PATTERN.sub('{id}', said.group(1).strip())}"


def requisition_body(branch_code: str, rng: random.Random) -> dict[str, Any]:
    """A T1 requisition (one approver: the branch manager), paid in cash; money in minor units."""
    return {
        "branch": branch_code,
        "amount": {"minor_units": rng.randint(200, 9_000) * KES, "currency": "KES"},
        "category": rng.choice(("fuel", "postage", "office_supplies", "meals", "cleaning")),
        "purpose": f"bench {uuid.uuid4().hex[:12]}",
        "payee": {"name": "Cash payee", "method": "cash"},
    }


class BenchUser(FastHttpUser):
    """A person with a real bearer token; the base of the four types."""

    abstract = True
    role = "staff"
    wait_time = between(1, 3)
    network_timeout = 30.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        self.person = world().member(self.role)
        self.auth = {"Authorization": f"Bearer {self.person.token}"}

    def get(self, path: str, name: str) -> None:
        self.client.get(path, headers=self.auth, name=name)

    def post(self, path: str, name: str, body: dict[str, Any], expect: int, token: str | None = None) -> Any:
        """POST and count anything but ``expect`` as a failure (a 202 means the reply came too late)."""
        headers = {"Authorization": f"Bearer {token}"} if token else dict(self.auth)
        headers["Idempotency-Key"] = str(uuid.uuid4())
        with self.client.post(path, json=body, headers=headers, name=name, catch_response=True) as response:
            if response.status_code != expect:
                response.failure(why(response.status_code, response.text or ""))
                return None
            return response.json()

    def read_requisition(self) -> None:
        branch = self.person.branches[0] if self.person.branches else None
        self.get(f"/api/v1/requisitions/{world().recent_id(branch)}", GET_REQUISITION)


class BranchUser(BenchUser):
    """Branch staff: their branch's requisitions and float; they ask for money."""

    weight = 5
    role = "staff"

    @tag("read")
    @task(3)
    def list_branch(self) -> None:
        self.get("/api/v1/requisitions?scope=branch", LIST_BRANCH)

    @tag("read")
    @task(3)
    def one(self) -> None:
        self.read_requisition()

    @tag("read")
    @task(1)
    def floats(self) -> None:
        self.get("/api/v1/floats", FLOATS)

    @tag("create")
    @task
    def create(self) -> None:
        body = self.post("/api/v1/requisitions", CREATE, requisition_body(self.person.branches[0], world().rng), 201)
        if body is not None:
            world().created.append((body["id"], time.time()))


class GeneralUser(BenchUser):
    """Approvers (branch managers): the inbox, the branch's requisitions; the whole chain, end to end."""

    weight = 3
    role = "branch_manager"

    @tag("read")
    @task(3)
    def inbox(self) -> None:
        self.get("/api/v1/approvals/inbox", INBOX)

    @tag("read")
    @task(2)
    def list_branch(self) -> None:
        self.get("/api/v1/requisitions?scope=branch", LIST_BRANCH)

    @tag("read")
    @task(2)
    def one(self) -> None:
        self.read_requisition()

    @tag("read")
    @task(1)
    def alerts(self) -> None:
        self.get("/api/v1/alerts", ALERTS)

    @tag("read")
    @task(1)
    def floats(self) -> None:
        self.get("/api/v1/floats", FLOATS)

    @tag("chain")
    @task
    def chain(self) -> None:
        """Staff asks, the branch manager approves, treasury pays with a code, the ledger posts."""
        w = world()
        record: dict[str, Any] = {"t0": time.time()}
        try:
            self._chain(w, record)
        except ChainBroke as broke:
            record["failed"] = str(broke)
            w.chains.append(record)
            self._fire(record, (time.time() - record["t0"]) * 1000, broke)
        else:
            w.chains.append(record)
            self._fire(record, (record["posted"] - record["t0"]) * 1000, None)

    def _chain(self, w: World, record: dict[str, Any]) -> None:
        branch = self.person.branches[0]
        staff = w.rng.choice(w.seeded.org.staff_of[branch])
        created = self.post("/api/v1/requisitions", CREATE, requisition_body(branch, w.rng), 201, staff.token)
        if created is None:
            raise ChainBroke("create")
        rid = record["id"] = created["id"]
        record["created"] = time.time()
        record["case_open"] = self._until(w, "case_open", rid)
        if self.post(f"/api/v1/requisitions/{rid}/approve", APPROVE, {"comment": "ok"}, 200) is None:
            raise ChainBroke("approve")
        record["approved"] = time.time()
        record["payable"] = self._until(w, "payable", rid)
        token, code = w.otp.take()
        if self.post(f"/api/v1/requisitions/{rid}/payment", PAY, {"otp": code}, 201, token) is None:
            raise ChainBroke("payment")
        record["paid"] = time.time()
        record["posted"] = self._until(w, "posted", rid)

    @staticmethod
    def _until(w: World, state: str, rid: str) -> float:
        seen = w.watcher.wait(state, rid)
        if seen is None:
            raise ChainBroke(f"not {state.replace('_', ' ')} within {CHAIN_WAIT_SECONDS:g} s")
        return seen

    def _fire(self, record: dict[str, Any], elapsed_ms: float, exception: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type="CHAIN",
            name=CHAIN,
            response_time=elapsed_ms,
            response_length=0,
            exception=exception,
            context={"requisition": record.get("id")},
        )


class TreasuryUser(BenchUser):
    """Treasury: floats, alerts, what waits to be paid; pays with a one-time password."""

    weight = 3
    role = "treasury"

    @tag("read")
    @task(3)
    def floats(self) -> None:
        self.get("/api/v1/floats", FLOATS)

    @tag("read")
    @task(2)
    def alerts(self) -> None:
        self.get("/api/v1/alerts", ALERTS)

    @tag("read")
    @task(2)
    def to_pay(self) -> None:
        self.get("/api/v1/requisitions?scope=all&status=reserved", LIST_RESERVED)

    @tag("read")
    @task(2)
    def dashboard(self) -> None:
        self.get("/api/v1/dashboard", DASHBOARD)

    @tag("read")
    @task(1)
    def one(self) -> None:
        self.get(f"/api/v1/requisitions/{world().recent_id()}", GET_REQUISITION)

    @tag("pay")
    @task
    def pay(self) -> None:
        w = world()
        if not w.payable:
            return
        rid = w.payable.popleft()
        token, code = w.otp.take()
        sent = time.time()
        if self.post(f"/api/v1/requisitions/{rid}/payment", PAY, {"otp": code}, 201, token) is not None:
            w.paid.append((rid, sent, time.time()))


class FinanceUser(BenchUser):
    """Finance: the trial balance (a report), the inbox, alerts, floats."""

    weight = 2
    role = "finance"

    @tag("read")
    @task(1)
    def trial_balance(self) -> None:
        self.get("/api/v1/ledger/trial-balance", TRIAL_BALANCE)

    @tag("read")
    @task(2)
    def inbox(self) -> None:
        self.get("/api/v1/approvals/inbox", INBOX)

    @tag("read")
    @task(2)
    def alerts(self) -> None:
        self.get("/api/v1/alerts", ALERTS)

    @tag("read")
    @task(2)
    def floats(self) -> None:
        self.get("/api/v1/floats", FLOATS)

    @tag("read")
    @task(1)
    def one(self) -> None:
        self.get(f"/api/v1/requisitions/{world().recent_id()}", GET_REQUISITION)


USER_TYPES: tuple[type[BenchUser], ...] = (TreasuryUser, FinanceUser, BranchUser, GeneralUser)

# The reports, each over the last 30 days (the trial balance at today, the ledger's first page).
REPORT_DAYS = 30
REPORTS = (
    "payment-summary",
    "fund-health",
    "variance-analysis",
    "spending",
    "approval-turnaround",
    "trial-balance",
    "general-ledger",
)


def report_name(report: str, fmt: str = "json") -> str:
    return f"GET /api/v1/reports/{report}" + ("" if fmt == "json" else f"?format={fmt}")


class ReportUser(BenchUser):
    """Finance reading the reports (tag ``reports``): each of the seven in JSON at one weight, and
    the spending's PDF and the general ledger's CSV now and then."""

    role = "finance"

    def report(self, report: str, fmt: str = "json") -> None:
        today = time.strftime("%Y-%m-%d", time.gmtime())
        since = time.strftime("%Y-%m-%d", time.gmtime(time.time() - REPORT_DAYS * 86_400))
        query = {"at": today} if report == "trial-balance" else {"from": since, "to": today}
        if fmt != "json":
            query["format"] = fmt
        self.get(f"/api/v1/reports/{report}?{urlencode(query)}", report_name(report, fmt))

    @tag("reports")
    @task(7)
    def one_report(self) -> None:
        self.report(world().rng.choice(REPORTS))

    @tag("reports")
    @task(1)
    def spending_pdf(self) -> None:
        self.report("spending", "pdf")

    @tag("reports")
    @task(1)
    def ledger_csv(self) -> None:
        self.report("general-ledger", "csv")


class PageUser(FastHttpUser):
    # Only the roles that sign in with a password alone (pettycash.history.plan.PAGE_ROLES) may be page users.
    """A person in a browser: signs in once with a password, then opens pages on the session cookie.

    Pages are fetched without following redirects: a page must answer 200 with HTML itself (a
    redirect to the sign-in form, a session lost, counts as a failure, and the user signs in
    again at its next task).
    """

    abstract = True
    role = "staff"
    wait_time = between(1, 3)
    network_timeout = 30.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        if self.role not in PAGE_ROLES:
            raise RuntimeError(f"{self.role} signs in with a second factor: not a page user")
        self.person = world().member(self.role)
        self.signed_in = self.sign_in()

    def sign_in(self) -> bool:
        """The sign-in form (cookie and CSRF token), the form posted, its 303 followed to the home page."""
        w = world()
        started = time.monotonic()
        done = self._sign_in(w.page_password)
        if done:
            w.sign_ins.append(time.monotonic() - started)
        else:
            w.sign_in_failures += 1
        return done

    def _sign_in(self, password: str) -> bool:
        with self.client.get("/sign-in", name=SIGN_IN_FORM, allow_redirects=False, catch_response=True) as form:
            found = CSRF_INPUT.search(form.text or "") if form.status_code == 200 else None
            if found is None:
                form.failure(page_why(form.status_code, form.text or "") + " (no CSRF token in the form)")
                return False
        body = urlencode({"username": self.person.username, "password": password, "csrf_token": found.group(1)})
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"}
        with self.client.post(
            "/sign-in", data=body, headers=headers, name=SIGN_IN, allow_redirects=False, catch_response=True
        ) as answer:
            location = (answer.headers or {}).get("Location") or ""
            if answer.status_code != 303 or urlsplit(location).path != "/":
                answer.failure(page_why(answer.status_code, answer.text or "", location))
                return False
        return self.page("/", PAGE_HOME)

    def page(self, path: str, name: str) -> bool:
        """GET a page: 200 and an HTML document, else a failure."""
        with self.client.get(path, name=name, allow_redirects=False, catch_response=True) as response:
            headers = response.headers or {}
            text = response.text or ""
            if response.status_code != 200:
                response.failure(page_why(response.status_code, text, headers.get("Location") or ""))
                if response.status_code in (302, 303, 401):
                    self.signed_in = False
                return False
            if not str(headers.get("Content-Type", "")).startswith("text/html") or "<html" not in text[:300]:
                response.failure(f"200 but no HTML page ({headers.get('Content-Type')})")
                return False
        return True

    def open(self, path: str, name: str) -> None:
        """Open a page, signing in again first if the session was lost."""
        if not self.signed_in:
            self.signed_in = self.sign_in()
            return
        self.page(path, name)

    def open_requisition(self) -> None:
        rid = world().recent_in(self.person.branches[0])
        if rid is not None:
            self.open(f"/requisitions/{rid}", PAGE_REQUISITION)


class BranchPageUser(PageUser):
    """Branch staff in a browser: their own requisitions, their branch's, one of them; the home page."""

    weight = 5
    role = Role.STAFF.value

    @tag("pages")
    @task(1)
    def home(self) -> None:
        self.open("/", PAGE_HOME)

    @tag("pages")
    @task(3)
    def mine(self) -> None:
        self.open("/requisitions", PAGE_MINE)

    @tag("pages")
    @task(2)
    def in_scope(self) -> None:
        self.open("/requisitions?scope=all", PAGE_ALL)

    @tag("pages")
    @task(3)
    def one(self) -> None:
        self.open_requisition()


class ApproverPageUser(PageUser):
    """A branch manager in a browser: the approvals inbox, the branch's requisitions, one of them; home."""

    weight = 3
    role = Role.BRANCH_MANAGER.value

    @tag("pages")
    @task(1)
    def home(self) -> None:
        self.open("/", PAGE_HOME)

    @tag("pages")
    @task(3)
    def inbox(self) -> None:
        self.open("/approvals", PAGE_INBOX)

    @tag("pages")
    @task(2)
    def in_scope(self) -> None:
        self.open("/requisitions?scope=all", PAGE_ALL)

    @tag("pages")
    @task(2)
    def one(self) -> None:
        self.open_requisition()


PAGE_TYPES: tuple[type[PageUser], ...] = (BranchPageUser, ApproverPageUser)
AnyUser = TypeVar("AnyUser", bound=FastHttpUser)


def paced(user_class: type[AnyUser], wait_time: Callable[..., float]) -> type[AnyUser]:
    """The same user type with another pacing (a stage's arrival rate instead of think time)."""
    return type(user_class.__name__, (user_class,), {"wait_time": wait_time, "__module__": __name__})
