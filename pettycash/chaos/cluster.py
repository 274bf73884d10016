"""The fault run's own backing services: a PostgreSQL cluster and a Redis server of its own.

A fault run restarts PostgreSQL and Redis on purpose, so it must own them: it initialises a
throwaway cluster in a temporary directory and starts a ``redis-server`` without persistence,
each on a free loopback port. The machine's own PostgreSQL (5432) and Redis (6379), which
other engineers' test sessions use, are never touched.

PostgreSQL refuses to run as root; when the harness runs as root (containers, CI), the
cluster's processes run as the ``postgres`` system user (or ``nobody``), which owns its files.

Both servers are children of the harness (``postgres`` in the foreground, not daemonised by
``pg_ctl``) that the kernel signals should the harness die without cleaning up, so an
interrupted run leaves no server behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from sqlalchemy import create_engine, text

LOOPBACK = "127.0.0.1"
PR_SET_PDEATHSIG = 1
PG_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin")


class ClusterError(RuntimeError):
    """A backing service would not start (or stop) as asked."""


def free_port() -> int:
    """A TCP port nobody listens on right now, on the loopback interface."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _pg_bin() -> Path:
    """Where ``initdb`` and ``pg_ctl`` live: ``PETTYCASH_PG_BIN``, a Debian path, or PATH."""
    override = os.environ.get("PETTYCASH_PG_BIN")
    candidates = [override] if override else list(PG_BIN_CANDIDATES)
    for candidate in candidates:
        if candidate and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    raise ClusterError("no PostgreSQL binaries (pg_ctl, initdb) found; set PETTYCASH_PG_BIN")


def _die_with_parent(sig: signal.Signals) -> None:
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, sig)


