"""The report: JSON (everything measured) and Markdown (the earlier system's targets, our aims, the figures).

The aims are DESIGN.md section 9's and the benchmark issue's, for this 2-core machine with
the load generator on it; the earlier targets are those of the earlier system's final report.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from load_tests.bench import users as u
from load_tests.bench.stages import StageResult

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Aim:
    """One line of the summary: what was promised before, what we aim at, how to read our figure."""

    path: str
    earlier: str
    aim: str
    measure: Callable[[dict[str, StageResult]], tuple[float | None, str]]
    limit: float
    at_least: bool = False  # the figure must reach the limit (a rate), not stay below it (a latency)

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return value >= self.limit if self.at_least else value < self.limit


def _p95(stage: StageResult | None, endpoint: str | None = None) -> float | None:
    if stage is None:
        return None
    entry = stage.endpoint(endpoint) if endpoint else stage.total
    return None if entry is None else entry.get("p95_ms")


def _dashboard(stages: dict[str, StageResult]) -> tuple[float | None, str]:
    stage = stages.get("reads")
    if stage is None:
        return None, "not run"
    total = stage.total
    return (
        _p95(stage) if total["failures"] == 0 else float("inf"),
        f"p95 {total['p95_ms']} ms, {total['failures']} failures of {total['requests']} at {stage.users} users "
        f"({total['rps']} req/s)",
    )


PAGES_P95_MS = 150


def _slowest_page(stage: StageResult) -> dict[str, Any] | None:
    """The page with the highest p95 in a stage (the sign-in's requests aside)."""
    pages = [e for e in (stage.endpoint(name) for name in u.PAGES) if e and e["requests"]]
    return max(pages, key=lambda e: e["p95_ms"] or 0, default=None)


def _pages(stages: dict[str, StageResult]) -> tuple[float | None, str]:
    stage = stages.get("pages")
    slowest = _slowest_page(stage) if stage else None
    if stage is None or slowest is None:
        return None, "not run"
    total = stage.total
    return (
        slowest["p95_ms"] if total["failures"] == 0 else float("inf"),
        f"slowest p95 {slowest['p95_ms']} ms ({slowest['name'].removeprefix('PAGE ')}), all pages p95 "
        f"{total['p95_ms']} ms, {total['failures']} failures of {total['requests']} at {stage.users} users "
        f"({total['rps']} req/s)",
    )


def _create(stages: dict[str, StageResult]) -> tuple[float | None, str]:
    stage = stages.get("create")
    if stage is None or not stage.steps:
        return None, "not run"
    step = stage.steps[0]
    entry = step.endpoint(u.CREATE) or step.total
    return entry[
        "p95_ms"
    ], f"p95 {entry['p95_ms']} ms at {step.offered} ({entry['rps']} req/s, {entry['failures']} failed)"


def _knee(stages: dict[str, StageResult]) -> tuple[float | None, str]:
    stage = stages.get("create")
    if stage is None:
        return None, "not run"
    knee = stage.lags.get("knee_per_second")
    last = stage.steps[-1] if stage.steps else None
    tail = f"; {last.offered} did not hold (p95 {last.total['p95_ms']} ms)" if last and knee != _rate(last) else ""
    return float(knee or 0), f"{knee or 0}/s held{tail}"


def _rate(step: StageResult) -> int:
    return int(step.offered.rstrip("/s"))


def _case_opened(stages: dict[str, StageResult]) -> tuple[float | None, str]:
    stage = stages.get("create")
    lag = (stage.lags.get("case_opened") or {}).get("case_opened_after_201_ms", {}) if stage else {}
    if not lag.get("count"):
        return None, "no data"
    return lag["p95"], f"p95 {lag['p95']} ms (p50 {lag['p50']} ms) at {stage.steps[0].offered if stage else ''}"


def _payment(stages: dict[str, StageResult]) -> tuple[float | None, str]:
    stage = stages.get("pay")
    entry = stage.endpoint(u.PAY) if stage else None
    if entry is None:
        return None, "not run"
    posted = (stage.lags.get("posted") or {}).get("payment_201_to_posted_ms", {}) if stage else {}
    return entry["p95_ms"], (
        f"p95 {entry['p95_ms']} ms at {entry['rps']} req/s, {entry['failures']} failed; "
        + (f"201 → posted p95 {posted['p95']} ms" if posted.get("count") else "no 201 to time the posting from")
    )


def _chain(stages: dict[str, StageResult]) -> tuple[float | None, str]:
    stage = stages.get("chain")
    data = (stage.lags.get("chains") or {}) if stage else {}
    lag = data.get("submission_to_posting_ms", {})
    if not lag.get("count"):
        return None, "no completed chain"
    per_second = round(data["completed"] / stage.seconds, 1) if stage and stage.seconds else 0
    failed = data["chains"] - data["completed"]
    return lag["p95"], f"p95 {lag['p95']} ms (p50 {lag['p50']} ms), {per_second} chains/s completed, {failed} failed"


def _projection(stages: dict[str, StageResult]) -> tuple[float | None, str]:
    worst: tuple[float, str] | None = None
    for name, stage in stages.items():
        lag = stage.lags.get("projection") or {}
        if lag.get("available"):
            p95 = lag["lag_ms"]["p95"]
            if worst is None or p95 > worst[0]:
                worst = (p95, name)
    if worst is None:
        return None, "not available (no gateway projector in this tree)"
    return worst[0], f"p95 {worst[0]} ms (worst stage: {worst[1]})"


def _report(stages: dict[str, StageResult]) -> tuple[float | None, str]:
    """The slowest report's p95 in the reports stage (or the trial balance in the dashboard mix)."""
    stage = stages.get("reports")
    if stage is None:
        reads = stages.get("reads")
        entry = reads.endpoint(u.TRIAL_BALANCE) if reads else None
        if entry is None:
            return None, "not run"
        return entry["p95_ms"], f"trial balance p95 {entry['p95_ms']} ms at {entry['rps']} req/s (dashboard mix)"
    reports = [e for e in stage.endpoints if e["name"].startswith("GET /api/v1/reports/") and e["requests"]]
    if not reports:
        return None, "no report answered"
    slowest = max(reports, key=lambda e: e["p95_ms"] or 0)
    total = stage.total
    name = slowest["name"].removeprefix("GET /api/v1/reports/")
    return (
        slowest["p95_ms"] if total["failures"] == 0 else float("inf"),
        f"slowest p95 {slowest['p95_ms']} ms ({name}); all reports p95 {total['p95_ms']} ms, "
        f"{total['failures']} failures of {total['requests']} at {total['rps']} req/s",
    )


def _run_authorised(stages: dict[str, StageResult]) -> tuple[float | None, str]:
    stage = stages.get("runs")
    if stage is None or not stage.total["requests"]:
        return None, "not run"
    total = stage.total
    return (
        total["p95_ms"] if total["failures"] == 0 else float("inf"),
        f"p95 {total['p95_ms']} ms (p50 {total['p50_ms']} ms) over {total['requests']} runs, "
        f"{total['failures']} failed",
    )


def _run_paid(stages: dict[str, StageResult]) -> tuple[float | None, str]:
    stage = stages.get("runs")
    lag = (stage.lags.get("authorised_to_all_paid_ms") or {}) if stage else {}
    if not lag.get("count"):
        return None, "no run was paid in full"
    posted = stage.lags.get("authorised_to_all_posted_ms") or {} if stage else {}
    return lag["max"], (
        f"slowest {lag['max']} ms (p50 {lag['p50']} ms) over {lag['count']} runs; "
        f"all posted in the ledger: slowest {posted.get('max')} ms"
    )


AIMS: tuple[Aim, ...] = (
    Aim("Dashboard reads", "p95 < 500 ms at 500 users", "p95 < 100 ms at 500 users, no failures", _dashboard, 100),
    Aim(
        "Pages (server-rendered, signed-in session)",
        "none",
        f"p95 < {PAGES_P95_MS} ms at 100 users (every page), no failures",
        _pages,
        PAGES_P95_MS,
    ),
    Aim("Create requisition", "< 800 ms at 50 req/s", "p95 < 25 ms at 50 req/s", _create, 25),
    Aim("Creation knee", "none", "at or above 250 req/s", _knee, 250, at_least=True),
    Aim("Approval case opened after the 201", "none", "p95 < 100 ms", _case_opened, 100),
    Aim("Authorise payment (OTP)", "< 2 s at 20 req/s", "p95 < 50 ms at 20 req/s", _payment, 50),
    Aim("Whole chain (submit → posted)", "none", "p95 < 250 ms at 20 chains/s", _chain, 250),
    Aim("Projection lag", "none", "p95 < 50 ms", _projection, 50),
    Aim("Reports (each)", "< 3 s at 10 req/s", "p95 < 300 ms at 10 req/s over 1 M transfers", _report, 300),
    Aim("Payment run authorised (100 payments)", "none", "< 50 ms", _run_authorised, 50),
    Aim("Payment run paid (100 payments)", "none", "all paid within 5 s of the authorisation", _run_paid, 5000),
)


def summary(stages: dict[str, StageResult]) -> list[dict[str, Any]]:
    """The summary rows: earlier target, our aim, measured, met."""
    rows = []
    for aim in AIMS:
        value, text = aim.measure(stages)
        rows.append({"path": aim.path, "earlier": aim.earlier, "aim": aim.aim, "measured": text, "met": aim.met(value)})
    return rows


def missed(result: StageResult) -> bool:
    """Whether a stage (or a creation step) missed its aim, from its client-side figures (known at once,
    while its load still runs: the profile is then taken of that load)."""
    name = result.name
    entry = None
    if name == "reads":
        return bool(result.total["failures"]) or (result.total["p95_ms"] or 0) >= 100
    if name == "pages":
        entry, limit = _slowest_page(result), PAGES_P95_MS
        return entry is None or bool(result.total["failures"]) or (entry["p95_ms"] or 0) >= limit
    if name.startswith("create-"):
        entry, limit = result.endpoint(u.CREATE), 25
    elif name == "pay":
        entry, limit = result.endpoint(u.PAY), 50
    elif name == "chain":
        entry, limit = result.endpoint(u.CHAIN), 250
    else:
        return False
    return entry is None or bool(entry["failures"]) or (entry["p95_ms"] or 0) >= limit


# -- the machine ------------------------------------------------------------------------


def _run(*argv: str) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False, cwd=ROOT)  # noqa: S603
    except OSError:
        return ""
    return done.stdout.strip()


