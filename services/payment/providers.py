"""Disbursement providers: the adapter interface, and the built-in cash, mobile-money and bank providers.

A provider receives a :class:`Disbursement` whose ``payment_id`` is its idempotency key: a
call repeated with the same key never pays twice, it answers with the first payment's
receipt. That is what lets the disbursement job retry, and the reconciler re-drive, freely.

The built-in providers keep their books in the payment database (``provider_transfers``),
committed on their own, as the far side of a real wire would be: when a worker dies after
the provider paid, the next run finds the money already sent.

Fault injection (the simulated ``mobile_money`` and ``bank`` providers; cash always pays at
once). Deterministic, counted per payment in the provider's own books:

- ``PETTYCASH_PROVIDER_FAULTS``: ``;``-separated ``method=kind[:n]`` rules, for example
  ``bank=transient:2;mobile_money=permanent``.
- A marker in the payee's account reference overrides the rule for its method, so one test
  can shape one payment: ``FAIL-TRANSIENT-2``, ``FAIL-PERMANENT``, ``FAIL-LOST-REPLY``.

All of it acts only where ``PETTYCASH_ENV`` is ``test`` or ``demo`` (``shared.config``
refuses the switches elsewhere, and markers are plain text there).

Kinds: ``transient:n`` (the first n calls for a payment fail with a transient error, then
it pays; n defaults to 1), ``permanent`` (every call is refused: a closed account), and
``lost_reply`` (the provider pays, but the answer to that call is lost as a transient error,
the ambiguous failure idempotency exists for). ``PETTYCASH_PROVIDER_LATENCY_MS`` adds that
many milliseconds to every simulated mobile-money or bank call.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from sqlalchemy import update
from sqlalchemy.orm import Session

from services.payment.models import ProviderTransfer
from shared.config import ConfigError
from shared.contracts.money import Money
from shared.db import upsert
from shared.db.engine import Database
from shared.db.types import utcnow


class ProviderError(Exception):
    """A provider did not pay."""


class TransientProviderError(ProviderError):
    """The provider may pay if asked again later (timeout, outage, rate limit)."""


class PermanentProviderError(ProviderError):
    """The provider will never pay this order as it stands (closed account, refused payee)."""


@dataclass(frozen=True)
class Disbursement:
    """An order to pay: the payment id is the idempotency key."""

    payment_id: uuid.UUID
    amount: Money
    payee_name: str
    account_ref: str


@dataclass(frozen=True)
class Receipt:
    """The provider's word that it paid."""

    provider: str
    reference: str


class Provider(Protocol):
    """What the disbursement job needs of a provider."""

    name: str

    def disburse(self, order: Disbursement) -> Receipt:
        """Pay once per ``order.payment_id``; raise a :class:`ProviderError` subclass if not paid."""
        ...


# -- fault injection ------------------------------------------------------------------


class FaultKind(StrEnum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    LOST_REPLY = "lost_reply"


@dataclass(frozen=True)
class Fault:
    """A scripted misbehaviour; ``count`` is how many calls fail (transient faults only)."""

    kind: FaultKind
    count: int = 1


SIMULATED_METHODS: tuple[str, ...] = ("mobile_money", "bank")
_MARKERS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], Fault]], ...] = (
    (re.compile(r"FAIL-TRANSIENT-(\d{1,2})"), lambda m: Fault(FaultKind.TRANSIENT, int(m.group(1)))),
    (re.compile(r"FAIL-PERMANENT"), lambda _m: Fault(FaultKind.PERMANENT)),
    (re.compile(r"FAIL-LOST-REPLY"), lambda _m: Fault(FaultKind.LOST_REPLY)),
)


def parse_faults(raw: str) -> dict[str, Fault]:
    """Parse ``PETTYCASH_PROVIDER_FAULTS`` (see the module docstring); ConfigError if malformed.

    A later rule for a method replaces an earlier one.
    """
    return dict(_fault_rule(item) for item in _fault_items(raw))


def _fault_items(raw: str) -> list[str]:
    """The ``;``-separated rules, stripped, empty ones dropped."""
    return [item for item in (part.strip() for part in raw.split(";")) if item]


def _fault_rule(item: str) -> tuple[str, Fault]:
    """One ``method=kind[:n]`` rule: the simulated method it is for, and its fault."""
    method, _, spec = (s.strip() for s in item.partition("="))
    if method not in SIMULATED_METHODS:
        raise ConfigError(f"PETTYCASH_PROVIDER_FAULTS: {method!r} is not one of {', '.join(SIMULATED_METHODS)}")
    return method, _fault_spec(spec, item)


def _fault_spec(spec: str, item: str) -> Fault:
    """The fault a ``kind[:n]`` spec names; only a transient fault takes a count, of at least 1."""
    kind, _, count = (s.strip() for s in spec.partition(":"))
    try:
        fault = Fault(FaultKind(kind), int(count) if count else 1)
    except ValueError:
        raise _bad_entry(item) from None
    if fault.count < 1 or (count and fault.kind != FaultKind.TRANSIENT):
        raise _bad_entry(item)
    return fault


