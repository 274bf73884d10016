"""One seed's fault run, start to end: backing services, stack, workload, faults, quiescence, checks.

Nothing here is specific to one fault or one invariant: the schedule (``faults``), the
clients (``workload``) and the checks (``invariants``) are their own modules; this wires them
in order and always cleans up (every process it started is stopped, also on Ctrl-C).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pettycash.chaos import report
from pettycash.chaos.cluster import PostgresCluster, RedisServer, free_port
from pettycash.chaos.faults import KILL, POSTGRES_RESTART, REDIS_RESTART, FaultEvent, Schedule, make_schedule
from pettycash.chaos.invariants import census, check_all, observations, open_work
from pettycash.chaos.stack import Stack, StackConfig
from pettycash.chaos.workload import ChainDriver, Controls, Funder, Http, Org, Tracker, TreasuryPool, create_org, enrol
from shared.db.engine import Database

log = logging.getLogger(__name__)

# Clients still busy this long after the databases went quiet wait for what never comes.
STALL_SECONDS = 60.0


@dataclass(frozen=True)
class RunOptions:
    """How long and how hard each seed runs, and where its results go."""

    minutes: float
    clients: int
    out_dir: Path
    quiesce_seconds: float = 300.0
    # A code is good once per user per 30 s step: enough treasury users that paying never waits long.
    treasury_per_client: int = 6
    staff_per_branch: int = 2
    keep: bool = False


def _count(db: Database, sql: str) -> int:
    from sqlalchemy import text

    with db.engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar() or 0)


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


class FaultInjector:
    """Carries out a schedule's events at their times, noting what was done and when."""

    def __init__(self, stack: Stack, redis: RedisServer, cluster: PostgresCluster, say: Callable[[str], None]) -> None:
        self.stack = stack
        self.redis = redis
        self.cluster = cluster
        self.say = say
        self.injected: list[dict[str, Any]] = []

    def run(self, schedule: Schedule, started: float) -> None:
        """Inject every event at its time (late if the one before took long), in order."""
        for event in schedule.events:
            wait = started + event.at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self.inject(event, started)

    def inject(self, event: FaultEvent, started: float) -> None:
        """One event, now; a fault that could not be injected is reported, not fatal."""
        at = time.monotonic() - started
        record: dict[str, Any] = {
            "planned_at": event.at,
            "at": round(at, 2),
            "kind": event.kind,
            "target": event.target,
            "wall": round(time.time(), 2),
        }
        try:
            if event.kind == KILL:
                self.stack.kill(event.target)
            elif event.kind == REDIS_RESTART:
                self.redis.restart(event.down_seconds)
            elif event.kind == POSTGRES_RESTART:
                self.cluster.restart(event.down_seconds)
            record["ok"] = True
        except Exception as exc:
            record.update(ok=False, error=f"{type(exc).__name__}: {exc}")
        record["took"] = round(time.monotonic() - started - at, 2)
        self.injected.append(record)
        self.say(f"fault at {at:5.1f}s: {event.kind} {event.target} (took {record['took']}s)")


