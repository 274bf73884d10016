"""Measure the first path: POST a requisition until its approval case exists.

Run against a running stack (``make run``, embedded or on PostgreSQL/Redis) with the same
environment, so it can read the approval service's database for the case's ``opened_at``:

    .venv/bin/python -m load_tests.first_path_latency --user alice --count 50

The lag is ``approval_cases.opened_at`` (written by the approval worker) minus the wall-clock
instant just before the POST left; both clocks are this machine's. Reports median and p95.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from datetime import UTC, datetime

import requests
from sqlalchemy import Uuid, column, select, table

from shared.config import load_settings
from shared.db.engine import Database
from shared.db.types import UTCDateTime

CASES = table("approval_cases", column("requisition_id", Uuid()), column("opened_at", UTCDateTime()))


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--user", default="alice")
    parser.add_argument("--branch", default="NBO-CBD")
    args = parser.parse_args()
    settings = load_settings()
    base = f"http://{settings.gateway_host}:{settings.gateway_port}"
    creds = dict(line.split() for line in (settings.var_dir / "demo-credentials.txt").read_text().splitlines())
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {creds[args.user]}"
    approval = Database(settings.database_url("approval"))

    posts, lags = [], []
    for _ in range(args.count):
        body = {
            "branch": args.branch,
            "amount": {"minor_units": 250_00, "currency": "KES"},
            "category": "postage",
            "purpose": f"latency probe {uuid.uuid4().hex[:8]}",
            "payee": {"name": "Posta", "method": "cash"},
        }
        sent_at = datetime.now(UTC)
        started = time.perf_counter()
        response = http.post(f"{base}/api/v1/requisitions", json=body, timeout=30)
        posts.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        requisition_id = response.json().get("id")
        deadline = time.monotonic() + 30
        opened = None
        while opened is None and time.monotonic() < deadline:
            with approval.engine.connect() as conn:
                query = select(CASES.c.opened_at).where(CASES.c.requisition_id == uuid.UUID(requisition_id))
                opened = conn.execute(query).scalar()
            if opened is None:
                time.sleep(0.005)
        if opened is None:
            raise SystemExit(f"no approval case for {requisition_id} after 30 s")
        lags.append((opened - sent_at).total_seconds() * 1000)

    mode = "embedded" if settings.embedded else "redis+postgresql"
    print(f"{mode}: {args.count} requisitions")
    print(
        f"  POST answered (201):        median {statistics.median(posts):6.1f} ms  p95 {percentile(posts, 95):6.1f} ms"
    )
    print(f"  POST -> approval case open: median {statistics.median(lags):6.1f} ms  p95 {percentile(lags, 95):6.1f} ms")


if __name__ == "__main__":
    main()
