"""The demo organisation and how its credentials are shown to whoever runs the stack."""

from __future__ import annotations

import click

from services.gateway import identity
from shared.config import Settings
from shared.db.engine import Database


def seed_and_print(settings: Settings) -> None:
    """Seed once; print the demo tokens (kept in var/ for later runs: demo mode only)."""
    db = Database(settings.database_url("gateway"))
    with db.uow() as uow:
        tokens = identity.seed_demo(uow.session)
        uow.commit()
    db.dispose()
    credentials = settings.var_dir / "demo-credentials.txt"
    if tokens:
        credentials.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{user:8} {token}" for user, token in tokens.items()]
        credentials.write_text("\n".join(lines) + "\n")
        credentials.chmod(0o600)
    if credentials.exists():
        roles = {d.username: ",".join(d.roles) for d in identity.DEMO_USERS}
        click.echo("Demo users and their bearer tokens (Authorization: Bearer <token>):")
        for line in credentials.read_text().splitlines():
            user, token = line.split()
            click.echo(f"  {user:8} {roles.get(user, ''):18} {token}")
    else:
        click.echo("Demo data already present; its tokens were not kept here.")
