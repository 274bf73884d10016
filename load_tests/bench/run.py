"""One benchmark run, start to finish: databases, bulk load, stack, baseline, stages, report.

Everything it starts it stops, process group by process group, however the run ends
(an exception, Ctrl-C, SIGTERM); children also die with it if it is killed outright.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import secrets
import shlex
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gevent
import psutil
import psycopg
import redis

from load_tests.bench import baseline, report, runs, stages
from load_tests.bench.stack import (
    Stack,
    StackOptions,
    bench_env,
    drop_databases,
    flush_redis,
    free_port,
    http_ok,
    recreate_databases,
    start_redis,
)
from load_tests.bench.stack import spawn as spawn_process
from load_tests.bench.users import OtpPool, Watcher, World, configure
from pettycash.history import load as history
from pettycash.history.plan import Seeded, SeedPlan, conninfo
from pettycash.supervisor import Child, stop_all
from services.gateway.passwords import Passwords
from shared.config import Settings, load_settings

log = logging.getLogger("bench")
ROOT = Path(__file__).resolve().parents[2]
STAGES: dict[str, Callable[[stages.Bench], stages.StageResult]] = {
    "reads": stages.reads,
    "pages": stages.pages,
    "create": stages.create,
    "pay": stages.pay,
    "chain": stages.chains,
    "reports": stages.reports,
    "runs": runs.payment_runs,
}


# Stages that read none of the gateway's read models (reports are the services' own; a run's
# authorisation and payments go to the payment service): without the others, the rebuild of the
# loaded history's projections (minutes at a million transfers) is skipped.
WITHOUT_READ_MODELS = frozenset({"reports", "runs"})


@dataclass(frozen=True)
class BenchOptions:
    """Everything a run can be told (``python -m load_tests.bench --help``)."""

    smoke: bool = False
    requisitions: int = 100_000
    transfers: int = 1_000_000
    out: Path = ROOT / "load_tests" / "reports"
    work_dir: Path = ROOT / "var" / "bench"
    stack: StackOptions = field(default_factory=StackOptions)
    stages: stages.StageConfig = field(default_factory=stages.StageConfig)
    only: tuple[str, ...] = tuple(STAGES)
    baseline_seconds: float = 10.0
    keep_databases: bool = False  # leave the loaded databases for a look afterwards
    command: str = ""

    @classmethod
    def smoke_options(cls, **overrides: Any) -> BenchOptions:
        """Tiny volume, every stage for about a second."""
        defaults: dict[str, Any] = {
            "smoke": True,
            "requisitions": 400,
            "transfers": 3_000,
            "stack": StackOptions(db_prefix="pettycash_bench_smoke_", worker_concurrency=2),
            "stages": stages.StageConfig(
                stage_seconds=1.0,
                warmup_seconds=0.5,
                ramp_seconds=0.5,
                read_users=20,
                read_wait=(0.1, 0.3),
                create_rates=(10, 20),
                pay_rate=5,
                chain_rate=3,
                report_rate=2,
                runs=1,
                run_size=10,
                page_users=10,
                page_wait=(0.1, 0.3),
                sign_in_timeout=30,
                drain_timeout=20,
                profile="never",
                profile_seconds=2.0,
                poisson=False,
            ),
            "baseline_seconds": 0.5,
        }
        return cls(**{**defaults, **overrides})


_STARTED = time.monotonic()


def _say(message: str) -> None:
    print(f"bench [{time.monotonic() - _STARTED:6.1f} s] {message}", flush=True)


def seed_plan(options: BenchOptions) -> SeedPlan:
    """Enough reserved requisitions and treasury users for the payment and chain stages."""
    cfg = options.stages
    # Load runs through the warm-up, the measurement and, if the aim is missed, the profile.
    measured = cfg.stage_seconds + cfg.warmup_seconds + 2 + (cfg.profile_seconds if cfg.profile != "never" else 0)
    payments = math.ceil(1.3 * (cfg.pay_rate + cfg.chain_rate) * measured)
    # Each user's codes: about three steps at first, then one every 30 s (see users.OtpPool).
    per_user = 2 + 2 * measured / 30
    if options.smoke:
        return SeedPlan(
            requisitions=options.requisitions,
            transfers=options.transfers,
            regions=2,
            branches=6,
            staff_per_branch=2,
            treasury_users=math.ceil(payments / per_user) + 5,
            finance_users=2,
            reserved_at_least=math.ceil(1.3 * cfg.pay_rate * measured) + (cfg.runs + 1) * cfg.run_size,
        )
    return SeedPlan(
        requisitions=options.requisitions,
        transfers=options.transfers,
        treasury_users=math.ceil(payments / per_user) + 20,
        reserved_at_least=math.ceil(1.3 * cfg.pay_rate * measured) + (cfg.runs + 1) * cfg.run_size,
    )


@contextlib.contextmanager
def stopping_on_signals() -> Iterator[None]:
    """Ctrl-C and SIGTERM end the run in the main greenlet, so every ``finally`` stops what it started.

    Left to itself, the KeyboardInterrupt of a Ctrl-C lands in whichever greenlet runs at that
    moment (a locust user, say) and may be swallowed there.
    """
    import signal

    main = gevent.getcurrent()

    def interrupt(name: str) -> None:
        main.throw(KeyboardInterrupt(name))

    handlers = [gevent.signal_handler(s, interrupt, s.name) for s in (signal.SIGINT, signal.SIGTERM)]
    try:
        yield
    finally:
        for handler in handlers:
            handler.cancel()


def _versions(options: StackOptions) -> tuple[str, str]:
    with psycopg.connect(conninfo(options.postgres_url)) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    info = redis.Redis.from_url(options.broker_url).info("server")
    return (str(row[0]) if row else "?"), str(info.get("redis_version", "?"))


def _wait_directory(settings: Any, users: int, timeout: float = 180) -> float:
    """Seconds until the approval service's directory knows every user (from the gateway's events)."""
    started = time.monotonic()
    with psycopg.connect(conninfo(settings.database_url("approval")), autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT count(*) FROM approvers").fetchone()
            if row and row[0] >= users:
                return round(time.monotonic() - started, 1)
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"the approval service knows {row[0] if row else 0} of {users} users")
            gevent.sleep(0.2)


def _start_baseline(env: dict[str, str], options: BenchOptions, log_dir: Path) -> tuple[list[Child], str]:
    """The no-op Celery worker and the trivial Flask app under gunicorn; the app's URL."""
    port = free_port()
    py = [sys.executable, "-m", "load_tests.bench.baseline"]
    so = options.stack
    children = [
        spawn_process(
            "baseline-celery",
            [*py, "celery-worker", "--concurrency", str(so.worker_concurrency)],
            env,
            log_dir / "baseline-celery.log",
        ),
        spawn_process(
            "baseline-flask",
            [
                *py,
                "flask",
                "--port",
                str(port),
                "--workers",
                str(so.gunicorn_workers),
                "--threads",
                str(so.gunicorn_threads),
            ],
            env,
            log_dir / "baseline-flask.log",
        ),
    ]
    return children, f"http://127.0.0.1:{port}"


