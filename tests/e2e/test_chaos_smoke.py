"""The fault-run harness, short: half a minute of faults must keep every invariant.

``pettycash chaos`` starts its own PostgreSQL cluster and Redis server (it never touches the
ones the other tests use), so this test needs none of the session fixtures. It runs the
command as an operator would and reads its JSON summary; an invariant violated in the
seed fails it (the command exits 1 and prints the violation with its evidence).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# One seed: the long runs (README, "Fault runs") cover many; this one proves the harness and the
# invariants work end to end on every change, and seed 1 injects every kind of fault.
SEEDS = (1,)


@pytest.mark.timeout(900)
def test_a_short_fault_run_keeps_every_invariant(tmp_path: Path) -> None:
    out = tmp_path / "chaos"
    argv = [sys.executable, "-m", "pettycash", "chaos", "--minutes", "0.3", "--quiesce-seconds", "120"]
    for seed in SEEDS:
        argv += ["--seed", str(seed)]
    run = subprocess.run([*argv, "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=840, check=False)
    said = (run.stdout + run.stderr)[-8000:]
    assert run.returncode == 0, f"pettycash chaos exited {run.returncode}:\n{said}"

    summary = json.loads((out / "summary.json").read_text())
    assert summary["violated_seeds"] == [], said
    assert summary["failed_to_run"] == [], said
    assert [r["seed"] for r in summary["results"]] == list(SEEDS)
    for result in summary["results"]:
        assert result["violations"] == [], json.dumps(result["violations"], indent=2)[:4000]
        kinds = {kind for kind in result["faults_by_type"] if ":" not in kind}
        assert {"sigkill", "redis-restart", "postgres-restart"} <= kinds, result["faults_by_type"]
        assert all(f["ok"] for f in result["faults_injected"]), result["faults_injected"]
        # Every role was killed and came back under the supervisor.
        killed = {f["target"] for f in result["faults_injected"] if f["kind"] == "sigkill"}
        assert killed <= set(result["restarts_observed"]), (killed, result["restarts_observed"])
        assert result["chains"]["completed"] > 0, result["chains"]
        assert result["quiescence"]["reached"], result["quiescence"]
