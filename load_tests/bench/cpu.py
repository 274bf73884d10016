"""Per-process CPU over a stage: each role of the stack (its process tree summed, e.g. gunicorn's
workers), PostgreSQL, Redis and the load generator itself, sampled with psutil.

CPU percent is of one core (this machine has ``nproc`` of them, so the ceiling is
``100 x nproc``). A process born during the stage counts from zero; one that dies between two
samples (every second) loses what it spent since the last one: a small undercount.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

import gevent
import psutil

SAMPLE_SECONDS = 1.0
POSTGRES_BACKENDS = "postgresql (this run's backends)"
LOAD_GENERATOR = "load generator (locust, this process)"


@dataclass(frozen=True)
class Seen:
    """One process as a scan saw it: its parent, name, command line (PostgreSQL's process title)
    and CPU seconds so far."""

    pid: int
    ppid: int
    name: str
    title: str
    cpu: float


# Whether a process belongs to a group, given every process the same scan saw (for its parents).
Member = Callable[[Seen, Mapping[int, Seen]], bool]


def scan() -> dict[int, Seen]:
    """Every process on the machine, in one pass over ``/proc``."""
    seen: dict[int, Seen] = {}
    for process in psutil.process_iter(["ppid", "name", "cmdline", "cpu_times"]):
        info = process.info
        times = info["cpu_times"]
        if times is None:  # gone, or not ours to read
            continue
        title = " ".join(info["cmdline"] or ())
        seen[process.pid] = Seen(process.pid, info["ppid"] or 0, info["name"] or "", title, times.user + times.system)
    return seen


def _by_name(name: str, title: Callable[[str], bool] = lambda _title: True) -> Member:
    """Processes of this name whose command line passes ``title``."""
    return lambda seen, _others: seen.name == name and title(seen.title)


def _postgres_backend_of(prefix: str) -> Callable[[str], bool]:
    # A backend's title is "postgres: 15/main: USER DATABASE HOST(PORT) STATE".
    return lambda title: f" {prefix}" in title


def _postgres_server(title: str) -> bool:
    # The postmaster and its background workers (checkpointer, WAL writer...) serve every database.
    return "(" not in title


def _tree(leader: int) -> Member:
    """The leader and every process descended from it."""

    def member(seen: Seen, others: Mapping[int, Seen]) -> bool:
        pid, hops = seen.pid, 0
        while pid and hops < 64:
            if pid == leader:
                return True
            parent = others.get(pid)
            pid, hops = (parent.ppid if parent else 0), hops + 1
        return False

    return member


@dataclass
class CpuSampler:
    """CPU seconds per group of processes between :meth:`start` and :meth:`stop`.

    Each sample is one scan of the machine's processes, run in gevent's thread pool: the load
    generator's users, in this process's event loop, go on meanwhile (a scan of a few hundred
    processes takes tens of milliseconds, which would otherwise stall every request in flight).
    """

    groups: dict[str, Member]
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
        groups = {name: _tree(leader.pid) for name, leader in {**roles, **companions}.items()}
        groups[POSTGRES_BACKENDS] = _by_name("postgres", _postgres_backend_of(db_prefix))
        groups["postgresql server (WAL writer, checkpointer...)"] = _by_name("postgres", _postgres_server)
        if not any(name.startswith("redis-server") for name in companions):
            groups["redis-server (shared with others)"] = _by_name("redis-server")
        me = os.getpid()
        groups[LOAD_GENERATOR] = lambda seen, _others: seen.pid == me
        return cls(groups)

    def _group_of(self, seen: Seen, others: Mapping[int, Seen]) -> str | None:
        return next((group for group, member in self.groups.items() if member(seen, others)), None)

    def _sample(self, initial: bool) -> None:
        processes = scan()
        for pid, seen in processes.items():
            if pid not in self.first:
                group = self._group_of(seen, processes)
                if group is None:
                    continue
                # Seen at the start: count from now. Seen later: born during the stage.
                self.first[pid] = seen.cpu if initial else 0.0
                self.members[pid] = group
                self.names[pid] = " ".join(seen.title.split()[:6])[:120]
            self.last[pid] = seen.cpu

    def _sample_aside(self, initial: bool) -> None:
        gevent.get_hub().threadpool.apply(self._sample, (initial,))

    def start(self) -> None:
        self.first.clear()
        self.last.clear()
        self.members.clear()
        self.started = time.monotonic()
        self.machine_start = float(sum(psutil.cpu_times()[:3]))
        self._sample_aside(initial=True)
        self._loop = gevent.spawn(self._run)

    def _run(self) -> None:
        while True:
            gevent.sleep(SAMPLE_SECONDS)
            self._sample_aside(initial=False)

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
        if self._loop is not None:
            self._loop.kill()
        self._sample_aside(initial=False)
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
