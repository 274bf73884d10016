"""The stack under fault: every role of ``pettycash.supervisor.roles``, supervised as ``pettycash run`` does.

The roles run under a small controller process (``python -m pettycash.chaos.stack``) that
uses the supervisor's own ``start``, ``supervise`` and ``stop_all``, so a role the harness
SIGKILLs comes back exactly as it would under ``pettycash run`` (after the same backoff).
Why a process of its own rather than threads of the harness:

- the environment: ``supervisor.start`` hands its own environment to the roles, so the
  controller is started with the run's environment and the harness's stays untouched;
- the logs: ``supervisor.start`` does not redirect output, so the controller points its own
  stdout and stderr at the role's log file around each start (``os.dup2``), one role at a
  time, which is only safe in a single-threaded process (the harness runs client threads).

The harness talks to it over its stdin, one command a line (``kill <role>``, ``stop``), and
the controller notes what it did in ``events.jsonl`` (starts, kills, deaths and restarts).
If the harness dies, the controller reads end-of-file and stops every role.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Self

ROOT = Path(__file__).resolve().parents[2]
PR_SET_PDEATHSIG = 1
WORKER_READY = "ready."
# How often the controller looks for dead roles (pettycash run looks every 0.5 s).
SUPERVISE_TICK_SECONDS = 0.2


@dataclass(frozen=True)
class StackConfig:
    """What differs between runs: where things are, and the seed's fault switches."""

    database_template: str
    broker_url: str
    var_dir: Path
    gateway_port: int
    duplicate_delivery: bool = False
    provider_latency_ms: int = 0
    provider_faults: str = ""
    visibility_timeout: int = 10
    redelivery_seconds: float = 3.0
    worker_concurrency: int = 2

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of every role: the run's stores, short timeouts, the fault switches."""
        source = os.environ if base is None else base
        env = {k: v for k, v in source.items() if not k.startswith("PETTYCASH_")}
        env.update(
            PETTYCASH_ENV="test",
            PETTYCASH_VAR_DIR=str(self.var_dir),
            PETTYCASH_DATABASE_URL=self.database_template,
            PETTYCASH_BROKER_URL=self.broker_url,
            PETTYCASH_GATEWAY_HOST="127.0.0.1",
            PETTYCASH_GATEWAY_PORT=str(self.gateway_port),
            # A dead worker's message comes back after this, and every retry stays below it.
            PETTYCASH_VISIBILITY_TIMEOUT=str(self.visibility_timeout),
            PETTYCASH_REDELIVERY_SECONDS=str(self.redelivery_seconds),
            PETTYCASH_RETRY_BACKOFF_SECONDS="0.2",
            PETTYCASH_PAYMENT_RETRY_BASE_SECONDS="0.2",
            PETTYCASH_WORKER_CONCURRENCY=str(self.worker_concurrency),
            PETTYCASH_PROVIDER_LATENCY_MS=str(self.provider_latency_ms),
            PETTYCASH_PROVIDER_FAULTS=self.provider_faults,
            PYTHONUNBUFFERED="1",
        )
        if self.duplicate_delivery:
            env["PETTYCASH_FAULT_DUPLICATE_DELIVERY"] = "1"
        return env

    @property
    def base_url(self) -> str:
        """Where the gateway answers."""
        return f"http://127.0.0.1:{self.gateway_port}"


