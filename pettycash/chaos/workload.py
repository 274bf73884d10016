"""The fault run's workload: several clients driving whole chains over HTTP, as people would.

Each client is a thread with its own HTTP session and a seeded random source. A chain is one
requisition from creation to an end: a staff member asks (with an ``Idempotency-Key``), the
approvers the chain names decide (T1: the branch manager; T2: the branch manager, then the
regional manager), treasury pays with a one-time code, and the client follows the requisition
until it is paid, rejected, cancelled, or failed for good. Some payees carry the provider's
fault markers (``FAIL-TRANSIENT-2``, ``FAIL-PERMANENT``, ``FAIL-LOST-REPLY``); a failed
payment is executed again with a fresh code until the execution limit. A few chains are
rejected, and a few are cancelled by finance once their money is held, so voids race payments.

Clients behave as a careful client must under faults: a keyed POST is repeated with the same
key and body after a connection error, a 5xx, a 503, a 202 or a 409 "in flight", until it gets
a definitive answer; an unkeyed decision is never blindly repeated, the client reads the
requisition again and acts on what it sees. Every key, and every id answered 201 or 202, is
remembered for the invariants.

Treasury is a pool of users with authenticators: a code is good once per user per 30-second
step, so payments rotate over many users. A funder keeps the floats topped up (treasury asks,
finance approves), so requisitions that wait for funds are served.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyotp
import requests
from sqlalchemy import select

from services.gateway import identity
from services.gateway.models import User
from shared.contracts.payloads import CATEGORIES
from shared.db.engine import Database

log = logging.getLogger(__name__)

CURRENCY = "KES"
BRANCHES: tuple[str, ...] = ("NBO-CBD", "MSA-01")
# Statuses after which nothing more happens to a requisition (payment_failed only when final).
TERMINAL = frozenset({"paid", "rejected", "cancelled", "expired"})
ACTIVE_STEPS = frozenset({"pending_approval", "pending_urgency_confirmation"})
MARKERS: tuple[tuple[str, float], ...] = (
    ("", 0.55),
    ("FAIL-TRANSIENT-2", 0.2),
    ("FAIL-PERMANENT", 0.1),
    ("FAIL-LOST-REPLY", 0.15),
)
REQUEST_TIMEOUT_SECONDS = 15.0
POLL_SECONDS = 0.3
# A create answered only 202 for this long may have lost its reply (a Redis restart): look
# for the requisition in the requester's own list, by its unique purpose, as a person would.
LOOKUP_AFTER_SECONDS = 10.0
# A payment POST answered only 202 this long, while the payment shows no new execution, is tried
# again with a fresh code and a new key.
PAYMENT_PENDING_GIVE_UP_SECONDS = 30.0
# The same action on the same observed state is not repeated sooner than this (reads lag writes).
ACT_AGAIN_AFTER_SECONDS = 6.0
# Floats start small enough that even a one-minute run replenishes them, and requisitions
# sometimes wait for funds (and are reserved, in approval order, when the top-up is approved).
FLOAT_OPENING_MAJOR = 250_000
FLOAT_LOW_WATER_MAJOR = 120_000
REPLENISHMENT_MAJOR = 300_000


def kes(major: int) -> dict[str, Any]:
    """An amount in its wire form (integer minor units)."""
    return {"minor_units": major * 100, "currency": CURRENCY}


# -- people -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """A user with a bearer token."""

    username: str
    token: str
    user_id: str


@dataclass
class Org:
    """Who plays which part: staff per branch, the approvers, treasury, finance, the admin."""

    staff: dict[str, list[Person]]
    branch_manager: dict[str, Person]
    regional_manager: dict[str, Person]
    treasury: list[Person]
    funder: Person
    finance: Person
    cfo: Person
    admin: Person


def create_org(gateway: Database, demo_tokens: dict[str, str], treasury_users: int, staff_per_branch: int) -> Org:
    """The demo organisation plus the run's extra users, made by the gateway's identity code."""
    people: dict[str, Person] = {}
    with gateway.uow() as uow:
        users = {u.username: u for u in uow.session.scalars(select(User))}
        for username, token in demo_tokens.items():
            people[username] = Person(username, token, str(users[username].id))

        def make(username: str, roles: list[str], branches: list[str]) -> Person:
            user = identity.create_user(uow.session, username, username.title(), roles, branches)
            token = identity.issue_token(uow.session, user, "chaos")
            return Person(username, token, str(user.id))

        staff: dict[str, list[Person]] = {}
        for branch, demo in (("NBO-CBD", "alice"), ("MSA-01", "sam")):
            extra = [make(f"staff-{branch.lower()}-{i}", ["staff"], [branch]) for i in range(staff_per_branch)]
            staff[branch] = [people[demo], *extra]
        # The demo has no regional manager for the coast: without one, T2 chains there would
        # escalate to an admin, a path the approval tests cover; here every step has its holder.
        coast = make("rm-coast", ["regional_manager"], ["MSA-01", "MLD-01"])
        treasury = [make(f"treasurer-{i:02d}", ["treasury"], ["HQ"]) for i in range(treasury_users)]
        uow.commit()
    return Org(
        staff=staff,
        branch_manager={"NBO-CBD": people["bob"], "MSA-01": people["mary"]},
        regional_manager={"NBO-CBD": people["rita"], "MSA-01": coast},
        treasury=treasury,
        funder=people["tom"],
        finance=people["fiona"],
        cfo=people["carol"],
        admin=people["admin"],
    )


# -- HTTP ---------------------------------------------------------------------------------


class Http:
    """One client's HTTP session against the gateway; a connection error is an answer of None."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.counts: Counter[str] = Counter()

    def call(
        self, method: str, path: str, person: Person, body: Any = None, key: str | None = None
    ) -> requests.Response | None:
        """One request; None when the connection failed or timed out (the outcome is unknown)."""
        headers = {"Authorization": f"Bearer {person.token}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        try:
            response = self.session.request(
                method, self.base_url + path, json=body, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS
            )
        except requests.RequestException:
            self.counts["connection-error"] += 1
            # A half-dead keep-alive connection would fail the next request too: start afresh.
            self.session.close()
            self.session = requests.Session()
            return None
        self.counts[str(response.status_code)] += 1
        return response

    def get_json(self, path: str, person: Person) -> dict[str, Any] | None:
        """A GET's body when it answered 200, else None."""
        response = self.call("GET", path, person)
        if response is None or response.status_code != 200:
            return None
        with contextlib.suppress(ValueError):
            body: dict[str, Any] = response.json()
            return body
        return None


def problem_type(response: requests.Response) -> str:
    """The ``type`` of a problem+json answer ('' if it is not one)."""
    with contextlib.suppress(ValueError, AttributeError):
        return str(response.json().get("type", ""))
    return ""


def is_definitive(response: requests.Response | None) -> bool:
    """Whether a keyed POST's answer settles it; otherwise the same request is sent again."""
    if response is None or response.status_code >= 500 or response.status_code == 202:
        return False
    return not (response.status_code == 409 and problem_type(response) == "idempotency-request-in-flight")


def keyed_post(
    http: Http,
    path: str,
    person: Person,
    body: dict[str, Any],
    key: str,
    give_up: Callable[[], bool],
    on_pending: Callable[[requests.Response | None, float], str | None] | None = None,
) -> tuple[requests.Response | None, str | None]:
    """POST with an ``Idempotency-Key`` until a definitive answer; the same key and body each time.

    ``on_pending(answer, seconds)`` may find the outcome another way while the answer is not
    definitive (it returns what it found); the result is (the last answer, what was found).
    """
    started = time.monotonic()
    delay = 0.2
    while True:
        response = http.call("POST", path, person, body, key)
        if is_definitive(response):
            return response, None
        if on_pending is not None:
            found = on_pending(response, time.monotonic() - started)
            if found:
                return response, found
        if give_up():
            return response, None
        retry_after = response.headers.get("Retry-After") if response is not None else None
        pause = float(retry_after) if retry_after and retry_after.isdigit() else delay
        time.sleep(min(pause, 5.0))
        delay = min(delay * 2, 2.0)


# -- treasury's authenticators --------------------------------------------------------------


@dataclass
class Authenticator:
    """An authenticator app whose time steps are each used once (the server accepts ±1 step)."""

    secret: str
    spent: set[int] = field(default_factory=set)

    def try_code(self, now: float | None = None) -> str | None:
        """A code of an unused step the server will accept now, or None until the next step."""
        now = time.time() if now is None else now
        step, into = divmod(now, 30)
        current = int(step)
        # The server checks a moment later, perhaps in the next step: the next and the current
        # step stay in its window then; the previous one only while this step has time to run.
        candidates = [current + 1, current] + ([current - 1] if into < 20 else [])
        for candidate in candidates:
            if candidate not in self.spent:
                self.spent.add(candidate)
                self.spent = {s for s in self.spent if s >= current - 2}
                return str(pyotp.TOTP(self.secret).generate_otp(candidate))
        return None


class TreasuryPool:
    """Treasury users with active authenticators, handed out with a fresh code, round robin."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._members: list[tuple[Person, Authenticator]] = []
        self._locked_until: dict[str, float] = {}
        self._next = 0

    def add(self, person: Person, device: Authenticator) -> None:
        """Put a treasury user with an active authenticator in the rotation."""
        with self._lock:
            self._members.append((person, device))

    def __len__(self) -> int:
        return len(self._members)

    def acquire(self, give_up: Callable[[], bool]) -> tuple[Person, str] | None:
        """A treasury user and a code good now; waits for the next time step if all are spent."""
        while not give_up():
            with self._lock:
                now = time.monotonic()
                for offset in range(len(self._members)):
                    person, device = self._members[(self._next + offset) % len(self._members)]
                    if self._locked_until.get(person.username, 0.0) > now:
                        continue
                    code = device.try_code()
                    if code is not None:
                        self._next = (self._next + offset + 1) % len(self._members)
                        return person, code
            time.sleep(0.5)
        return None

    def lock(self, person: Person, seconds: float) -> None:
        """Keep a locked-out user (429) out of the rotation until the lockout ends."""
        with self._lock:
            self._locked_until[person.username] = time.monotonic() + seconds


def enrol(http: Http, person: Person, give_up: Callable[[], bool]) -> Authenticator:
    """Enrol and activate an authenticator for a treasury user, as the user would."""
    while not give_up():
        enrolled = http.call("POST", "/api/v1/otp/enrolment", person)
        if enrolled is None or enrolled.status_code != 201:
            time.sleep(0.5)
            continue
        device = Authenticator(pyotp.parse_uri(enrolled.json()["provisioning_uri"]).secret)
        for _ in range(5):
            code = device.try_code()
            if code is None:
                time.sleep(1)
                continue
            activated = http.call("POST", "/api/v1/otp/activation", person, {"code": code})
            if activated is not None and activated.status_code == 200:
                return device
            if activated is not None and problem_type(activated) == "otp-already-active":
                return device
            time.sleep(0.5)
    raise RuntimeError(f"could not enrol an authenticator for {person.username}")


# -- chains ------------------------------------------------------------------------------


@dataclass
class Chain:
    """One requisition's journey as the workload saw it (the invariants' list of promises)."""

    number: int
    client: int
    key: str
    requester: str
    branch: str
    amount_minor: int
    category: str
    tier: str
    method: str
    marker: str
    plan: str
    purpose: str
    requisition_id: str | None = None
    first_answer: int | None = None  # the first definitive status of the create (201, 4xx)
    accepted_202: bool = False  # some answer was 202: the system took it, the outcome unknown
    message_id: str | None = None
    create_answers: Counter[str] = field(default_factory=Counter)  # the non-definitive answers seen
    final_status: str | None = None
    executions_started: int = 0
    # Every payment POST: its key, who, the message id a 202 named, and how it ended.
    payment_attempts: list[dict[str, Any]] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        """Answered 201 or 202: the system promised to see it through."""
        return self.first_answer == 201 or self.accepted_202 or self.requisition_id is not None

    def note(self, text: str) -> None:
        """Remember what happened, with the time (the evidence a violation shows)."""
        self.notes.append(f"{time.time():.2f} {text}")


@dataclass
class Tracker:
    """Every chain of the run, shared by the clients (appends under a lock)."""

    chains: list[Chain] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def new(self, **fields: Any) -> Chain:
        """A new chain, numbered in the order chains start."""
        with self.lock:
            chain = Chain(number=len(self.chains) + 1, **fields)
            self.chains.append(chain)
            return chain

    def snapshot(self) -> list[Chain]:
        """Every chain so far."""
        with self.lock:
            return list(self.chains)


class Controls:
    """When clients stop starting chains, and when they give up on the ones they have."""

    def __init__(self) -> None:
        self.no_new_chains = threading.Event()
        self.abandon = threading.Event()

    def give_up(self) -> bool:
        """Whether clients must stop waiting on what they have in hand."""
        return self.abandon.is_set()


def plan_chain(rng: random.Random, org: Org, client: int) -> dict[str, Any]:
    """What the next chain will be: who asks, how much, how it is paid, how it should end."""
    branch = rng.choice(BRANCHES)
    requester = rng.choice(org.staff[branch])
    tier = "T1" if rng.random() < 0.75 else "T2"
    major = rng.randint(500, 9_000) if tier == "T1" else rng.randint(12_000, 45_000)
    method = rng.choices(("cash", "mobile_money", "bank"), weights=(0.4, 0.3, 0.3))[0]
    marker = ""
    if method != "cash":
        marker = rng.choices([m for m, _ in MARKERS], weights=[w for _, w in MARKERS])[0]
    plan = rng.choices(("pay", "reject", "cancel"), weights=(0.88, 0.06, 0.06))[0]
    return {
        "client": client,
        "key": str(uuid.uuid4()),
        "requester": requester.username,
        "branch": branch,
        "amount_minor": major * 100,
        "category": rng.choice(CATEGORIES),
        "tier": tier,
        "method": method,
        "marker": marker,
        "plan": plan,
        "purpose": f"chaos chain {uuid.uuid4().hex[:16]}",
    }


class ChainDriver:
    """Drives chains for one client thread."""

    def __init__(
        self, client: int, base_url: str, org: Org, pool: TreasuryPool, tracker: Tracker, controls: Controls, seed: int
    ) -> None:
        self.client = client
        self.http = Http(base_url)
        self.org = org
        self.pool = pool
        self.tracker = tracker
        self.controls = controls
        self.rng = random.Random(f"{seed}:{client}")  # noqa: S311 - reproducible choices, not secrets
        self.people = {p.username: p for ps in org.staff.values() for p in ps}

    def run(self) -> None:
        """Start chains until told to stop, finishing each one before the next."""
        while not self.controls.no_new_chains.is_set() and not self.controls.give_up():
            chain = self.tracker.new(**plan_chain(self.rng, self.org, self.client))
            try:
                self.drive(chain)
            except Exception as exc:  # a bug in the driver must not stop the run: note it
                log.exception("chain %s failed in the driver", chain.number)
                chain.note(f"driver error: {type(exc).__name__}: {exc}")
            chain.finished_at = time.time()
            time.sleep(self.rng.uniform(0.1, 0.6))

    # -- steps ------------------------------------------------------------------------

    def drive(self, chain: Chain) -> None:
        """One chain from creation to a final state (or until the run gives up on it)."""
        rid = self.create(chain)
        if rid is None:
            return
        last_action: tuple[str, float] = ("", 0.0)
        while not self.controls.give_up():
            body = self.http.get_json(f"/api/v1/requisitions/{rid}", self.people[chain.requester])
            status = body["status"] if body else ""
            payment = None
            if status in TERMINAL:
                chain.final_status = status
                return
            if status in ("payment_failed", "reserved", "payment_processing"):
                payment = self.http.get_json(f"/api/v1/requisitions/{rid}/payment", self.org.finance)
                if status == "payment_failed" and payment and payment.get("executions_left") == 0:
                    chain.final_status = status
                    return
            signature = f"{status}:{(payment or {}).get('state')}:{(payment or {}).get('executions')}"
            recently = last_action[0] == signature and time.monotonic() - last_action[1] < ACT_AGAIN_AFTER_SECONDS
            if body is not None and not recently and self.act(chain, rid, body, payment):
                last_action = (signature, time.monotonic())
            time.sleep(POLL_SECONDS)

    def act(self, chain: Chain, rid: str, body: dict[str, Any], payment: dict[str, Any] | None) -> bool:
        """Do what the chain's state calls for; True if something was sent."""
        status = body["status"]
        if status in ACTIVE_STEPS:
            return self.decide(chain, rid, body)
        if status == "reserved" and chain.plan == "cancel":
            response = self.http.call(
                "POST", f"/api/v1/requisitions/{rid}/cancel", self.org.finance, {"comment": "chaos: no longer needed"}
            )
            chain.note(f"cancel -> {response.status_code if response is not None else 'no answer'}")
            return True
        payable = status == "reserved" and (payment is None or payment.get("state") == "failed")
        failed = status == "payment_failed" and payment is not None and payment.get("state") == "failed"
        if payable or failed:
            return self.pay(chain, rid)
        return False

    def create(self, chain: Chain) -> str | None:
        """POST the requisition until a definitive answer; its id (None if refused or never known)."""
        requester = self.people[chain.requester]
        payee: dict[str, str] = {"name": "Chaos Payee", "method": chain.method}
        if chain.method != "cash":
            payee["account_ref"] = f"ACC-{chain.number:05d} {chain.marker}".strip()
        body = {
            "branch": chain.branch,
            "amount": {"minor_units": chain.amount_minor, "currency": CURRENCY},
            "category": chain.category,
            "purpose": chain.purpose,
            "payee": payee,
        }

        def pending(answer: requests.Response | None, seconds: float) -> str | None:
            chain.create_answers[str(answer.status_code) if answer is not None else "no-answer"] += 1
            if answer is not None and answer.status_code == 202:
                chain.accepted_202 = True
                with contextlib.suppress(ValueError, KeyError):
                    chain.message_id = chain.message_id or answer.json()["message_id"]
            if seconds < LOOKUP_AFTER_SECONDS:
                return None
            return self.find_mine(requester, chain.purpose)

        response, found = keyed_post(
            self.http, "/api/v1/requisitions", requester, body, chain.key, self.controls.give_up, pending
        )
        if found:
            chain.note(f"create: found by purpose after the reply never came ({found})")
            chain.requisition_id = found
            return found
        if response is None or not is_definitive(response):
            chain.note(f"create: no definitive answer ({response.status_code if response is not None else 'none'})")
            return None
        chain.first_answer = response.status_code
        if response.status_code != 201:
            chain.note(f"create refused: {response.status_code} {response.text[:200]}")
            return None
        chain.requisition_id = str(response.json()["id"])
        return chain.requisition_id

    def find_mine(self, requester: Person, purpose: str) -> str | None:
        """The requester's own requisition with this purpose, from their list, if it exists."""
        for offset in range(0, 2_000, 200):
            listing = self.http.get_json(f"/api/v1/requisitions?scope=mine&limit=200&offset={offset}", requester)
            if listing is None:
                return None
            items = listing.get("items", [])
            for item in items:
                if item.get("purpose") == purpose:
                    return str(item["id"])
            if len(items) < 200:
                return None
        return None

    def decide(self, chain: Chain, rid: str, body: dict[str, Any]) -> bool:
        """The approver of the active step approves (or, for a chain meant to fail, rejects)."""
        steps = (body.get("approval") or {}).get("steps") or []
        active = next((s for s in steps if s.get("status") == "active"), None)
        if active is None:
            return False  # the approval case is not projected yet
        approver = self.approver(chain.branch, str(active.get("role")), bool(active.get("admin_may_act")))
        if approver is None:
            chain.note(f"no approver for step {active}")
            return False
        if chain.plan == "reject":
            path, payload = f"/api/v1/requisitions/{rid}/reject", {"reason": "chaos: not this time"}
        elif active.get("kind") == "urgency_confirmation":
            path, payload = f"/api/v1/requisitions/{rid}/confirm-urgency", {"comment": "chaos"}
        else:
            path, payload = f"/api/v1/requisitions/{rid}/approve", {"comment": "chaos: ok"}
        response = self.http.call("POST", path, approver, payload)
        answer = response.status_code if response is not None else "no answer"
        chain.note(f"{path.rsplit('/', 1)[-1]} step {active.get('seq')} by {approver.username} -> {answer}")
        return True

    def approver(self, branch: str, role: str, admin_may_act: bool) -> Person | None:
        """Who acts on a step of this role for this branch (an admin once the step escalated)."""
        if admin_may_act:
            return self.org.admin
        return {
            "branch_manager": self.org.branch_manager.get(branch),
            "regional_manager": self.org.regional_manager.get(branch),
            "finance": self.org.finance,
            "cfo": self.org.cfo,
        }.get(role)

    def pay(self, chain: Chain, rid: str) -> bool:
        """Execute the payment with a fresh code from some treasury user (keyed, retried as one)."""
        lease = self.pool.acquire(self.controls.give_up)
        if lease is None:
            return False
        person, code = lease
        attempt: dict[str, Any] = {"key": str(uuid.uuid4()), "treasurer": person.username, "at": time.time()}
        chain.payment_attempts.append(attempt)
        before = self.http.get_json(f"/api/v1/requisitions/{rid}/payment", self.org.finance) or {}

        def pending(answer: requests.Response | None, seconds: float) -> str | None:
            if answer is not None and answer.status_code == 202:
                with contextlib.suppress(ValueError, KeyError):
                    attempt["message_id"] = attempt.get("message_id") or answer.json()["message_id"]
            # No definitive answer yet: the payment itself may say the execution started. A
            # command lost with the broker's memory never answers; after a while a person
            # tries again with a fresh code (the payment service refuses a second execution
            # while one is under way, so this is safe).
            now = self.http.get_json(f"/api/v1/requisitions/{rid}/payment", self.org.finance) or {}
            if now.get("executions", 0) > before.get("executions", 0) or now.get("state") == "completed":
                return "started"
            return "abandoned" if seconds > PAYMENT_PENDING_GIVE_UP_SECONDS else None

        response, resolution = keyed_post(
            self.http,
            f"/api/v1/requisitions/{rid}/payment",
            person,
            {"otp": code},
            attempt["key"],
            self.controls.give_up,
            pending,
        )
        if resolution is not None or response is None or not is_definitive(response):
            attempt["outcome"] = resolution or "gave-up"
            chain.note(f"pay by {person.username}: no definitive answer ({attempt['outcome']})")
            if resolution == "started":
                chain.executions_started += 1
            return True
        kind = problem_type(response) if response.status_code >= 400 else ""
        attempt["outcome"] = f"{response.status_code} {kind}".rstrip()
        chain.note(f"pay by {person.username} -> {attempt['outcome']}")
        if response.status_code == 201:
            chain.executions_started += 1
        elif response.status_code == 429:
            retry_after = response.headers.get("Retry-After", "900")
            self.pool.lock(person, float(retry_after) if retry_after.isdigit() else 900.0)
        return True


