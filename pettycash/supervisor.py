"""``pettycash run``: one process that starts every role, restarts one that dies, and stops them all together.

Each child runs in its own process group, so a stop reaches the children it spawned too
(gunicorn's workers, Celery's pool). Children also ask the kernel for SIGTERM should this
supervisor die without cleaning up (PR_SET_PDEATHSIG), so no orphan outlives a run.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass

from pettycash.components import migrate_all
from pettycash.demo import seed_and_print
from shared.config import SERVICES, Settings

STOP_GRACE_SECONDS = 10.0
PR_SET_PDEATHSIG = 1
# A child that dies is started again after a backoff that doubles with each death in a row
# (0.5 s, 1 s, 2 s ... at most 30 s); one that stayed up this long starts the count afresh.
RESTART_BASE_SECONDS = 0.5
RESTART_CAP_SECONDS = 30.0
STABLE_SECONDS = 60.0


def _die_with_parent() -> None:
    # Not Linux (no libc.so.6): the supervisor's own stop path still applies.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    args: tuple[str, ...] = ()
    started_at: float = 0.0
    deaths_in_a_row: int = 0
    restart_at: float | None = None

    def restart_delay(self) -> float:
        """Seconds to wait before starting this child again after it died."""
        return min(RESTART_CAP_SECONDS, RESTART_BASE_SECONDS * 2 ** max(0, self.deaths_in_a_row - 1))


def roles(settings: Settings) -> list[tuple[str, list[str]]]:
    """Every process of the stack: (name, pettycash arguments)."""
    procs: list[tuple[str, list[str]]] = [("gateway", ["gateway"])]
    procs += [(f"worker-{s}", ["worker", s]) for s in SERVICES]
    procs += [("projector", ["worker", "gateway"])]
    procs += [("relay", ["relay"]), ("beat", ["beat"])]
    return procs


def start(name: str, args: list[str]) -> Child:
    """Start one role as ``python -m pettycash <args>`` in its own process group."""
    process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        [sys.executable, "-m", "pettycash", *args],
        start_new_session=True,
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, safe before exec
    )
    return Child(name, process, tuple(args), time.monotonic())


def supervise(children: list[Child], now: float) -> None:
    """Notice children that died and start them again once their backoff has passed."""
    for child in children:
        if child.restart_at is None and child.process.poll() is not None:
            # Kill what the dead leader left behind (gunicorn's workers, Celery's pool).
            _signal_group(child.process.pid, signal.SIGKILL)
            stable = now - child.started_at >= STABLE_SECONDS
            child.deaths_in_a_row = 1 if stable else child.deaths_in_a_row + 1
            delay = child.restart_delay()
            child.restart_at = now + delay
            print(
                f"{child.name} exited with {child.process.returncode}; restarting in {delay:.1f}s "
                f"({child.deaths_in_a_row} death(s) in a row)",
                file=sys.stderr,
                flush=True,
            )
        elif child.restart_at is not None and now >= child.restart_at:
            fresh = start(child.name, list(child.args))
            child.process, child.started_at, child.restart_at = fresh.process, fresh.started_at, None
            print(f"{child.name} restarted (pid {child.process.pid})", file=sys.stderr, flush=True)


def stop_all(children: list[Child]) -> None:
    """SIGTERM every process group, then SIGKILL whatever is left after the grace period."""
    for child in children:
        if child.process.poll() is None:
            _signal_group(child.process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
    for child in children:
        # Kill the group even if its leader exited: its own children may linger.
        _signal_group(child.process.pid, signal.SIGKILL)
        if child.process.poll() is None:
            child.process.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def is_up(url: str) -> bool:
    """Whether a URL answers 200 right now."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own URL
            return bool(response.status == 200)
    except OSError:
        return False


class _Stop(Exception):
    pass


def run_stack(settings: Settings) -> int:
    """Migrate, seed, start every role, and supervise (restarting the dead) until a signal."""
    migrate_all(settings)
    seed_and_print(settings)

    def _on_signal(signum: int, _frame: object) -> None:
        raise _Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    children: list[Child] = []
    try:
        for name, args in roles(settings):
            children.append(start(name, args))
        base = f"http://{settings.gateway_host}:{settings.gateway_port}"
        announced = False
        while True:
            supervise(children, time.monotonic())
            if not announced and is_up(f"{base}/healthz"):
                announced = True
                mode = "embedded: SQLite + filesystem broker" if settings.embedded else "external broker and databases"
                print(f"\npettycash is up at {base} ({mode}); API: {base}/api/v1/openapi.json", flush=True)
                print("Press Ctrl-C to stop.", flush=True)
            time.sleep(0.5)
    except _Stop as stop:
        print(f"\n{stop}: stopping", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_all(children)
