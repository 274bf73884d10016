"""The demo organisation and how its credentials are shown to whoever runs the stack."""

from __future__ import annotations

import click

from services.gateway import identity
from services.gateway.passwords import Passwords
from shared.config import Settings
from shared.contracts.roles import SECOND_FACTOR_ROLES
from shared.db.engine import Database


def seed_and_print(settings: Settings) -> None:
    """Seed once; print where to sign in and each demo user's password and bearer token (kept
    in var/demo-credentials.txt, readable by its owner only, for later runs)."""
    if settings.env == "production":
        raise click.ClickException("No demo data in production: create the first admin with `pettycash create-admin`.")
    db = Database(settings.database_url("gateway"))
    with db.uow() as uow:
        tokens = identity.seed_demo(uow.session)
        passwords = (
            identity.set_demo_passwords(uow.session, Passwords.from_settings(settings.identity).hash) if tokens else {}
        )
        uow.commit()
    db.dispose()
    credentials = settings.var_dir / "demo-credentials.txt"
    if tokens:
        credentials.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{user} {passwords[user]} {token}" for user, token in tokens.items()]
        credentials.write_text("\n".join(lines) + "\n")
        credentials.chmod(0o600)
    address = f"http://{settings.gateway_host}:{settings.gateway_port}/"
    if not credentials.exists():
        click.echo(f"Petty cash at {address} (demo data already present; its credentials were not kept here).")
        return
    roles = {d.username: set(d.roles) for d in identity.DEMO_USERS}
    click.echo(f"Petty cash at {address}  (API: {address}api/v1/openapi.json)")
    click.echo("Demo users: sign in with the username and password; API calls take the bearer token.")
    click.echo("Treasury, finance, CFO and admin enrol an authenticator app at their first sign-in.")
    for line in credentials.read_text().splitlines():
        user, password, token = line.split()
        held = roles.get(user, set())
        note = " (+ authenticator)" if held & SECOND_FACTOR_ROLES else ""
        click.echo(f"  {user:8} {','.join(sorted(held)):18} {password:22} {token}{note}")