def _die_with_parent() -> None:
    # The controller stops with the harness even if the harness is SIGKILLed.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def http_ok(url: str) -> bool:
    """Whether a loopback URL answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own loopback URL
            return bool(response.status == 200)
    except OSError:
        return False


@dataclass
class Stack:
    """The harness's handle on the controller: start the roles, kill one, stop them all."""

    config: StackConfig
    log_dir: Path
    process: subprocess.Popen[bytes] | None = None
    role_names: list[str] = field(default_factory=list)

    @property
    def events_path(self) -> Path:
        """Where the controller notes what it did, a JSON object a line."""
        return self.log_dir / "events.jsonl"

    def start(self, timeout: float = 90.0) -> Self:
        """Start the controller and wait until the gateway answers and every worker is ready."""
        from pettycash.supervisor import roles
        from shared.config import load_settings

        env = self.config.environment()
        self.role_names = [name for name, _ in roles(load_settings(env))]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / "controller.log").open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [sys.executable, "-m", "pettycash.chaos.stack", str(self.log_dir)],
                env=env,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, safe before exec
            )
        deadline = time.monotonic() + timeout
        workers = [n for n in self.role_names if n.startswith("worker-") or n == "projector"]
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the stack controller exited: see {self.log_dir / 'controller.log'}")
            waiting = [n for n in workers if WORKER_READY not in self.log(n)]
            if not waiting and http_ok(f"{self.config.base_url}/healthz"):
                return self
            if time.monotonic() > deadline:
                raise RuntimeError(f"the stack did not come up in {timeout:.0f}s (waiting for {waiting or 'gateway'})")
            time.sleep(0.2)

    def log(self, role: str) -> str:
        """A role's log so far (every incarnation of it, appended)."""
        path = self.log_dir / f"{role}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _send(self, line: str) -> None:
        if self.process is None or self.process.stdin is None:
            raise RuntimeError("the stack is not running")
        self.process.stdin.write((line + "\n").encode())
        self.process.stdin.flush()

    def kill(self, role: str) -> None:
        """SIGKILL a role's whole process group; the controller's supervisor restarts it."""
        if role not in self.role_names:
            raise ValueError(f"no role {role!r}; one of {', '.join(self.role_names)}")
        self._send(f"kill {role}")

    def events(self) -> list[dict[str, object]]:
        """What the controller did so far (starts, kills, deaths, restarts)."""
        if not self.events_path.exists():
            return []
        return [json.loads(line) for line in self.events_path.read_text().splitlines() if line.strip()]

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the controller to stop every role (SIGTERM, then SIGKILL after the grace period)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(BrokenPipeError, OSError):
                self._send("stop")
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()


# -- the controller process -------------------------------------------------------------


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Point this process's fds 1 and 2 at ``path`` (children started meanwhile inherit them)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for descriptor in (fd, *saved):
            os.close(descriptor)


def _note(events: IO[str], event: str, role: str, pid: int | None, **extra: object) -> None:
    events.write(json.dumps({"at": time.time(), "event": event, "role": role, "pid": pid, **extra}) + "\n")
    events.flush()


def _read_commands(fd: int, pending: bytearray, timeout: float) -> list[str] | None:
    """Whole lines that arrived on ``fd`` within ``timeout`` (None at end of file).

    Raw ``os.read`` rather than ``sys.stdin``: a buffered reader may hold a second line that
    ``select`` then never reports.
    """
    readable, _, _ = select.select([fd], [], [], timeout)
    if not readable:
        return []
    chunk = os.read(fd, 4096)
    if not chunk:
        return None
    pending.extend(chunk)
    *lines, rest = pending.split(b"\n")
    pending[:] = rest
    return [line.decode().strip() for line in lines]


def run_controller(log_dir: Path, commands_fd: int = 0) -> int:
    """Start every role, restart the dead, obey ``kill``/``stop`` lines on stdin; stop all at the end."""
    from pettycash.supervisor import Child, roles, start, stop_all, supervise
    from shared.config import load_settings

    settings = load_settings()
    children: list[Child] = []
    stopping = False

    def _on_signal(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    with (log_dir / "events.jsonl").open("a") as events:
        try:
            for name, args in roles(settings):
                with _output_to(log_dir / f"{name}.log"):
                    child = start(name, args)
                children.append(child)
                _note(events, "started", name, child.process.pid)
            pending = bytearray()
            while not stopping:
                lines = _read_commands(commands_fd, pending, SUPERVISE_TICK_SECONDS)
                if lines is None or "stop" in lines:
                    break  # end of file: the harness is gone
                for line in lines:
                    verb, _, role = line.partition(" ")
                    if verb != "kill":
                        continue
                    for child in children:
                        if child.name != role:
                            continue
                        if child.process.poll() is not None:
                            # Still down from an earlier kill (waiting out its restart backoff).
                            _note(events, "kill-missed", role, None)
                            continue
                        with contextlib.suppress(ProcessLookupError):
                            os.killpg(child.process.pid, signal.SIGKILL)
                        _note(events, "killed", role, child.process.pid)
                for child in children:
                    before, was_dead = child.process.pid, child.restart_at is not None
                    # One child at a time, so a restarted role's output goes to its own log.
                    with _output_to(log_dir / f"{child.name}.log"):
                        supervise([child], time.monotonic())
                    if child.restart_at is not None and not was_dead:
                        _note(events, "died", child.name, before, returncode=child.process.returncode)
                    elif child.process.pid != before:
                        _note(events, "restarted", child.name, child.process.pid)
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            stop_all(children)
            _note(events, "stopped", "*", None)
    return 0


if __name__ == "__main__":
    sys.exit(run_controller(Path(sys.argv[1])))
