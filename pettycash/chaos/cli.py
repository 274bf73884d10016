"""``pettycash chaos``: fault runs of the whole stack, one seed after another (see the README, "Fault runs")."""

from __future__ import annotations

import time
from pathlib import Path

import click


def parse_seeds(seeds: tuple[int, ...], seed_range: str | None) -> list[int]:
    """``--seed`` values and a ``--seeds A..B`` range, in order, each once (default: seed 1)."""
    chosen = list(seeds)
    if seed_range:
        first, sep, last = seed_range.partition("..")
        try:
            low, high = int(first), int(last if sep else first)
        except ValueError:
            raise click.BadParameter(f"{seed_range!r} is not a range like 1..20", param_hint="--seeds") from None
        chosen += list(range(low, high + 1))
    return list(dict.fromkeys(chosen)) or [1]


@click.command()
@click.option("--seed", "seeds", multiple=True, type=int, help="A seed to run (repeatable).")
@click.option("--seeds", "seed_range", default=None, help="A range of seeds, e.g. 1..20.")
@click.option(
    "--minutes", type=float, default=1.0, show_default=True, help="Minutes of workload under faults per seed."
)
@click.option("--clients", type=int, default=4, show_default=True, help="Concurrent clients driving chains.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where summaries and logs go (default var/chaos/<time>).",
)
@click.option(
    "--quiesce-seconds",
    type=float,
    default=300.0,
    show_default=True,
    help="How long to wait, after the faults, for every requisition to finish and every message to arrive.",
)
@click.option("--keep", is_flag=True, help="Keep each seed's PostgreSQL cluster files (for a post-mortem).")
def chaos(
    seeds: tuple[int, ...],
    seed_range: str | None,
    minutes: float,
    clients: int,
    out_dir: Path | None,
    quiesce_seconds: float,
    keep: bool,
) -> None:
    """Run the real stack on its own PostgreSQL and Redis under a seeded fault schedule, then check the invariants.

    Exits 1 if any invariant was violated (each is printed with its evidence), 2 if a seed could not run.
    """
    import logging

    from pettycash.chaos import report
    from pettycash.chaos.run import RunOptions, run_seed

    # Migrations and HTTP retries are the harness's plumbing, not its findings.
    for noisy in ("alembic", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    chosen = parse_seeds(seeds, seed_range)
    out = (out_dir or Path("var") / "chaos" / time.strftime("%Y%m%d-%H%M%S")).resolve()
    options = RunOptions(minutes=minutes, clients=clients, out_dir=out, quiesce_seconds=quiesce_seconds, keep=keep)
    results = []
    failed_to_run = []
    for seed in chosen:
        try:
            result = run_seed(seed, options)
        except Exception as exc:
            report.say(seed, f"could not run: {type(exc).__name__}: {exc}")
            failed_to_run.append({"seed": seed, "error": f"{type(exc).__name__}: {exc}"})
            continue
        report.print_result(result)
        results.append(result)
    violated = [r["seed"] for r in results if r["violations"]]
    summary = {
        "seeds": chosen,
        "minutes": minutes,
        "clients": clients,
        "violated_seeds": violated,
        "failed_to_run": failed_to_run,
        "results": [{k: v for k, v in r.items() if k != "chain_details"} for r in results],
    }
    report.write_json(out / "summary.json", summary)
    click.echo(f"chaos: {len(results)} seed(s) run, violations in {violated or 'none'}; summary {out / 'summary.json'}")
    if failed_to_run:
        raise SystemExit(2)
    if violated:
        raise SystemExit(1)