# -- floats ---------------------------------------------------------------------------------


class Funder:
    """Opens each branch's float, then keeps it topped up: treasury asks, finance approves."""

    def __init__(self, base_url: str, org: Org, controls: Controls, stop: threading.Event) -> None:
        self.http = Http(base_url)
        self.org = org
        self.controls = controls
        self.stop = stop
        self.replenishments: list[dict[str, Any]] = []

    def open_floats(self) -> None:
        """Fund every branch's float once (before the faults start)."""
        for branch in BRANCHES:
            response, _ = keyed_post(
                self.http,
                "/api/v1/floats",
                self.org.funder,
                {"branch": branch, "amount": kes(FLOAT_OPENING_MAJOR)},
                str(uuid.uuid4()),
                self.controls.give_up,
            )
            if response is None or response.status_code not in (201, 409):
                raise RuntimeError(f"could not open the float of {branch}: {response}")

    def run(self) -> None:
        """Every two seconds, replenish a float that runs low (until the run ends)."""
        quiet_until: dict[str, float] = {}
        while not self.stop.wait(2.0):
            for branch in BRANCHES:
                if quiet_until.get(branch, 0.0) > time.monotonic():
                    continue  # the last top-up may not be projected yet: do not ask twice
                body = self.http.get_json(f"/api/v1/floats/{branch}", self.org.finance)
                if not body or not body.get("floats"):
                    continue
                available = body["floats"][0]["available"]["minor_units"]
                if available < FLOAT_LOW_WATER_MAJOR * 100:
                    self.replenish(branch, available)
                    quiet_until[branch] = time.monotonic() + 10.0

    def _give_up_after(self, seconds: float) -> Callable[[], bool]:
        # An answer lost with the broker's memory never comes: ask afresh on a later round.
        deadline = time.monotonic() + seconds
        return lambda: self.stop.is_set() or time.monotonic() > deadline

    def replenish(self, branch: str, available: int) -> None:
        """Ask for money (treasury) and approve it (finance), each POST keyed and retried as one."""
        asked, _ = keyed_post(
            self.http,
            f"/api/v1/floats/{branch}/replenishments",
            self.org.funder,
            {"amount": kes(REPLENISHMENT_MAJOR), "comment": f"chaos: {available} left"},
            str(uuid.uuid4()),
            self._give_up_after(60.0),
        )
        record: dict[str, Any] = {"branch": branch, "at": time.time(), "asked": getattr(asked, "status_code", None)}
        self.replenishments.append(record)
        if asked is None or asked.status_code != 201:
            return
        request_id = asked.json()["id"]
        decided, _ = keyed_post(
            self.http,
            f"/api/v1/replenishments/{request_id}/decision",
            self.org.finance,
            {"approve": True, "comment": "chaos"},
            str(uuid.uuid4()),
            self._give_up_after(60.0),
        )
        record.update(id=request_id, decided=getattr(decided, "status_code", None))