def _baseline_ready(children: list[Child], url: str, log_dir: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        dead = next((c for c in children if c.process.poll() is not None), None)
        if dead is not None:
            raise RuntimeError(f"{dead.name} exited: {(log_dir / f'{dead.name}.log').read_text()[-2000:]}")
        celery_log = (log_dir / "baseline-celery.log").read_text(errors="replace")
        if "ready." in celery_log and http_ok(f"{url}/ping"):
            return
        if time.monotonic() > deadline:
            raise RuntimeError("the baseline processes did not start")
        gevent.sleep(0.2)


def method_notes(options: BenchOptions) -> list[str]:
    """How each figure is produced (printed at the end of the report)."""
    cfg = options.stages
    return [
        "Latencies per endpoint are locust's (FastHttpUser), client side, including the load generator's own "
        "scheduling on these shared cores; statistics are reset after each stage's warm-up "
        f"({cfg.warmup_seconds:g} s after the users are spawned) and measured for {cfg.stage_seconds:g} s.",
        "Arrival rates: each user's tasks start as a Poisson process of one a second (exponential gaps "
        "between planned starts; load_tests/bench/arrivals.py), so users = rate and independent users do not "
        "arrive in step (locust's constant_throughput, used before 2026-12-08, kept them in the phase a slow "
        "warm-up gave them: ten reports at once each second); a user whose answer comes after its next planned "
        "start starts at once, so each creation step also checks the rate reached.",
        f"The creation knee is the last step at which p95 ≤ {stages.KNEE_P95_MS} ms, failures ≤ "
        f"{100 * stages.KNEE_FAILURE_RATIO:g} % and at least {100 * stages.KNEE_RATE_REACHED:g} % of the "
        "offered rate was served; a 202 (reply later than the gateway's wait) counts as a failure.",
        "Payments use seeded reserved requisitions and hundreds of treasury users with active authenticators "
        "(TOTP secrets sealed with this run's key, as enrolment and activation leave them); each code is "
        "used once per user per 30 s step, as the payment service requires.",
        "A whole chain: branch staff creates (T1, cash), the branch manager approves, treasury pays with a "
        "code, the ledger posts. The chain's client learns that the case opened, the payment may run and the "
        "hold was posted from the owning service's database (one query per database every few ms for all "
        "chains), so no polling traffic loads the gateway. The aim is judged on submission → posting from "
        "database timestamps (requisitions.created_at → the post transfer's created_at).",
        f"Pages: a stage of their own (`pages`, {cfg.page_users} users), not part of the dashboard reads' mix "
        "(whose aim is the API's), so each aim is judged on its own traffic. Branch staff (weight 5) and branch "
        "managers (3), the roles that sign in without a second factor, each sign in once as a browser does: "
        "GET /sign-in (the session cookie and the form's CSRF token), the form posted (username, password, "
        "csrf_token), its 303 followed to GET /; one random password of this run for all of them (one Argon2id "
        "hash, stored at seeding; the password is kept in the load generator's memory only). The sign-ins run "
        "before the warm-up, with the gateway's sign-in rate limits lifted for the run (every user comes from "
        "127.0.0.1), and are not in the measured window. Then each opens /, /requisitions, "
        "/requisitions?scope=all, one of its branch's latest requisitions and (managers) /approvals, think time "
        f"{cfg.page_wait[0]:g}-{cfg.page_wait[1]:g} s, on its session cookie; a page must answer 200 with an HTML "
        "document itself (redirects are not followed, so a lost session fails). Static assets are not fetched "
        "(a browser caches them). The aim is judged on the slowest page's p95.",
        "The approval case often opens before the 201 reaches the client (the approval service routes while "
        "the gateway is still answering), so that lag can be negative.",
        "Projection lag: from a service writing an event to its outbox (in the committing transaction) to the "
        "gateway's projector taking it into its inbox (in the projecting transaction), for the stage's events.",
        "CPU per process: psutil, each role's process tree summed (gunicorn's master and workers), sampled "
        "every second; 100 % is one core.",
        "After each stage the run waits until every queue is empty, nothing is unacknowledged and every outbox "
        "is published (the drain time), so one stage's backlog does not load the next.",
        "Where a stage misses its aim and py-spy is installed, py-spy records the process of the stack that "
        f"burnt the most CPU in the measured window, for {cfg.profile_seconds:g} s after it while the same load "
        "goes on (100 Hz, non-blocking, samples holding the GIL), and dumps its threads once; the measured "
        "figures are not the profiler's.",
    ]


def run(options: BenchOptions) -> tuple[Path, Path, dict[str, str]]:
    """The whole benchmark; the JSON and Markdown reports' paths, and the stages that broke."""
    started_at = datetime.now(UTC)
    stem = f"bench-{started_at.strftime('%Y-%m-%d-%H%M')}" + ("-smoke" if options.smoke else "")
    work = options.work_dir / stem
    log_dir = work / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    clock = time.monotonic()
    data: dict[str, Any] = {
        "started": started_at.isoformat(),
        "command": options.command,
        "mode": "smoke" if options.smoke else "full",
        "options": {k: v for k, v in asdict(options).items() if k != "stack"},
        "work_dir": str(work),
        "failed_stages": {},
    }
    _say(f"work dir {work}")

    with stopping_on_signals(), contextlib.ExitStack() as running:
        # Stopped last (LIFO): the workers shut down while their broker still answers.
        so, companions = _broker(options.stack, work, log_dir, running)
        env = bench_env(so, work / "var")
        settings = load_settings(env)
        if not options.keep_databases:
            running.callback(drop_databases, so)
        seeded, page_password = _load(so, options, settings, env, data)
        stack = Stack(env, log_dir, so, companions=companions)
        data["stack"] = {**asdict(so), "roles": stack.role_argv(), "redis": "own server" if companions else "shared"}
        baseline_children, flask_url = _start_baseline(env, options, log_dir)
        running.callback(stop_all, baseline_children)
        running.enter_context(stack)
        stack.start()
        _baseline_ready(baseline_children, flask_url, log_dir)
        data["seed"]["directory_seconds"] = _wait_directory(settings, seeded.rows["users"])
        if set(options.only) - WITHOUT_READ_MODELS:
            _projections(env, settings, data["seed"])
        else:
            data["seed"]["projections_note"] = (
                "The gateway's read models were not rebuilt: the stages run (reports, payment runs) read none of them."
            )
        _say(f"stack up ({stack.readiness['seconds']} s); baseline")
        data["baseline"] = {
            **baseline.measure_celery(settings, options.baseline_seconds, so.worker_concurrency),
            **baseline.measure_flask(flask_url, options.baseline_seconds, so.gunicorn_workers * so.gunicorn_threads),
        }
        # Their graceful shutdown takes a second or two: let it happen during the first warm-up.
        gevent.spawn(stop_all, baseline_children)
        results = _stages(options, stack, seeded, page_password, stem, data["failed_stages"])
        data["machine"] = report.machine(*_versions(so))
        running.close()
    data["duration_seconds"] = round(time.monotonic() - clock, 1)
    data["method"] = method_notes(options)
    json_path, md_path = report.write(options.out, stem, data, results)
    _say(f"wrote {json_path} and {md_path}")
    return json_path, md_path, data["failed_stages"]


def _broker(
    options: StackOptions, work: Path, log_dir: Path, running: contextlib.ExitStack
) -> tuple[StackOptions, dict[str, psutil.Process]]:
    """The stack's options with its broker: a Redis server of the run's own unless one was named."""
    if options.redis_url:
        return options, {}
    child, url = start_redis(work, log_dir)
    running.callback(stop_all, [child])
    return dataclasses.replace(options, redis_url=url), {"redis-server (this run's)": psutil.Process(child.process.pid)}


def _load(
    so: StackOptions, options: BenchOptions, settings: Any, env: dict[str, str], data: dict[str, Any]
) -> tuple[Seeded, str]:
    """Fresh databases and Redis database, then the bulk load; and the page users' password
    (random, this run's, kept in memory only: its hash is in the gateway's database)."""
    recreate_databases(so, settings)
    flush_redis(so)
    plan = seed_plan(options)
    _say(f"loading {plan.requisitions:,} requisitions, {plan.transfers:,} transfers")
    password, password_hash = page_credentials(settings)
    seeded = history.generate(settings, plan, env["PETTYCASH_OTP_ENCRYPTION_KEY"], password_hash)
    data["seed"] = {"rows": seeded.rows, "seconds": {k: round(v, 2) for k, v in seeded.seconds.items()}}
    _say(f"loaded in {seeded.seconds['total']:.1f} s")
    return seeded, password


def _stages(
    options: BenchOptions, stack: Stack, seeded: Seeded, page_password: str, stem: str, failed: dict[str, str]
) -> dict[str, stages.StageResult]:
    """Every stage asked for, in order; a stage that breaks is reported and the others still run."""
    world = World(seeded, OtpPool(_devices(seeded)), Watcher(_conninfos(stack.settings)), page_password=page_password)
    world.payable = deque(seeded.payable)
    configure(world)
    bench = stages.Bench(stack, world, options.stages, options.out, stem, report.missed)
    results: dict[str, stages.StageResult] = {}
    try:
        for name in options.only:
            _say(f"stage {name}")
            try:
                results[name] = STAGES[name](bench)
            except Exception as exc:
                # The other stages still tell something; the report says this one broke.
                log.exception("stage %s failed", name)
                failed[name] = f"{type(exc).__name__}: {exc}"
                stack.check_alive()
            else:
                total = results[name].total
                _say(f"{name}: {total['requests']} requests, p95 {total['p95_ms']} ms")
    finally:
        world.watcher.stop()
    return results


def _projections(env: dict[str, str], settings: Any, seed_data: dict[str, Any]) -> None:
    """Fill the gateway's read models from the loaded data (through the running stack); analyse them."""
    started = time.monotonic()
    said = rebuild_projections(env)
    seconds = round(time.monotonic() - started, 1)
    history.analyse(settings, ["gateway"])
    seed_data["projections"] = True
    seed_data["projections_seconds"] = seconds
    seed_data["projections_note"] = f"`pettycash projections rebuild` filled the gateway's read models in {seconds} s"
    seed_data["projections_output"] = said


def page_credentials(settings: Settings) -> tuple[str, str]:
    """A random password for this run's page users, and its Argon2id hash (the gateway's hasher
    and cost): one hash for all of them, since Argon2 is slow by design. The password stays in
    the load generator's memory; only its hash is stored."""
    password = secrets.token_urlsafe(24)
    return password, Passwords.from_settings(settings.identity).hash(password)


def rebuild_projections(env: dict[str, str]) -> str:
    """Fill the gateway's read models from the services (needs the stack running); what it said."""
    done = subprocess.run(
        [sys.executable, "-m", "pettycash", "projections", "rebuild"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pettycash projections rebuild failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return (done.stdout + done.stderr).strip()[-500:]


def _devices(seeded: Seeded) -> list[tuple[str, str]]:
    return [(m.token, seeded.org.otp_secrets[m.user_id]) for m in seeded.org.people["treasury"]]


def _conninfos(settings: Any) -> dict[str, str]:
    return {name: conninfo(settings.database_url(name)) for name in ("approval", "payment", "ledger")}


def command_line(argv: list[str]) -> str:
    """How this run was started, for the report."""
    return shlex.join(["python", "-m", "load_tests.bench", *argv])
