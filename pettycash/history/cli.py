"""``pettycash history generate``: realistic history at volume for a benchmark or a demonstration."""

from __future__ import annotations

import time

import click

from pettycash.history.plan import REGIONS, SeedPlan
from shared.config import Settings


@click.group()
def history() -> None:
    """Generated history (bulk-loaded, PostgreSQL only)."""


@history.command("generate")
@click.option(
    "--transfers", type=click.IntRange(min=0), default=1_000_000, show_default=True, help="At least this many."
)
@click.option("--requisitions", type=click.IntRange(min=0), default=100_000, show_default=True)
@click.option("--branches", type=click.IntRange(min=1), default=60, show_default=True, help="Field branches.")
@click.option(
    "--regions",
    type=click.IntRange(1, len(REGIONS)),
    default=None,
    help=f"Regions the branches are spread over (default: {len(REGIONS)}, or fewer for fewer branches).",
)
@click.option("--treasury-users", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True, help="The same seed makes the same history.")
@click.option("--replace", is_flag=True, help="Erase every table of every database first (the stack stopped).")
@click.option("--yes", is_flag=True, help="Do not ask before erasing (with --replace).")
def generate(
    transfers: int,
    requisitions: int,
    branches: int,
    regions: int | None,
    treasury_users: int,
    seed: int,
    replace: bool,
    yes: bool,
) -> None:
    """Bulk-load an organisation, its requisitions across every service and a large ledger.

    Refuses databases that hold data unless told --replace. Then derives what the services
    derive as they go: the floats' days, the ledger's balance check, the gateway's read models.
    """
    from pettycash.components import migrate_all
    from pettycash.history import load
    from shared.config import load_settings

    settings = load_settings()
    started = time.perf_counter()
    try:
        plan = SeedPlan(
            requisitions=requisitions,
            transfers=transfers,
            regions=regions or min(len(REGIONS), branches),
            branches=branches,
            treasury_users=treasury_users,
            seed=seed,
        )
        load.require_postgres(settings)
        migrate_all(settings)
        _make_room(settings, replace, yes)
    except (ValueError, load.HistoryError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"loading {plan.requisitions:,} requisitions and at least {plan.transfers:,} transfers...")
    seeded = load.generate(settings, plan, settings.otp_encryption_key)
    timings = {step: value for step, value in seeded.seconds.items() if step != "total"}

    mark = time.perf_counter()
    found = load.check_ledger(settings)
    timings["ledger_check"] = time.perf_counter() - mark
    if found["cache_mismatches"] or found["negative_floats"]:
        raise click.ClickException(f"the loaded ledger does not check out: {found}")

    mark = time.perf_counter()
    projected = load.rebuild_read_models(settings)
    load.analyse(settings, ["gateway"])
    timings["read_models"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - started
    _report(seeded.rows, projected, timings)


def _make_room(settings: Settings, replace: bool, yes: bool) -> None:
    """Go on only into empty databases, or emptied ones when told to (and, unless --yes, asked)."""
    from pettycash.history import load

    found = load.occupied(settings)
    if not found:
        return
    listed = "; ".join(f"{db}: {', '.join(tables)}" for db, tables in found.items())
    if not replace:
        raise load.HistoryError(
            f"the databases already hold data ({listed}); a history is only loaded into empty ones. "
            "Pass --replace to erase everything in them first."
        )
    if not yes:
        click.confirm(f"Erase every row of every database ({listed})?", abort=True)
    load.erase(settings)
    click.echo("erased every table")


def _report(rows: dict[str, int], projected: dict[str, int], seconds: dict[str, float]) -> None:
    click.echo("rows loaded:")
    for table, count in rows.items():
        click.echo(f"  {table:<24} {count:>12,}")
    click.echo("read models rebuilt:")
    for kind, count in projected.items():
        click.echo(f"  {kind:<24} {count:>12,}")
    click.echo("seconds: " + ", ".join(f"{step} {value:.1f}" for step, value in seconds.items()))
    click.echo(f"ledger balanced; history generated in {seconds['total']:.1f} s")