def _bad_entry(item: str) -> ConfigError:
    return ConfigError(f"PETTYCASH_PROVIDER_FAULTS: bad entry {item!r}")


def marker_fault(account_ref: str) -> Fault | None:
    """The fault a payee's account reference asks for, if any."""
    for pattern, make in _MARKERS:
        match = pattern.search(account_ref)
        if match:
            return make(match)
    return None


# -- the built-in providers -----------------------------------------------------------


def _count_call(session: Session, provider: str, order: Disbursement) -> tuple[int, str | None]:
    """Record one more call for this key; returns the call number and the reference if paid.

    The upsert takes the row lock until the provider's commit, so two calls with one key
    (a duplicate job, a re-drive) queue up, and the second sees what the first did.
    """
    table = ProviderTransfer.__table__
    statement = upsert.insert(session, table).values(
        provider=provider,
        idempotency_key=order.payment_id,
        calls=1,
        amount_minor=order.amount.minor_units,
        currency=order.amount.currency,
        account_ref=order.account_ref,
        reference=None,
        first_call_at=utcnow(),
        paid_at=None,
    )
    row = session.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.provider, table.c.idempotency_key], set_={"calls": table.c.calls + 1}
        ).returning(table.c.calls, table.c.reference)
    ).one()
    return int(row.calls), row.reference


@dataclass
class BookedProvider:
    """A provider that keeps its own books in ``provider_transfers``, deduplicated on the payment id."""

    name: str
    db: Database
    fault: Fault | None = None
    latency_ms: int = 0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def disburse(self, order: Disbursement) -> Receipt:
        """Pay once per payment id; replays answer with the first receipt."""
        if self.latency_ms:
            self.sleep(self.latency_ms / 1000)  # outside the transaction: latency holds no lock
        reference, replayed = self._book(order)
        if not replayed and self._fault_is(FaultKind.LOST_REPLY):
            raise TransientProviderError(f"{self.name}: simulated timeout after paying (reply lost)")
        return Receipt(self.name, reference)

    def _book(self, order: Disbursement) -> tuple[str, bool]:
        """Count the call in the books and pay, committed either way: the reference, and whether
        it is the first payment's (a replay). A scripted failure is raised once committed."""
        with self.db.uow() as uow:
            calls, reference = _count_call(uow.session, self.name, order)
            if reference is not None:
                uow.commit()
                return reference, True  # already paid: the idempotent answer
            failure = self._scripted_failure(calls, order)
            if failure is not None:
                uow.commit()
                raise failure
            reference = self._pay(uow.session, order)
            uow.commit()
        return reference, False

    def _fault_is(self, kind: FaultKind) -> bool:
        return self.fault is not None and self.fault.kind == kind

    def _scripted_failure(self, calls: int, order: Disbursement) -> ProviderError | None:
        """The error call number ``calls`` fails with under the injected fault, if it fails."""
        fault = self.fault
        if fault is not None and fault.kind == FaultKind.TRANSIENT and calls <= fault.count:
            return TransientProviderError(f"{self.name}: simulated outage (call {calls} of {fault.count} failing)")
        if self._fault_is(FaultKind.PERMANENT):
            return PermanentProviderError(f"{self.name}: simulated refusal of account {order.account_ref!r}")
        return None

    def _pay(self, session: Session, order: Disbursement) -> str:
        """Mark the transfer paid under a fresh reference."""
        reference = f"{self.name[:4].upper()}-{secrets.token_hex(6).upper()}"
        session.execute(
            update(ProviderTransfer)
            .where(ProviderTransfer.provider == self.name, ProviderTransfer.idempotency_key == order.payment_id)
            .values(reference=reference, paid_at=utcnow())
        )
        return reference


@dataclass(frozen=True)
class ProviderSettings:
    """How the built-in providers behave in this process (from the settings, at start-up)."""

    faults: Mapping[str, Fault]
    latency_ms: int = 0
    # Whether the payees' FAIL-* markers act (tests and demos only: ``Settings.faults_allowed``).
    markers: bool = False

    @classmethod
    def parse(cls, provider_faults: str, latency_ms: int, markers: bool = False) -> ProviderSettings:
        """Validate the fault rules once, at start-up: a typo must stop the worker, not a payment."""
        return cls(parse_faults(provider_faults), max(0, latency_ms), markers)

    def for_payee(self, method: str, account_ref: str, db: Database) -> Provider:
        """The provider that pays a payee by ``method``, with its injected faults if any."""
        if method == "cash":
            # The cash box: pays at once; its voucher book is its record.
            return BookedProvider("cash", db)
        if method not in SIMULATED_METHODS:
            raise ValueError(f"no provider for payee method {method!r}")
        fault = (marker_fault(account_ref) if self.markers else None) or self.faults.get(method)
        return BookedProvider(method, db, fault, self.latency_ms)