class SeedRun:
    """The pieces of one seed's run, started in order and torn down in reverse."""

    def __init__(self, seed: int, options: RunOptions, cleanup: contextlib.ExitStack) -> None:
        self.seed = seed
        self.options = options
        self.cleanup = cleanup
        self.t0 = time.monotonic()
        self.seed_dir = options.out_dir / f"seed-{seed}"
        if self.seed_dir.exists():
            shutil.rmtree(self.seed_dir)
        self.log_dir = self.seed_dir / "logs"
        self.log_dir.mkdir(parents=True)
        self.seconds = options.minutes * 60
        # Its own top-level directory: when we are root, PostgreSQL runs as another user and must
        # reach it, which it could not inside a private (0700) directory of ours.
        self.cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix=f"pettycash-chaos-pg-{seed}-")))
        self.redis = RedisServer(self.seed_dir / "redis")
        self.controls = Controls()
        self.funder_stop = threading.Event()
        self.tracker = Tracker()
        self.dbs: dict[str, Database] = {}
        self.threads: list[threading.Thread] = []
        self.drivers: list[ChainDriver] = []

    def say(self, message: str) -> None:
        """A progress line of this seed."""
        report.say(self.seed, message, self.t0)

    def backing_services(self) -> None:
        """Our own PostgreSQL cluster and Redis server (torn down at the end, whatever happens)."""
        if self.options.keep:
            self.cleanup.callback(self.say, f"PostgreSQL cluster kept in {self.cluster.data_dir}")
            self.cleanup.callback(self.cluster.stop)
        else:
            self.cleanup.callback(self.cluster.destroy)
        self.cleanup.callback(self.redis.kill)
        self.cluster.init()
        self.cluster.start()
        self.redis.start()

    def plan(self) -> tuple[Schedule, StackConfig]:
        """The seed's schedule and the stack's configuration (its switches in the environment)."""
        from pettycash.supervisor import roles
        from shared.config import load_settings

        port = free_port()
        template = self.cluster.database_template()
        probe = StackConfig(template, self.redis.url, self.seed_dir / "var", port)
        killable = [name for name, _ in roles(load_settings(probe.environment()))]
        schedule = make_schedule(self.seed, self.seconds, killable)
        switches = schedule.switches
        config = StackConfig(
            template,
            self.redis.url,
            self.seed_dir / "var",
            port,
            duplicate_delivery=switches.duplicate_delivery,
            provider_latency_ms=switches.provider_latency_ms,
            provider_faults=switches.provider_faults,
        )
        self.say(f"PostgreSQL :{self.cluster.port}, Redis :{self.redis.port}, gateway :{port}; {switches}")
        return schedule, config

    def databases(self, config: StackConfig) -> Org:
        """Migrate every database, seed the demo organisation and the run's extra users."""
        from services.gateway import identity
        from shared.config import DATABASES, load_settings
        from shared.db.migrate import upgrade

        settings = load_settings(config.environment())
        for name in DATABASES:
            upgrade(f"services.{name}", settings.database_url(name))
            self.dbs[name] = Database(settings.database_url(name))
        self.cleanup.callback(lambda: [db.dispose() for db in self.dbs.values()])
        with self.dbs["gateway"].uow() as uow:
            tokens = identity.seed_demo(uow.session)
            uow.commit()
        treasury = self.options.treasury_per_client * self.options.clients
        return create_org(self.dbs["gateway"], tokens, treasury, self.options.staff_per_branch)

    def start_stack(self, config: StackConfig) -> Stack:
        """Every role, supervised; ready once the approval service knows every user."""
        stack = Stack(config, self.log_dir)
        self.cleanup.callback(stack.stop)
        stack.start()
        users = _count(self.dbs["gateway"], "SELECT count(*) FROM users")
        _wait(lambda: _count(self.dbs["approval"], "SELECT count(*) FROM approvers") >= users, 60, "the directory")
        return stack

    def start_workload(self, config: StackConfig, org: Org) -> Funder:
        """Treasury's authenticators and the floats first, then the funder and the clients."""
        pool = TreasuryPool()
        http = Http(config.base_url)
        for person in org.treasury:
            pool.add(person, enrol(http, person, self.controls.give_up))
        funder = Funder(config.base_url, org, self.controls, self.funder_stop)
        funder.open_floats()
        funder_thread = threading.Thread(target=funder.run, name="funder", daemon=True)
        funder_thread.start()
        # On any exit (callbacks run last first) the clients give up before the stack stops under them.
        self.cleanup.callback(funder_thread.join, 30)
        self.cleanup.callback(self.funder_stop.set)
        self.cleanup.callback(self.controls.abandon.set)
        for client in range(self.options.clients):
            driver = ChainDriver(client, config.base_url, org, pool, self.tracker, self.controls, self.seed)
            thread = threading.Thread(target=driver.run, name=f"client-{client}", daemon=True)
            thread.start()
            self.drivers.append(driver)
            self.threads.append(thread)
        self.say(f"{len(pool)} treasury authenticators, floats open; {self.options.clients} clients started")
        return funder

    def quiesce(self, max_executions: int) -> dict[str, Any]:
        """Wait until the clients are done and nothing moves any more (or the limit passes).

        Clients still waiting while the databases have had nothing open for a minute wait for
        answers that will never come (a command lost on its way): waiting longer shows nothing.
        """
        started = time.monotonic()
        work: dict[str, int] = {}
        last_said = started
        idle_since: float | None = None
        while time.monotonic() - started < self.options.quiesce_seconds:
            clients = sum(1 for t in self.threads if t.is_alive())
            try:
                system = open_work(self.dbs, max_executions)
            except Exception as exc:  # the database may still be recovering: look again
                system = {"probe_failed": 1}
                log.debug("quiescence probe failed: %s", exc)
            work = {"clients_busy": clients, **system}
            now = time.monotonic()
            if not any(work.values()):
                return {"reached": True, "seconds": round(now - started, 1), "open_work": work}
            idle_since = (idle_since or now) if not any(system.values()) else None
            if idle_since is not None and now - idle_since > STALL_SECONDS:
                return {"reached": False, "stalled": True, "seconds": round(now - started, 1), "open_work": work}
            if now - last_said > 15:
                self.say(f"waiting for quiescence: {work}")
                last_said = now
            time.sleep(1.0)
        return {"reached": False, "seconds": round(time.monotonic() - started, 1), "open_work": work}

    def finish_workload(self) -> None:
        """Tell clients to give up what is left, and wait for them."""
        self.controls.abandon.set()
        for thread in self.threads:
            thread.join(30)
        self.funder_stop.set()


