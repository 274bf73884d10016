"""Per-process CPU over a stage: each role of the stack (its process tree summed, e.g. gunicorn's
workers), PostgreSQL, Redis and the load generator itself, sampled with psutil.

CPU percent is of one core (this machine has ``nproc`` of them, so the ceiling is
``100 x nproc``). A process born during the stage counts from zero; one that dies between two
samples (every second) loses what it spent since the last one: a small undercount.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import gevent
import psutil

SAMPLE_SECONDS = 1.0
POSTGRES_BACKENDS = "postgresql (this run's backends)"
LOAD_GENERATOR = "load generator (locust, this process)"


def _cpu(process: psutil.Process) -> float | None:
    try:
        times = process.cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    return float(times.user + times.system)


def _by_name(name: str, title: Callable[[str], bool] = lambda _title: True) -> Callable[[], list[psutil.Process]]:
    """Processes of this name whose command line (PostgreSQL's process title) passes ``title``."""

    def find() -> list[psutil.Process]:
        found = []
        for process in psutil.process_iter(["name", "cmdline"]):
            if process.info["name"] == name and title(" ".join(process.info["cmdline"] or ())):
                found.append(process)
        return found

    return find


def _postgres_backend_of(prefix: str) -> Callable[[str], bool]:
    # A backend's title is "postgres: 15/main: USER DATABASE HOST(PORT) STATE".
    return lambda title: f" {prefix}" in title


def _postgres_server(title: str) -> bool:
    # The postmaster and its background workers (checkpointer, WAL writer...) serve every database.
    return "(" not in title


def _tree(leader: psutil.Process) -> Callable[[], list[psutil.Process]]:
    def find() -> list[psutil.Process]:
        with contextlib.suppress(psutil.NoSuchProcess):
            return [leader, *leader.children(recursive=True)]
        return []

    return find


@dataclass
class CpuSampler:
    """CPU seconds per group of processes between :meth:`start` and :meth:`stop`."""

    groups: dict[str, Callable[[], list[psutil.Process]]]
    started: float = 0.0
    first: dict[int, float] = field(default_factory=dict)
    last: dict[int, float] = field(default_factory=dict)
    members: dict[int, str] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    machine_start: float = 0.0
    _loop: gevent.Greenlet | None = None

    @classmethod
    def for_stack(
        cls, roles: dict[str, psutil.Process], db_prefix: str, companions: dict[str, psutil.Process]
    ) -> CpuSampler:
        """Every role's process tree, this run's PostgreSQL backends, the servers, and this process (locust).

        Other people's processes on the machine (another test run, say) are not in any group:
        the report shows them as the machine's total less the groups.
        """
        groups = {name: _tree(leader) for name, leader in {**roles, **companions}.items()}
        groups[POSTGRES_BACKENDS] = _by_name("postgres", _postgres_backend_of(db_prefix))
        groups["postgresql server (WAL writer, checkpointer...)"] = _by_name("postgres", _postgres_server)
        if not any(name.startswith("redis-server") for name in companions):
            groups["redis-server (shared with others)"] = _by_name("redis-server")
        me = psutil.Process(os.getpid())
        groups[LOAD_GENERATOR] = lambda: [me]
        return cls(groups)

    def _sample(self, initial: bool) -> None:
        for group, find in self.groups.items():
            for process in find():
                value = _cpu(process)
                if value is None:
                    continue
                pid = process.pid
                if pid not in self.first:
                    # Seen at the start: count from now. Seen later: born during the stage.
                    self.first[pid] = value if initial else 0.0
                    self.members[pid] = group
                    with contextlib.suppress(psutil.Error):
                        self.names[pid] = " ".join(process.cmdline()[:6])[:120]
                self.last[pid] = value

    def start(self) -> None:
        self.first.clear()
        self.last.clear()
        self.members.clear()
        self.started = time.monotonic()
        self.machine_start = float(sum(psutil.cpu_times()[:3]))
        self._sample(initial=True)
        self._loop = gevent.spawn(self._run)

    def _run(self) -> None:
        while True:
            gevent.sleep(SAMPLE_SECONDS)
            self._sample(initial=False)

    def spent(self) -> dict[int, float]:
        """CPU seconds per process so far in this stage."""
        return {pid: self.last[pid] - self.first[pid] for pid in self.last}

    def busiest(self, among: Collection[str]) -> tuple[str, int, float] | None:
        """The group, pid and CPU seconds of the busiest single process so far, of the groups ``among``."""
        ranked = sorted(
            ((seconds, pid) for pid, seconds in self.spent().items() if self.members[pid] in among),
            reverse=True,
        )
        if not ranked:
            return None
        seconds, pid = ranked[0]
        return self.members[pid], pid, seconds

    def stop(self) -> dict[str, object]:
        """Per group: CPU seconds, percent of one core, the processes counted; the machine's total."""
        self._sample(initial=False)
        if self._loop is not None:
            self._loop.kill()
        wall = max(1e-6, time.monotonic() - self.started)
        machine = float(sum(psutil.cpu_times()[:3])) - self.machine_start
        per_group: dict[str, dict[str, float]] = {}
        for pid, seconds in self.spent().items():
            entry = per_group.setdefault(self.members[pid], {"cpu_seconds": 0.0, "processes": 0})
            entry["cpu_seconds"] += seconds
            entry["processes"] += 1
        counted = sum(entry["cpu_seconds"] for entry in per_group.values())
        for entry in per_group.values():
            entry["percent_of_one_core"] = round(100 * entry["cpu_seconds"] / wall, 1)
            entry["cpu_seconds"] = round(entry["cpu_seconds"], 2)
        return {
            "wall_seconds": round(wall, 2),
            "cores": psutil.cpu_count() or 1,
            "machine_percent_of_one_core": round(100 * machine / wall, 1),
            "others_percent_of_one_core": round(100 * max(0.0, machine - counted) / wall, 1),
            "groups": dict(sorted(per_group.items(), key=lambda kv: -kv[1]["cpu_seconds"])),
        }
