"""What a fault run says: a line per event as it happens, each violation with its evidence, a JSON summary."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import click

from pettycash.chaos.invariants import Violation
from pettycash.chaos.workload import Chain

EVIDENCE_CHARS = 6_000


def say(seed: int, message: str, started: float | None = None) -> None:
    """One progress line, prefixed with the seed (and the seconds into the run, when given)."""
    clock = f" t={time.monotonic() - started:6.1f}s" if started is not None else ""
    click.echo(f"[chaos seed {seed}{clock}] {message}")


def chains_summary(chains: list[Chain]) -> dict[str, Any]:
    """Chains started, completed (a final status seen by the client), and how they ended."""
    return {
        "started": len(chains),
        "accepted": sum(1 for c in chains if c.accepted),
        "completed": sum(1 for c in chains if c.final_status is not None),
        "by_final_status": dict(Counter(c.final_status or "unfinished" for c in chains)),
        "by_plan": dict(Counter(c.plan for c in chains)),
        "by_tier": dict(Counter(c.tier for c in chains)),
        "by_method": dict(Counter(c.method for c in chains)),
        "payment_executions_started": sum(c.executions_started for c in chains),
    }


def provider_faults(chains: list[Chain]) -> dict[str, int]:
    """Chains that reached payment with each provider fault marker on their payee."""
    names = {"FAIL-TRANSIENT-2": "provider-transient", "FAIL-PERMANENT": "provider-permanent"}
    names["FAIL-LOST-REPLY"] = "provider-lost-reply"
    counts: Counter[str] = Counter()
    for chain in chains:
        if chain.marker and chain.executions_started:
            counts[names[chain.marker]] += 1
    return dict(counts)


def print_violations(seed: int, violations: list[Violation]) -> None:
    """Every violation, with its evidence (long evidence is cut; the JSON summary has it all)."""
    if not violations:
        say(seed, "every invariant holds")
        return
    say(seed, f"{len(violations)} VIOLATION(S)")
    for number, violation in enumerate(violations, 1):
        click.echo(f"  {number}. [{violation.invariant}] {violation.message}")
        evidence = json.dumps(violation.evidence, indent=2, default=str)
        if len(evidence) > EVIDENCE_CHARS:
            evidence = evidence[:EVIDENCE_CHARS] + "\n  ... (cut; see the JSON summary)"
        click.echo("     evidence: " + evidence.replace("\n", "\n     "))


def print_result(result: dict[str, Any]) -> None:
    """A seed's outcome in a few lines."""
    seed = int(result["seed"])
    say(seed, f"faults by type: {json.dumps(result['faults_by_type'], sort_keys=True)}")
    chains = result["chains"]
    say(
        seed,
        f"chains: {chains['started']} started, {chains['completed']} completed; "
        f"requisitions by status: {json.dumps(result['census'].get('requisitions_by_status', {}), sort_keys=True)}",
    )
    quiet = result["quiescence"]
    state = f"reached in {quiet['seconds']:.1f}s" if quiet["reached"] else f"NOT reached ({quiet['open_work']})"
    if quiet.get("stalled"):
        state += ": clients wait for answers while the databases have had nothing to do for a minute"
    say(seed, f"quiescence {state}")
    for item in result.get("observations", []):
        say(seed, f"observation ({item['kind']}): chain {item['chain']}: {item['detail']}")
    print_violations(seed, [Violation(**v) for v in result["violations"]])
    say(seed, f"summary: {result['summary_path']}; logs: {result['log_dir']}")


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically enough for a summary (a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    partial.replace(path)