def _run_as() -> pwd.struct_passwd | None:
    """The unprivileged user the cluster runs as when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise ClusterError("running as root and no 'postgres' or 'nobody' user to run PostgreSQL as")


class PostgresCluster:
    """A throwaway PostgreSQL cluster: trust authentication, no fsync, its own port and socket dir."""

    def __init__(self, base_dir: Path, port: int | None = None) -> None:
        self.base_dir = base_dir
        self.data_dir = base_dir / "pgdata"
        self.socket_dir = base_dir / "pgsocket"
        self.log_path = base_dir / "postgres.log"
        self.port = port or free_port()
        self.bin = _pg_bin()
        self.user = _run_as()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def server_url(self) -> str:
        """The SQLAlchemy URL of the cluster's ``postgres`` database."""
        return f"postgresql+psycopg://postgres@{LOOPBACK}:{self.port}/postgres"

    def database_template(self, prefix: str = "pettycash_") -> str:
        """A ``PETTYCASH_DATABASE_URL`` template (``{service}``) on this cluster."""
        return f"postgresql+psycopg://postgres@{LOOPBACK}:{self.port}/{prefix}{{service}}"

    def _run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, object] = {}
        if self.user is not None:
            kwargs = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        return subprocess.run(  # noqa: S603 - fixed argv of PostgreSQL's own tools, no shell
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.base_dir,
            **kwargs,  # type: ignore[call-overload]
        )

    def _checked(self, *argv: str, timeout: float = 120) -> None:
        result = self._run(*argv, timeout=timeout)
        if result.returncode != 0:
            raise ClusterError(f"{' '.join(argv[:2])} failed ({result.returncode}):\n{result.stdout}{result.stderr}")

    def init(self) -> PostgresCluster:
        """Create the cluster's files (``initdb``) with the settings a fault run wants."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        self.log_path.touch()
        if self.user is not None:
            for path in (self.base_dir, self.socket_dir, self.log_path):
                os.chown(path, self.user.pw_uid, self.user.pw_gid)
        self._checked(
            str(self.bin / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        # The machine never crashes here, the server does: fsync and full-page writes guard only
        # against the first (what PostgreSQL wrote is in the OS cache), so they are off for speed.
        # synchronous_commit stays on: off, a server crash loses transactions it had confirmed,
        # which no service can be expected to survive (its outbox may have told others already).
        settings = {
            "port": str(self.port),
            "listen_addresses": f"'{LOOPBACK}'",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "max_connections": "200",
            "fsync": "off",
            "full_page_writes": "off",
            "shared_buffers": "64MB",
            "log_min_messages": "warning",
            "log_connections": "off",
        }
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# pettycash chaos\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        return self

    def start(self) -> None:
        """Start the server (a child of this process) and wait until it accepts connections."""
        kwargs: dict[str, object] = {}
        if self.user is not None:
            kwargs = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        with self.log_path.open("ab") as log:
            # SIGQUIT is PostgreSQL's immediate shutdown: if the harness dies, so does the server.
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [str(self.bin / "postgres"), "-D", str(self.data_dir)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.base_dir,
                start_new_session=True,
                preexec_fn=lambda: _die_with_parent(signal.SIGQUIT),  # noqa: PLW1509 - only prctl
                **kwargs,  # type: ignore[call-overload]
            )
        self.wait_ready()

    def stop(self, immediate: bool = False, timeout: float = 60.0) -> None:
        """Stop the server: a fast shutdown, or an immediate one (no checkpoint, as a crash leaves it).

        The signals are those ``pg_ctl stop -m fast|immediate`` sends to the postmaster.
        """
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGQUIT if immediate else signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self, down_seconds: float = 0.0) -> None:
        """An abrupt restart: every connection is cut, in-flight transactions are lost, recovery runs."""
        self.stop(immediate=True)
        if down_seconds:
            time.sleep(down_seconds)
        self.start()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Poll until a connection succeeds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                engine = create_engine(self.server_url)
                try:
                    with engine.connect() as conn:
                        conn.execute(text("SELECT 1"))
                        return
                finally:
                    engine.dispose()
            except Exception as exc:
                if self.process is not None and self.process.poll() is not None:
                    tail = self.log_path.read_text(errors="replace")[-2000:]
                    raise ClusterError(f"postgres exited ({self.process.returncode}):\n{tail}") from exc
                if time.monotonic() > deadline:
                    raise ClusterError(f"PostgreSQL did not come up: {exc}") from exc
                time.sleep(0.2)

    def destroy(self) -> None:
        """Stop the server and delete its files."""
        self.stop(immediate=True)
        shutil.rmtree(self.base_dir, ignore_errors=True)


class RedisServer:
    """A ``redis-server`` of the run's own, without persistence: a restart loses everything in it."""

    def __init__(self, base_dir: Path, port: int | None = None) -> None:
        self.base_dir = base_dir
        self.port = port or free_port()
        self.log_path = base_dir / "redis-server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The broker URL (database 0 of this server)."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self, timeout: float = 20.0) -> None:
        """Start it on its port and wait until it answers PING."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        argv = ["redis-server", "--bind", LOOPBACK, "--port", str(self.port), "--dir", str(self.base_dir)]
        argv += ["--save", "", "--appendonly", "no", "--protected-mode", "no"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=lambda: _die_with_parent(signal.SIGKILL),  # noqa: PLW1509 - only prctl
            )
        deadline = time.monotonic() + timeout
        while not self.pings():
            if self.process.poll() is not None:
                raise ClusterError(f"redis-server exited: {self.log_path.read_text(errors='replace')[-2000:]}")
            if time.monotonic() > deadline:
                self.kill()
                raise ClusterError("redis-server did not answer PING")
            time.sleep(0.05)

    def pings(self) -> bool:
        """Whether the server answers right now."""
        import redis

        try:
            return bool(redis.Redis(host=LOOPBACK, port=self.port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        """SIGKILL it: every queued, unacknowledged and stored message is gone."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def restart(self, down_seconds: float = 0.5) -> None:
        """Kill it and start an empty one on the same port."""
        self.kill()
        time.sleep(down_seconds)
        self.start()