def run_seed(seed: int, options: RunOptions) -> dict[str, Any]:
    """Run one seed and return its summary (also written to ``<out>/seed-<n>/summary.json``)."""
    from shared.config import load_settings

    result: dict[str, Any] = {"seed": seed, "minutes": options.minutes, "clients": options.clients}
    with contextlib.ExitStack() as cleanup:
        run = SeedRun(seed, options, cleanup)
        run.backing_services()
        schedule, config = run.plan()
        org = run.databases(config)
        stack = run.start_stack(config)
        funder = run.start_workload(config, org)

        started = time.monotonic()
        injector = FaultInjector(stack, run.redis, run.cluster, run.say)
        run.say(f"{len(schedule.events)} faults over {run.seconds:.0f}s")
        injector.run(schedule, started)
        time.sleep(max(0.0, started + run.seconds - time.monotonic()))
        run.controls.no_new_chains.set()
        run.say(f"faults over; {len(run.tracker.chains)} chains started; no new chains, waiting for quiescence")
        max_executions = load_settings(config.environment()).payment_max_executions
        quiescence = run.quiesce(max_executions)
        run.finish_workload()

        chains = run.tracker.snapshot()
        violations, notes = check_all(run.dbs, chains, max_executions, run.redis.url, injector.injected)
        http_answers: Counter[str] = Counter()
        for driver in run.drivers:
            http_answers.update(driver.http.counts)
        result.update(
            schedule=schedule.to_dict(),
            faults_injected=injector.injected,
            faults_by_type=faults_by_type(schedule, chains),
            restarts_observed=dict(Counter(str(e["role"]) for e in stack.events() if e["event"] == "restarted")),
            kills_missed=dict(Counter(str(e["role"]) for e in stack.events() if e["event"] == "kill-missed")),
            chains=report.chains_summary(chains),
            chain_details=[c.__dict__ for c in chains],
            replenishments=funder.replenishments,
            http_answers=dict(http_answers),
            census=census(run.dbs),
            quiescence=quiescence,
            violations=[v.to_dict() for v in violations],
            notes=notes,
            observations=observations(run.dbs, chains, injector.injected),
            seconds_total=round(time.monotonic() - run.t0, 1),
            log_dir=str(run.log_dir),
            summary_path=str(run.seed_dir / "summary.json"),
        )
    report.write_json(Path(result["summary_path"]), result)
    return result


def faults_by_type(schedule: Schedule, chains: list[Any]) -> dict[str, int]:
    """Every fault the run injected, by type: the schedule's events, its switches, the provider's failures."""
    counts = schedule.counts()
    switches = schedule.switches
    if switches.duplicate_delivery:
        counts["duplicate-delivery"] = 1
    if switches.provider_latency_ms:
        counts["slow-provider"] = 1
    if switches.provider_faults:
        counts["provider-rule"] = 1
    counts.update(report.provider_faults(chains))
    return dict(sorted(counts.items()))
