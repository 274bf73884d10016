"""The seeded fault schedule: what goes wrong, when, all derived from one seed so a run can be repeated.

Two sorts of fault:

- **Switches** hold for a whole run and are handed to every role through its environment:
  every message published twice (``PETTYCASH_FAULT_DUPLICATE_DELIVERY``), a slow provider
  (``PETTYCASH_PROVIDER_LATENCY_MS``) and a provider rule (``PETTYCASH_PROVIDER_FAULTS``).
  Per-payment provider failures (transient, permanent, lost reply) come from the workload's
  payees, whose account references carry the markers ``services.payment.providers`` reads.
- **Events** happen at a point in time: SIGKILL of one role's process group (each worker, the
  projector, the relay, beat and the gateway, each at least once), a Redis restart without
  persistence (every queued, unacknowledged and stored message lost), and an immediate
  PostgreSQL restart (every connection cut, in-flight transactions lost). Each kind happens
  at least once per run, at a random time; longer runs draw more at random.

Only the times are random, not the order of execution: the injector runs events one after
the other in the harness, and a run's wall-clock timing (and so which requests a fault hits)
still varies between repeats of a seed; the schedule itself is identical.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

KILL = "sigkill"
REDIS_RESTART = "redis-restart"
POSTGRES_RESTART = "postgres-restart"
# Faults start after this lead, so that chains are in flight when the first one lands.
LEAD_SECONDS = 3.0
# Beyond one of each, one more random event per this many seconds of run.
EXTRA_EVENT_EVERY_SECONDS = 15.0
# Provider rules a run may carry for every payment of a method (a payee's marker overrides).
# transient:5 outlasts one execution's 4 calls, so treasury must execute again with a fresh code.
PROVIDER_RULES: tuple[str, ...] = ("", "bank=transient:1", "mobile_money=transient:5", "bank=lost_reply")
PROVIDER_LATENCIES_MS: tuple[int, ...] = (0, 150, 600)


@dataclass(frozen=True)
class Switches:
    """Faults that hold for the whole run (passed to every role in its environment)."""

    duplicate_delivery: bool
    provider_latency_ms: int
    provider_faults: str


@dataclass(frozen=True)
class FaultEvent:
    """One fault at ``at`` seconds into the run: a kind and its target (a role, redis, postgres)."""

    at: float
    kind: str
    target: str
    down_seconds: float = 0.0

    @property
    def label(self) -> str:
        """What the summary counts it under (a kill is counted per role too)."""
        return f"{self.kind}:{self.target}" if self.kind == KILL else self.kind


@dataclass(frozen=True)
class Schedule:
    """A run's faults, derived from its seed alone."""

    seed: int
    seconds: float
    switches: Switches
    events: tuple[FaultEvent, ...] = field(default_factory=tuple)

    def counts(self) -> dict[str, int]:
        """Events by kind, and kills by role."""
        counts: Counter[str] = Counter()
        for event in self.events:
            counts[event.kind] += 1
            if event.kind == KILL:
                counts[event.label] += 1
        return dict(sorted(counts.items()))

    def to_dict(self) -> dict[str, Any]:
        """The schedule as the JSON summary shows it."""
        return {
            "seed": self.seed,
            "seconds": self.seconds,
            "switches": asdict(self.switches),
            "events": [asdict(e) for e in self.events],
        }


def make_schedule(seed: int, seconds: float, killable: list[str]) -> Schedule:
    """The schedule of a run of ``seconds`` whose killable roles are ``killable`` (in a fixed order)."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible schedule, not a secret
    switches = Switches(
        duplicate_delivery=rng.random() < 0.5,
        provider_latency_ms=rng.choice(PROVIDER_LATENCIES_MS),
        provider_faults=rng.choice(PROVIDER_RULES),
    )
    # At least one of everything, so even a short run exercises each fault once.
    kinds: list[tuple[str, str]] = [(KILL, role) for role in killable]
    kinds += [(REDIS_RESTART, "redis"), (POSTGRES_RESTART, "postgres")]
    extra = int(seconds // EXTRA_EVENT_EVERY_SECONDS)
    population = [*kinds]
    kinds += [rng.choice(population) for _ in range(extra)]
    end = max(LEAD_SECONDS + 1.0, seconds * 0.95)
    events = []
    for kind, target in kinds:
        down = round(rng.uniform(0.2, 2.0), 2) if kind != KILL else 0.0
        events.append(FaultEvent(round(rng.uniform(LEAD_SECONDS, end), 2), kind, target, down))
    return Schedule(seed, seconds, switches, tuple(sorted(events, key=lambda e: (e.at, e.kind, e.target))))