def machine(postgres_version: str, redis_version: str) -> dict[str, Any]:
    """What this ran on."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    import locust

    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu_model": model or platform.processor(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": postgres_version,
        "redis": redis_version,
        "locust": locust.__version__,
        "commit": _run("git", "rev-parse", "--short", "HEAD"),
        "uncommitted_changes": bool(_run("git", "status", "--porcelain")),
    }


# -- writing ----------------------------------------------------------------------------


def write(out_dir: Path, stem: str, data: dict[str, Any], stages: dict[str, StageResult]) -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.md``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {**data, "summary": summary(stages), "stages": {k: v.to_dict() for k, v in stages.items()}}
    json_path = out_dir / f"{stem}.json"
    json_path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    md_path = out_dir / f"{stem}.md"
    md_path.write_text(markdown(data, stages))
    return json_path, md_path


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return lines


def _met(value: bool | None) -> str:
    return "n/a" if value is None else "yes" if value else "**no**"


def _endpoints(stage: StageResult) -> list[str]:
    rows = [
        [e["name"], e["requests"], e["failures"], e["p50_ms"], e["p95_ms"], e["p99_ms"], e["max_ms"], e["rps"]]
        for e in [*stage.endpoints, stage.total]
    ]
    rows[-1][0] = "**all**"
    return _table(["endpoint", "requests", "failures", "p50 ms", "p95 ms", "p99 ms", "max ms", "req/s"], rows)


def _cpu(stage: StageResult) -> list[str]:
    cpu = stage.cpu
    rows = [[name, g["processes"], g["cpu_seconds"], g["percent_of_one_core"]] for name, g in cpu["groups"].items()]
    rows.append(["other processes on the machine (not this run's)", "", "", cpu.get("others_percent_of_one_core")])
    rows.append(["**machine (all processes)**", "", "", cpu["machine_percent_of_one_core"]])
    lines = [f"CPU over {cpu['wall_seconds']} s (100 % = one core; this machine has {cpu['cores']}):", ""]
    return lines + _table(["process (tree summed)", "processes", "CPU s", "CPU %"], rows) + _cost(stage)


# What a stage's unit of work is, for its CPU cost (the reads' unit is any request).
UNITS = {"create": (u.CREATE, "requisition created"), "pay": (u.PAY, "payment"), "chain": (u.CHAIN, "whole chain")}


def _cost(stage: StageResult) -> list[str]:
    """The CPU the stack spent per unit of work served, and the ceiling that puts on this machine."""
    name, unit = UNITS.get(stage.name, (None, "request"))
    served = (stage.endpoint(name) if name else None) or stage.total
    done = served["requests"] - served["failures"]
    stack_seconds = sum(
        g["cpu_seconds"] for group, g in stage.cpu["groups"].items() if not group.startswith("load generator")
    )
    if done <= 0 or stack_seconds <= 0:
        return []
    per_unit_ms = stack_seconds * 1000 / done
    ceiling = stage.cpu["cores"] * 1000 / per_unit_ms
    return [
        "",
        f"CPU per {unit} (every process of the stack, the load generator excluded): {per_unit_ms:.1f} ms "
        f"over {done} served; so this machine's {stage.cpu['cores']} cores cannot serve more than "
        f"about {ceiling:.0f} per second, whatever the latency.",
    ]


def _lag_rows(lags: dict[str, Any], prefix: str = "") -> list[list[Any]]:
    rows = []
    for key, value in lags.items():
        if isinstance(value, dict) and "count" in value:
            if value["count"]:
                rows.append([prefix + key, value["count"], value["p50"], value["p95"], value["p99"], value["max"]])
        elif isinstance(value, dict):
            rows += _lag_rows(value, f"{prefix}{key}: ")
    return rows


def _lags(stage: StageResult) -> list[str]:
    lines: list[str] = []
    rows = _lag_rows(stage.lags)
    if rows:
        lines += [*_table(["lag (ms, from database timestamps)", "n", "p50", "p95", "p99", "max"], rows), ""]
    projection = stage.lags.get("projection") or {}
    if projection and not projection.get("available"):
        lines.append(f"Projection lag: not available ({projection.get('why')}).")
    extra = {k: v for k, v in stage.lags.items() if not isinstance(v, dict)}
    for key, value in extra.items():
        lines.append(f"- {key.replace('_', ' ')}: {value}")
    chains = stage.lags.get("chains") or {}
    if chains:
        lines.append(
            f"- chains started {chains['chains']}, completed {chains['completed']}, failed at {chains['failed_at']}"
        )
    return lines


def _stage(stage: StageResult) -> list[str]:
    lines = [f"### {stage.title}", ""]
    lines.append(
        f"Offered: {stage.offered}; {stage.users} users; measured {stage.seconds} s after warm-up; "
        f"drained {stage.drain_seconds if stage.drain_seconds is not None else 'not within the timeout'} s after."
    )
    lines += ["", *_endpoints(stage), ""]
    if stage.steps:
        rows = []
        for step in stage.steps:
            case = (step.lags.get("case_opened") or {}).get("case_opened_after_201_ms", {})
            create = step.endpoint(u.CREATE) or step.total
            rows.append(
                [
                    step.offered,
                    create["rps"],
                    create["requests"],
                    create["failures"],
                    create["p50_ms"],
                    create["p95_ms"],
                    create["p99_ms"],
                    case.get("p95"),
                    step.cpu["machine_percent_of_one_core"],
                    step.notes[0] if step.notes else "",
                ]
            )
        headers = ["offered", "req/s", "requests", "failures", "p50 ms", "p95 ms", "p99 ms", "case opened p95 ms"]
        lines += ["Steps:", "", *_table([*headers, "machine CPU %", ""], rows), ""]
    if stage.errors:
        rows = [[e["method"], e["name"], e["occurrences"], e["error"].replace("|", "/")[:160]] for e in stage.errors]
        lines += ["Failures:", "", *_table(["method", "endpoint", "count", "error"], rows), ""]
    lines += [*_cpu(stage), ""]
    lines += [*_lags(stage), ""]
    for note in stage.notes:
        lines.append(f"- {note}")
    profiles = {s.profile["record"]: s.profile for s in [stage, *stage.steps] if s.profile}
    for profile in profiles.values():
        lines += _profile(profile)
    return [*lines, ""]


def _profile(profile: dict[str, Any]) -> list[str]:
    top = profile.get("top") or {}
    if isinstance(top, list):  # reports of an earlier version kept only the self ranking
        top = {"self": top, "samples": sum(t["samples"] for t in top)}
    lines = [
        "",
        f"Profile of what binds (py-spy, {profile['role']}, pid {profile['pid']}, {top.get('samples', 0)} samples "
        f"holding the GIL): [collapsed stacks]({profile['record']}), [thread dump]({profile['dump']}).",
        "",
    ]
    for key, title in (("self", "function on the CPU itself"), ("inclusive", "project function on the stack")):
        rows = [[f"`{t['frame'][:110]}`", t["samples"], f"{100 * t['share']:.1f} %"] for t in top.get(key, [])]
        if rows:
            lines += [*_table([title, "samples", "share"], rows), ""]
    return lines


def markdown(data: dict[str, Any], stages: dict[str, StageResult]) -> str:
    """The Markdown report."""
    m = data["machine"]
    lines = [f"# Benchmark {data['started'][:16].replace('T', ' ')} UTC", ""]
    lines.append(f"`{data['command']}`, {data['mode']} run, {data['duration_seconds']} s in all.")
    lines += ["", "## Summary", ""]
    rows = [[r["path"], r["earlier"], r["aim"], r["measured"], _met(r["met"])] for r in data["summary"]]
    lines += _table(["path", "earlier system's target", "our aim", "measured", "met?"], rows)
    others = [s.cpu.get("others_percent_of_one_core") or 0 for s in stages.values()]
    if others and max(others) >= 10:
        lines += [
            "",
            f"Other processes on this machine (not this run's) used up to {max(others):.0f} % of one core during "
            "the stages (see each stage's CPU table): the figures are the worse for it.",
        ]
    for name, why in data.get("failed_stages", {}).items():
        lines += ["", f"**Stage {name} broke**: {why} (see the logs in `{data['work_dir']}`)."]
    lines += [
        "",
        "Earlier targets: the earlier system's final report; aims: DESIGN.md section 9 and the benchmark issue "
        "(2 cores, load generator included).",
        "",
        "## Machine and stack",
        "",
        f"- {m['nproc']} cores ({m['cpu_model']}), {m['memory_gib']} GiB; Linux {m['kernel']}; Python {m['python']}",
        f"- PostgreSQL {m['postgresql']}; Redis {m['redis']}; locust {m['locust']}",
        f"- commit {m['commit']}{' with uncommitted changes' if m['uncommitted_changes'] else ''}",
    ]
    stack = data["stack"]
    lines.append(
        f"- `PETTYCASH_ENV=production`; gunicorn {stack['gunicorn_workers']} workers x {stack['gunicorn_threads']} "
        f"threads; {stack['worker_concurrency']} threads per Celery worker; each role its own process: "
        + ", ".join(f"`{name}` (`pettycash {' '.join(args)}`)" for name, args in stack["roles"])
    )
    lines.append(f"- locust in this process, on the same {m['nproc']} cores; all traffic to 127.0.0.1")
    lines += ["", "## Data", ""]
    seed = data["seed"]
    lines.append(
        "Bulk-loaded with PostgreSQL COPY, one transaction per table, in "
        f"{seed['seconds'].get('total', 0):.1f} s: "
        + ", ".join(f"{table} {count:,}" for table, count in seed["rows"].items())
        + "."
    )
    lines.append("")
    lines.append(
        "Autovacuum is off on this machine's PostgreSQL server, and unanalysed tables mislead the planner: "
        "every database was `VACUUM (ANALYZE)`d after loading, as production's autovacuum would do "
        f"({seed['seconds'].get('vacuum_analyze', 0):.1f} s)"
        + (", and the gateway's again after its projections were rebuilt." if seed.get("projections") else ".")
    )
    lines.append("")
    lines.append(f"Projections: {seed.get('projections_note', '')}")
    lines += ["", "## Baseline (same run, same machine)", ""]
    lines += _baseline(data["baseline"])
    lines += ["", "## Stages", ""]
    for stage in stages.values():
        lines += _stage(stage)
    lines += ["## How it is measured", "", *[f"- {line}" for line in data["method"]], ""]
    return "\n".join(lines)


def _baseline(baseline: dict[str, Any]) -> list[str]:
    rows = []
    for name, result in baseline.items():
        if isinstance(result, dict) and "p50_ms" in result:
            rows.append([name, result.get("concurrency", ""), result["p50_ms"], result["p95_ms"], result["per_second"]])
    lines = _table(["what", "concurrent clients", "p50 ms", "p95 ms", "per second"], rows)
    if baseline.get("note"):
        lines += ["", baseline["note"]]
    return lines


def rerender(json_path: Path) -> Path:
    """Write the Markdown report again from its JSON (after a change to this module, say)."""
    data = json.loads(json_path.read_text())
    stages = {name: StageResult.from_dict(stage) for name, stage in data["stages"].items()}
    data["summary"] = summary(stages)
    md_path = json_path.with_suffix(".md")
    md_path.write_text(markdown(data, stages))
    return md_path


if __name__ == "__main__":
    import sys

    for argument in sys.argv[1:]:
        print(rerender(Path(argument)))
