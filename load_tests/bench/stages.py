"""The stages: locust in-process (``locust.env.Environment`` and its local runner), headless.

Every stage warms up, resets locust's statistics, measures for ``stage_seconds`` while CPU is
sampled per process, stops its users, waits for the system to drain (queues empty, outboxes
published) and reads the lags from the databases. Arrival rates are set with
``arrivals.poisson_throughput`` (each user's tasks a Poisson process of one a second, so the
user count is the rate, and independent users do not arrive in step).

- reads: the four user types at their weights, dashboard reads only, ``read_users`` users;
- create: requisition creation at 50/s, then 100, 150, ... until p95 > 250 ms, failures
  > 1 % or the offered rate is not reached; the knee is the last step that held;
- pay: payments with one-time passwords at ``pay_rate``/s over seeded reserved requisitions;
- chain: whole chains (create, approve, pay, posted) at ``chain_rate``/s;
- pages: the web pages at ``page_users`` users (branch staff and managers in a browser), each
  signed in once with a password before the warm-up, then opening pages with think time.
"""

from __future__ import annotations

import contextlib
import logging
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import gevent
import psycopg
import redis
from locust import between, constant_throughput
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment
from locust.runners import LocalRunner

from load_tests.bench import lags
from load_tests.bench.arrivals import poisson_throughput
from load_tests.bench.cpu import CpuSampler
from load_tests.bench.stack import Stack
from load_tests.bench.users import (
    PAGE_TYPES,
    REPORT_DAYS,
    USER_TYPES,
    BranchUser,
    GeneralUser,
    ReportUser,
    TreasuryUser,
    World,
    paced,
)
from pettycash.history.plan import conninfo
from shared.config import DATABASES
from shared.contracts import catalog

log = logging.getLogger("bench")

PROJECT_ROOTS = ("services", "shared", "pettycash")
LINE_NUMBER = re.compile(r":\d+\)$")
# A step of the creation ladder holds while these hold.
KNEE_P95_MS = 250
KNEE_FAILURE_RATIO = 0.01
KNEE_RATE_REACHED = 0.9


@dataclass(frozen=True)
class StageConfig:
    """How long and how hard each stage runs."""

    stage_seconds: float = 60.0
    warmup_seconds: float = 5.0
    ramp_seconds: float = 5.0  # the dashboard stage's users arrive over this long
    read_users: int = 500
    read_wait: tuple[float, float] = (1.0, 3.0)
    create_rates: tuple[int, ...] = (50, 100, 150, 200, 250, 300, 350, 400, 450, 500)
    pay_rate: int = 20
    chain_rate: int = 20
    page_users: int = 100
    page_wait: tuple[float, float] = (1.0, 3.0)  # a person reading a page before the next
    report_rate: int = 10  # reports a second, each user asking for one a second
    runs: int = 5  # payment runs, one after the other
    run_size: int = 100  # payments in each
    sign_in_timeout: float = 120.0  # the pages stage waits this long for its users' sign-ins
    drain_timeout: float = 120.0
    profile: str = "missed"  # missed | always | never
    profile_seconds: float = 20.0  # py-spy's window, after the measured one, the load still on
    # Independent (Poisson) arrivals; the smoke run's stages of a second, with a user or two, pace
    # evenly instead, so each of them certainly makes a request in its measured second.
    poisson: bool = True

    def pacing(self, rate: float) -> Callable[[Any], float]:
        """A user's pacing at ``rate`` tasks a second."""
        return poisson_throughput(rate) if self.poisson else constant_throughput(rate)


