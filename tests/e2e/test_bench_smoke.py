"""The benchmark works end to end: ``python -m load_tests.bench --smoke`` (make bench is not part of make test).

It starts its own production-like stack on databases of its own (named after this test
session's prefix) and a Redis server of its own, loads a tiny volume, runs every stage for a
second or so and writes its reports. This test reads them: every stage made requests
(the page users signed in with a password and opened pages), and nothing it started outlived it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
STAGES = {"reads", "pages", "create", "pay", "chain", "reports", "runs"}


def _started_by(work: Path) -> list[psutil.Process]:
    """Processes that point into the run's work dir (the stack and the baseline by their
    environment, its Redis server by its command line)."""
    found = []
    for process in psutil.process_iter():
        try:
            if str(work) in process.environ().get("PETTYCASH_VAR_DIR", "") + " ".join(process.cmdline()):
                found.append(process)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


@pytest.mark.timeout(240)
def test_smoke_run_measures_every_stage_and_stops_everything(tmp_path: Path) -> None:
    out, work = tmp_path / "out", tmp_path / "work"
    # Apart from other test sessions (each has its own prefix) and from a `make bench` in progress.
    prefix = os.environ.get("PETTYCASH_TEST_DB_PREFIX", "pettycash_test_") + "bench_"
    command = [sys.executable, "-m", "load_tests.bench", "--smoke", "--db-prefix", prefix]
    done = subprocess.run(
        [*command, "--out", str(out), "--work-dir", str(work)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"

    reports = list(out.glob("bench-*-smoke.json"))
    assert len(reports) == 1, list(out.iterdir())
    data = json.loads(reports[0].read_text())
    assert data["failed_stages"] == {}
    assert set(data["stages"]) == STAGES
    for name, stage in data["stages"].items():
        assert stage["total"]["requests"] > 0, f"stage {name} made no request"
        assert stage["cpu"]["groups"], f"stage {name} sampled no CPU"
    # How fast the system is does not decide this test (the benchmark's report does): only that
    # each stage's own measurements were taken.
    assert "submission_to_posting_ms" in data["stages"]["chain"]["lags"]["chains"]
    assert "posted" in data["stages"]["pay"]["lags"]
    assert "case_opened" in data["stages"]["create"]["lags"]
    assert data["stages"]["create"]["steps"], "the creation stage ran no step"
    report_stage = data["stages"]["reports"]
    assert report_stage["total"]["failures"] == 0, report_stage["errors"]
    assert any(e["name"].startswith("GET /api/v1/reports/") for e in report_stage["endpoints"])
    runs = data["stages"]["runs"]
    assert runs["total"]["failures"] == 0, runs["errors"]
    assert runs["lags"]["authorised_to_all_paid_ms"]["count"] == 1, runs["notes"]
    # The page users signed in with a password (form, CSRF token, session cookie) and opened pages.
    pages = data["stages"]["pages"]
    sign_in = pages["lags"]["sign_in"]
    assert sign_in["failed"] == 0, pages["errors"]
    assert sign_in["signed_in"] >= pages["users"], sign_in
    opened = {e["name"] for e in pages["endpoints"] if e["name"].startswith("PAGE /") and e["requests"]}
    assert {"PAGE /", "PAGE /requisitions", "PAGE /requisitions/{id}", "PAGE /approvals"} <= opened, opened
    assert pages["total"]["failures"] == 0, pages["errors"]
    assert data["seed"]["rows"]["transfers"] >= 3_000
    paths = {row["path"] for row in data["summary"]}
    assert {"Dashboard reads", "Create requisition", "Creation knee", "Projection lag", "Reports (each)"} <= paths
    assert {"Payment run authorised (100 payments)", "Payment run paid (100 payments)"} <= paths
    assert any(path.startswith("Pages") for path in paths)
    assert any(name.startswith("Celery no-op") for name in data["baseline"])
    assert any(name.startswith("Flask trivial") for name in data["baseline"])

    markdown = reports[0].with_suffix(".md")
    assert markdown.exists()
    text = markdown.read_text()
    assert "## Summary" in text
    assert "ANALYZE" in text

    assert _started_by(work) == [], "the bench left processes running"
