"""The benchmark's CPU sampler (``load_tests.bench.cpu``): a role's group is its whole process
tree, a process born during the stage counts from zero, and the load generator's event loop
goes on while a sample is taken."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import gevent

from load_tests.bench.cpu import CpuSampler, Seen, _tree

BURN = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass\ntime.sleep(30)"


def _seen(pid: int, ppid: int) -> Seen:
    return Seen(pid, ppid, "python", "", 0.0)


def test_a_tree_holds_its_leader_and_every_descendant_and_nothing_else() -> None:
    others = {p.pid: p for p in (_seen(10, 1), _seen(11, 10), _seen(12, 11), _seen(13, 1), _seen(14, 13))}
    member = _tree(10)
    assert [pid for pid, seen in others.items() if member(seen, others)] == [10, 11, 12]


def test_a_child_born_during_the_stage_is_counted_in_its_parents_tree() -> None:
    sampler = CpuSampler({"this test's tree": _tree(os.getpid())})
    sampler.start()
    child = subprocess.Popen([sys.executable, "-c", BURN])
    try:
        gevent.sleep(1.5)  # the child burns 0.4 s of CPU, then waits, alive, for the last sample
        cpu = sampler.stop()
    finally:
        child.kill()
        child.wait()
    group = cpu["groups"]["this test's tree"]
    assert child.pid in sampler.members
    assert group["processes"] >= 2
    assert group["cpu_seconds"] >= 0.35


def test_the_event_loop_runs_while_a_sample_is_taken() -> None:
    ticks: list[int] = []

    def tick() -> None:
        while True:
            ticks.append(1)
            gevent.sleep(0.001)

    ticker = gevent.spawn(tick)
    gevent.sleep(0.01)
    sampler = CpuSampler({"this test's tree": _tree(os.getpid())})

    def slow_scan(initial: bool) -> None:  # a sample as long as a busy machine's
        time.sleep(0.2)

    sampler._sample = slow_scan  # type: ignore[method-assign]
    before = len(ticks)
    sampler._sample_aside(initial=True)
    ticker.kill()
    assert len(ticks) - before >= 20  # blocked, it would not have ticked at all