@dataclass
class StageResult:
    """What one stage (or one step of the creation ladder) measured."""

    name: str
    title: str
    offered: str
    users: int
    seconds: float
    endpoints: list[dict[str, Any]]
    total: dict[str, Any]
    errors: list[dict[str, Any]]
    cpu: dict[str, Any]
    lags: dict[str, Any] = field(default_factory=dict)
    drain_seconds: float | None = None
    steps: list[StageResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profile: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageResult:
        """Back from the JSON report (to render it again)."""
        return cls(**{**data, "steps": [cls.from_dict(s) for s in data.get("steps", [])]})

    def endpoint(self, name: str) -> dict[str, Any] | None:
        return next((e for e in self.endpoints if e["name"] == name), None)


@dataclass
class Bench:
    """What the stages act on: the stack, the users' world, where profiles go."""

    stack: Stack
    world: World
    config: StageConfig
    out_dir: Path
    stem: str  # the report's file name without extension; profiles are named after it
    missed: Callable[[StageResult], bool] = lambda _result: False


# -- measuring ------------------------------------------------------------------------


def _entry(entry: Any, seconds: float) -> dict[str, Any]:
    def pct(p: float) -> float | None:
        return entry.get_response_time_percentile(p) if entry.num_requests else None

    return {
        "name": entry.name,
        "method": entry.method,
        "requests": entry.num_requests,
        "failures": entry.num_failures,
        "failure_ratio": round(entry.num_failures / entry.num_requests, 4) if entry.num_requests else 0.0,
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "avg_ms": round(entry.avg_response_time, 1),
        "max_ms": round(entry.max_response_time or 0, 1),
        "rps": round(entry.num_requests / seconds, 1),
    }


def snapshot(runner: LocalRunner, seconds: float) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    """Per-endpoint statistics, the total and the errors since the last reset."""
    endpoints = [_entry(e, seconds) for e in runner.stats.entries.values() if e.num_requests]
    endpoints.sort(key=lambda e: e["name"])
    errors = [
        {"name": e.name, "method": e.method, "error": str(e.error)[:300], "occurrences": e.occurrences}
        for e in sorted(runner.stats.errors.values(), key=lambda e: -e.occurrences)[:15]
    ]
    return endpoints, _entry(runner.stats.total, seconds), errors


def profile(bench: Bench, stage: str, target: tuple[str, int] | None) -> dict[str, Any] | None:
    """py-spy on the process that burnt the most CPU in the measured window, while the load goes on.

    It runs after the measurement, so the figures are not the profiler's; the users keep their
    pace meanwhile, so the profile is of the same load.
    """
    exe = py_spy()
    if exe is None or target is None:
        return None
    role, pid = target
    seconds = max(1, round(bench.config.profile_seconds))
    bench.out_dir.mkdir(parents=True, exist_ok=True)
    stem = bench.out_dir / f"{bench.stem}-profile-{stage}-{role}"
    # --gil: only samples that hold the GIL, i.e. Python on the CPU (waits on sockets drop out).
    argv = [exe, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "100", "--nonblocking", "--gil"]
    record = subprocess.Popen(  # noqa: S603 - fixed argv
        [*argv, "--format", "raw", "--output", f"{stem}.txt"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    gevent.sleep(seconds / 2)
    dump = subprocess.run(  # noqa: S603 - fixed argv
        [exe, "dump", "--pid", str(pid), "--nonblocking"], capture_output=True, timeout=30, check=False
    )
    Path(f"{stem}-dump.txt").write_bytes(dump.stdout + dump.stderr)
    with contextlib.suppress(subprocess.TimeoutExpired):
        record.wait(timeout=seconds + 30)
    return {
        "role": role,
        "pid": pid,
        "seconds": seconds,
        "record": f"{stem.name}.txt",
        "dump": f"{stem.name}-dump.txt",
        "top": top_frames(Path(f"{stem}.txt")),
    }


def py_spy() -> str | None:
    """The py-spy executable: the virtualenv's (``pip install -e '.[dev]'``), else one on the PATH."""
    import shutil
    import sys

    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def top_frames(raw: Path, limit: int = 15) -> dict[str, Any]:
    """From py-spy's collapsed stacks: the functions most often on the CPU themselves (``self``),
    and the project's own functions most often on the stack (``inclusive``: which use case binds)."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    lines = raw.read_text(errors="replace").splitlines() if raw.exists() else []
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + int(count)
        # Inclusive per function, whatever line of it is on the stack.
        for frame in {LINE_NUMBER.sub(")", f) for f in frames}:
            if any(f"({root}/" in frame for root in PROJECT_ROOTS):
                inclusive[frame] = inclusive.get(frame, 0) + int(count)
        total += int(count)

    def ranked(counts: dict[str, int]) -> list[dict[str, Any]]:
        top = sorted(counts.items(), key=lambda kv: -kv[1])[:limit]
        return [{"frame": f, "samples": n, "share": round(n / total, 3)} for f, n in top]

    return {"samples": total, "self": ranked(own), "inclusive": ranked(inclusive)}


def _environment(bench: Bench, user_classes: list[type[FastHttpUser]], tags: list[str]) -> Environment:
    host = bench.stack.base_url
    if not host.startswith("http://127.0.0.1:"):
        raise RuntimeError(f"refusing to load anything but this machine: {host}")
    return Environment(user_classes=list(user_classes), tags=tags, host=host, catch_exceptions=True)


@dataclass(frozen=True)
class Window:
    """When a measurement ran (wall clock, as the databases' timestamps are)."""

    since: datetime
    until: datetime

    def holds(self, epoch: float) -> bool:
        return self.since.timestamp() <= epoch <= self.until.timestamp()


@dataclass
class Measured:
    endpoints: list[dict[str, Any]]
    total: dict[str, Any]
    errors: list[dict[str, Any]]
    cpu: dict[str, Any]
    busiest: tuple[str, int] | None  # the role and pid that burnt the most CPU
    window: Window
    seconds: float


def _measure(bench: Bench, runner: LocalRunner, seconds: float) -> Measured:
    """Reset the statistics and measure for ``seconds``, CPU sampled per process."""
    runner.stats.reset_all()
    stack = bench.stack
    roles = stack.processes()
    sampler = CpuSampler.for_stack(roles, stack.options.db_prefix, stack.companions)
    sampler.start()
    since = lags.now()
    started = time.monotonic()
    gevent.sleep(seconds)
    elapsed = time.monotonic() - started
    window = Window(since, lags.now())
    endpoints, total, errors = snapshot(runner, elapsed)
    # Only the stack's own (Python) roles: py-spy cannot read PostgreSQL or Redis.
    busiest = sampler.busiest(roles.keys())
    cpu = sampler.stop()
    stack.check_alive()
    target = None if busiest is None else busiest[:2]
    return Measured(endpoints, total, errors, cpu, target, window, round(elapsed, 2))


def _profile_if(bench: Bench, result: StageResult, measured: Measured, missed: bool) -> None:
    """Profile (users still running) when the stage missed its aim, or always if asked."""
    mode = bench.config.profile
    if mode == "always" or (mode == "missed" and missed):
        result.profile = profile(bench, result.name, measured.busiest)


def queues() -> list[str]:
    """Every queue a role of the stack consumes (commands and events; queries where separate)."""
    names = {queue for name in DATABASES for queue in catalog.queues_of(name)}
    return sorted(names)


def backlog(bench: Bench) -> int:
    """Messages waiting in the broker or taken but not acknowledged, plus unpublished outbox rows."""
    broker = redis.Redis.from_url(bench.stack.options.broker_url)
    waiting = sum(broker.llen(q + suffix) for q in queues() for suffix in ("", "\x06\x163", "\x06\x166", "\x06\x169"))
    waiting += int(broker.hlen("unacked"))
    settings = bench.stack.settings
    for name in DATABASES:
        with psycopg.connect(conninfo(settings.database_url(name))) as conn:
            row = conn.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetchone()
            waiting += int(row[0]) if row else 0
    return waiting


def drain(bench: Bench) -> float | None:
    """Seconds until everything the stage started has been handled (None: not within the timeout)."""
    started = time.monotonic()
    while backlog(bench):
        if time.monotonic() - started > bench.config.drain_timeout:
            return None
        gevent.sleep(0.2)
    return round(time.monotonic() - started, 2)


def _run_stage(
    bench: Bench,
    name: str,
    title: str,
    offered: str,
    user_classes: list[type[FastHttpUser]],
    tags: list[str],
    users: int,
    spawn_rate: float,
    ready: Callable[[], bool] | None = None,
) -> tuple[StageResult, Window]:
    """Start the users, warm up, measure, stop them, drain; the result and when it was measured.

    ``ready``: what the users must have done (their sign-ins) before the warm-up begins.
    """
    runner = _environment(bench, user_classes, tags).create_local_runner()
    notes: list[str] = []
    try:
        runner.start(users, spawn_rate=spawn_rate)
        gevent.sleep(users / spawn_rate)
        if ready is not None and not _until(ready, bench.config.sign_in_timeout):
            notes.append(f"the users were not all ready {bench.config.sign_in_timeout:g} s after they were spawned")
        gevent.sleep(bench.config.warmup_seconds)
        m = _measure(bench, runner, bench.config.stage_seconds)
        result = StageResult(name, title, offered, users, m.seconds, m.endpoints, m.total, m.errors, m.cpu)
        result.notes += notes
        _profile_if(bench, result, m, bench.missed(result))
    finally:
        runner.quit()
    _after(bench, result, m.window)
    return result, m.window


def _until(ready: Callable[[], bool], timeout: float) -> bool:
    """Wait (cooperatively) until ``ready()``; whether it came within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            return False
        gevent.sleep(0.2)
    return True


def _after(bench: Bench, result: StageResult, window: Window) -> None:
    """Wait for the system to drain, then read the projection lag of the stage's events."""
    result.drain_seconds = drain(bench)
    if result.drain_seconds is None:
        result.notes.append(f"the system had not drained {bench.config.drain_timeout:.0f} s after the stage")
    result.lags["projection"] = lags.projection(bench.stack.settings, window.since, window.until)


# -- the stages -------------------------------------------------------------------------


def reads(bench: Bench) -> StageResult:
    """Dashboard reads: the four user types at their weights, with a dashboard user's think time."""
    cfg = bench.config
    users = cfg.read_users
    result, _ = _run_stage(
        bench,
        "reads",
        f"Dashboard reads at {users} users",
        f"{users} users, think time {cfg.read_wait[0]:g}-{cfg.read_wait[1]:g} s",
        [paced(cls, between(*cfg.read_wait)) for cls in USER_TYPES],
        ["read"],
        users,
        spawn_rate=users / cfg.ramp_seconds,
    )
    return result


def create(bench: Bench) -> StageResult:
    """Requisition creation at rising arrival rates until a step no longer holds (the knee).

    The stage's own figures are its first step's (50/s, where the aim is set); every step is
    listed in ``steps``.
    """
    cfg = bench.config
    world = bench.world
    runner = _environment(bench, [paced(BranchUser, cfg.pacing(1))], ["create"]).create_local_runner()
    steps: list[StageResult] = []
    windows: list[Window] = []
    knee: int | None = None
    try:
        for rate in cfg.create_rates:
            runner.start(rate, spawn_rate=max(rate, 1))
            gevent.sleep(1 + cfg.warmup_seconds)
            m = _measure(bench, runner, cfg.stage_seconds)
            step = StageResult(f"create-{rate}", f"Create at {rate}/s", f"{rate}/s", rate, m.seconds, *_figures(m))
            held = holds(step, rate)
            step.notes.append("held" if held else "did not hold")
            _profile_if(bench, step, m, not held or bench.missed(step))
            steps.append(step)
            windows.append(m.window)
            if not held:
                break
            knee = rate
    finally:
        runner.quit()
    first = steps[0]
    result = StageResult(
        "create",
        "Requisition creation, stepping up to the knee",
        ", ".join(s.offered for s in steps),
        first.users,
        first.seconds,
        first.endpoints,
        first.total,
        first.errors,
        first.cpu,
        steps=steps,
    )
    _after(bench, result, Window(windows[0].since, windows[-1].until))
    for step, window in zip(steps, windows, strict=True):
        created = [(rid, at) for rid, at in world.created if window.holds(at)]
        step.lags["case_opened"] = lags.case_opened(bench.stack.settings, created)
    result.lags["case_opened"] = first.lags["case_opened"]
    result.lags["knee_per_second"] = knee
    return result


def _figures(m: Measured) -> tuple[Any, ...]:
    return m.endpoints, m.total, m.errors, m.cpu


def holds(step: StageResult, rate: int) -> bool:
    """Whether a creation step held: p95 ≤ 250 ms, failures ≤ 1 %, at least 90 % of the offered rate."""
    total = step.total
    if not total["requests"]:
        return False
    return (
        (total["p95_ms"] or 0) <= KNEE_P95_MS
        and total["failure_ratio"] <= KNEE_FAILURE_RATIO
        and total["rps"] >= KNEE_RATE_REACHED * rate
    )


def pay(bench: Bench) -> StageResult:
    """Payments with one-time passwords at a constant arrival rate, over seeded reserved requisitions."""
    cfg = bench.config
    world = bench.world
    waits = world.otp.waits
    result, window = _run_stage(
        bench,
        "pay",
        f"Payments at {cfg.pay_rate}/s",
        f"{cfg.pay_rate}/s",
        [paced(TreasuryUser, cfg.pacing(1))],
        ["pay"],
        cfg.pay_rate,
        spawn_rate=cfg.pay_rate,
    )
    paid = [p for p in world.paid if window.holds(p[1])]
    result.lags["posted"] = lags.posted(bench.stack.settings, paid)
    result.lags["otp_waits"] = world.otp.waits - waits
    if not world.payable:
        result.notes.append("the seeded reserved requisitions ran out during the stage")
    if result.lags["otp_waits"]:
        result.notes.append("every treasury user's codes were spent at times: payments waited for the next step")
    return result


def chains(bench: Bench) -> StageResult:
    """Whole chains at a constant arrival rate: create, approve, pay, posted."""
    cfg = bench.config
    # Two users per chain a second, each with a 2 s budget per chain: the rate holds while a
    # chain takes under 2 s.
    result, window = _run_stage(
        bench,
        "chain",
        f"Whole chains at {cfg.chain_rate}/s",
        f"{cfg.chain_rate} chains/s",
        [paced(GeneralUser, cfg.pacing(0.5))],
        ["chain"],
        cfg.chain_rate * 2,
        spawn_rate=cfg.chain_rate * 2,
    )
    records = [r for r in bench.world.chains if window.holds(r["t0"])]
    result.lags["chains"] = lags.chains(bench.stack.settings, records)
    return result


def reports(bench: Bench) -> StageResult:
    """The seven reports (JSON; a PDF and a CSV now and then) at ``report_rate`` a second, finance asking."""
    cfg = bench.config
    result, _ = _run_stage(
        bench,
        "reports",
        f"Reports at {cfg.report_rate}/s",
        f"{cfg.report_rate}/s over the last {REPORT_DAYS} days",
        [paced(ReportUser, cfg.pacing(1))],
        ["reports"],
        cfg.report_rate,
        spawn_rate=cfg.report_rate,
    )
    return result


def pages(bench: Bench) -> StageResult:
    """The web pages: branch staff and managers in a browser, at ``page_users`` users.

    Each user signs in once with a password (the sign-in form for the session cookie and CSRF
    token, the form posted, the home page it leads to), all before the warm-up; the measured
    window holds the pages they then open with a reader's think time.
    """
    cfg = bench.config
    world = bench.world
    users = cfg.page_users
    first = len(world.sign_ins)
    failed = world.sign_in_failures

    def signed_in() -> bool:
        return len(world.sign_ins) - first + world.sign_in_failures - failed >= users

    result, _ = _run_stage(
        bench,
        "pages",
        f"Web pages at {users} users",
        f"{users} users signed in with a session, think time {cfg.page_wait[0]:g}-{cfg.page_wait[1]:g} s",
        [paced(cls, between(*cfg.page_wait)) for cls in PAGE_TYPES],
        ["pages"],
        users,
        spawn_rate=users / cfg.ramp_seconds,
        ready=signed_in,
    )
    result.lags["sign_in"] = sign_in = _sign_ins(world.sign_ins[first:], world.sign_in_failures - failed)
    result.notes.append(
        f"{sign_in['signed_in']} sign-ins before the warm-up (form, post, home page; Argon2id at production cost), "
        f"p50 {sign_in['p50_ms']} ms, p95 {sign_in['p95_ms']} ms, max {sign_in['max_ms']} ms; "
        f"{sign_in['failed']} failed"
    )
    return result


def _sign_ins(seconds: list[float], failed: int) -> dict[str, Any]:
    """The sign-ins' durations (client side, form to home page), in ms."""
    ms = sorted(1000 * s for s in seconds)

    def pct(p: float) -> float | None:
        return round(ms[min(len(ms) - 1, int(p * len(ms)))], 1) if ms else None

    return {"signed_in": len(ms), "failed": failed, "p50_ms": pct(0.5), "p95_ms": pct(0.95), "max_ms": pct(1.0)}
