"""``pettycash``: run the stack, migrate, seed demo data, manage users and dead letters."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from typing import Any

import click
from celery.signals import worker_process_init, worker_ready

from pettycash.chaos.cli import chaos
from pettycash.components import build_runtime, migrate_all
from pettycash.history.cli import history
from shared.config import DATABASES, SERVICES, load_settings
from shared.contracts.catalog import QUEUES, queues_of
from shared.contracts.readmodels import KINDS as EVENT_KINDS
from shared.contracts.roles import ROLES
from shared.heap import freeze_startup_heap


def _logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s")


@click.group()
def main() -> None:
    """Petty cash management: operate the services."""
    _logging()


@main.command()
@click.option("--service", type=click.Choice(["gateway", *SERVICES]), default=None, help="Only this database.")
def migrate(service: str | None) -> None:
    """Create or upgrade every service's database."""
    migrate_all(load_settings(), service)
    click.echo("migrated")


@main.command("seed-demo")
def seed_demo() -> None:
    """Create the demo organisation (regions, branches, a user of every role) once."""
    from pettycash.demo import seed_and_print

    seed_and_print(load_settings())


@main.command("create-user")
@click.argument("username")
@click.option("--name", "full_name", required=True)
@click.option("--role", "roles", multiple=True, type=click.Choice(ROLES), required=True)
@click.option("--branch", "branches", multiple=True, help="Branch code; repeat for several.")
@click.option("--email", default=None, help="Where password links go.")
def create_user(
    username: str, full_name: str, roles: tuple[str, ...], branches: tuple[str, ...], email: str | None
) -> None:
    """Create a user and print a bearer token for it (shown once)."""
    from services.gateway import identity
    from shared.db.engine import Database

    db = Database(load_settings().database_url("gateway"))
    with db.uow() as uow:
        user = identity.create_user(uow.session, username, full_name, list(roles), list(branches))
        user.email = email.lower() if email else None
        token = identity.issue_token(uow.session, user, "cli")
        uow.commit()
    click.echo(token)


def _password_link(username: str, *, create_admin: dict[str, str] | None = None) -> str:
    """A one-time link that sets ``username``'s password (creating them as an admin first if asked)."""
    from services.gateway import identity
    from services.gateway.accounts import INVITATION, RESET, Accounts
    from services.gateway.passwords import Passwords
    from services.gateway.security import EventType, SecurityLog
    from services.gateway.sessions import make_store
    from shared.db.engine import Database
    from shared.db.types import utcnow

    settings = load_settings()
    db = Database(settings.database_url("gateway"))
    security = SecurityLog(db, utcnow)
    accounts = Accounts(
        db,
        settings.identity,
        Passwords.from_settings(settings.identity),
        security,
        make_store(settings.identity, db, utcnow),
        utcnow,
    )
    with db.uow() as uow:
        if create_admin is not None:
            user = identity.create_user(uow.session, username, create_admin["name"], ["admin"], [])
            user.email = create_admin["email"].lower() if create_admin["email"] else None
            security.add(uow.session, EventType.USER_CREATED, subject=(str(user.id), username), via="command line")
        else:
            user = accounts.find_user(uow.session, username)
            if user is None:
                raise click.ClickException(f"no user {username!r}")
        link = accounts.make_link(uow.session, user, RESET if user.password_hash else INVITATION)
        uow.commit()
    db.dispose()
    return f"{link.url}\n(works once, until {link.expires_at:%Y-%m-%d %H:%M} UTC)"


@main.command("create-admin")
@click.argument("username")
@click.option("--name", "full_name", required=True)
@click.option("--email", default="", help="The admin's address (password links go there later).")
def create_admin(username: str, full_name: str, email: str) -> None:
    """Create an administrator (the first one of a new install) and print the link that sets their password."""
    click.echo(_password_link(username, create_admin={"name": full_name, "email": email}))


@main.command("password-link")
@click.argument("username")
def password_link(username: str) -> None:
    """Print a one-time link that sets a user's password (when mail cannot reach them)."""
    click.echo(_password_link(username))


@main.command("unlock")
@click.argument("username")
def unlock(username: str) -> None:
    """Lift the lockout that wrong passwords earned a user."""
    from sqlalchemy import update

    from services.gateway.models import User
    from shared.db.engine import Database

    db = Database(load_settings().database_url("gateway"))
    with db.uow() as uow:
        done = uow.session.execute(
            update(User).where(User.username == username).values(locked_until=None, failed_sign_ins=0)
        ).rowcount
        uow.commit()
    if not done:
        raise click.ClickException(f"no user {username!r}")
    click.echo(f"{username} unlocked")


@main.command()
@click.argument("service", type=click.Choice(DATABASES))
@click.option("--concurrency", type=int, default=None)
@click.option("--pool", type=click.Choice(["threads", "prefork", "solo"]), default="threads")
@click.option(
    "--only",
    type=click.Choice(list(QUEUES)),
    default=None,
    help="Consume only the service's commands and events, only its queries (reports, exports), or only its "
    "jobs (a payment run's launch and disbursements); default all three.",
)
def worker(service: str, concurrency: int | None, pool: str, only: str | None) -> None:
    """Run one service's Celery worker on its queues (``gateway``: the projector)."""
    settings = load_settings()
    runtime = build_runtime(service, settings)
    runtime.publish_documents()
    queues = [QUEUES[only](service)] if only else queues_of(service)
    # Once the worker is up (and in each child of a prefork pool), its loaded code is left alone.
    worker_ready.connect(_settle, weak=False)
    worker_process_init.connect(_settle, weak=False)
    runtime.app.worker_main(
        [
            "worker",
            f"--queues={','.join(queues)}",
            f"--hostname={service}@%h",
            f"--pool={pool}",
            f"--concurrency={concurrency or settings.worker_concurrency}",
            f"--prefetch-multiplier={QUERY_PREFETCH if only == 'queries' else 1}",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
        ]
    )


# A query worker takes this many queries per thread from the broker ahead of running them (one,
# the rule for commands and events, leaves a busy replica's next message to another replica).
# Queries are short and read-only, and one that arrives while every thread is busy is better
# waiting in the worker than in Redis for the consumer's next fetch: the benchmark's reports at
# 10 a second went from p95 310 to 280 ms. If the worker dies, the broker gives them to another.
QUERY_PREFETCH = 4


def _settle(**_signal: Any) -> None:
    freeze_startup_heap()


@main.command()
@click.argument("services", nargs=-1, type=click.Choice(DATABASES))
def relay(services: tuple[str, ...]) -> None:
    """Publish committed outbox messages (every database's unless named)."""
    from shared.messaging.relay import run_relays

    stop = threading.Event()

    def _stop(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    freeze_startup_heap()
    run_relays(load_settings(), services or DATABASES, stop)


@main.command()
def beat() -> None:
    """Run the scheduler (periodic maintenance, SLA timers)."""
    from shared.messaging.beat import make_beat_app

    settings = load_settings()
    app = make_beat_app(settings)
    schedule = settings.var_dir / "beat-schedule"
    schedule.parent.mkdir(parents=True, exist_ok=True)
    app.start(["beat", "--loglevel=INFO", f"--schedule={schedule}"])


@main.command()
@click.option("--workers", type=int, default=None, help="gunicorn processes (default: pettycash.server.WORKERS).")
@click.option("--threads", type=int, default=None, help="Threads per process (default: pettycash.server.THREADS).")
def gateway(workers: int | None, threads: int | None) -> None:
    """Serve the gateway with gunicorn."""
    from pettycash.server import THREADS, WORKERS, serve

    workers, threads = workers or WORKERS, threads or THREADS
    serve(load_settings(), workers=workers, threads=threads)


@main.command()
def run() -> None:
    """Migrate, seed the demo data and run everything until Ctrl-C."""
    from pettycash.supervisor import run_stack

    sys.exit(run_stack(load_settings()))


@main.group()
def projections() -> None:
    """The gateway's read models."""


@projections.command("rebuild")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(sorted(EVENT_KINDS)), help="Only these (repeatable).")
@click.option("--timeout", type=float, default=120.0, help="Seconds to wait for each page of a service's export.")
def projections_rebuild(kinds: tuple[str, ...], timeout: float) -> None:
    """Recreate the read models from the services' own state (safe while the system runs)."""
    from celery.result import AsyncResult

    from services.gateway.rebuild import rebuild
    from shared.contracts.envelope import SYSTEM_ACTOR, Envelope
    from shared.db.engine import Database
    from shared.messaging.app import make_celery, send_command

    settings = load_settings()
    app = make_celery(settings, "rebuild")

    def ask(spec: Any, payload: dict[str, Any]) -> dict[str, Any]:
        message_id = send_command(app, spec, Envelope(type=spec.name, payload=payload, actor=SYSTEM_ACTOR).to_dict())
        result = AsyncResult(message_id, app=app)
        reply = result.get(timeout=timeout)
        result.forget()
        if reply.get("status") != 200:
            raise click.ClickException(f"{spec.name} answered {reply}")
        body: dict[str, Any] = reply["body"]
        return body

    db = Database(settings.database_url("gateway"))
    try:
        counts = rebuild(db, ask, kinds or None)
    finally:
        db.dispose()
    for kind, count in counts.items():
        click.echo(f"{kind}: {count}")


@main.group()
def deadletters() -> None:
    """Messages that kept failing."""


@deadletters.command("list")
@click.option("--service", type=click.Choice(SERVICES), required=True)
@click.option("--all", "include_replayed", is_flag=True, help="Include replayed ones.")
def deadletters_list(service: str, include_replayed: bool) -> None:
    """List a service's dead letters as JSON lines."""
    from shared.messaging import deadletter

    runtime = build_runtime(service, load_settings())
    with runtime.db.uow() as uow:
        for row in deadletter.list_dead_letters(uow.session, include_replayed):
            click.echo(json.dumps(row, default=str))


@deadletters.command("replay")
@click.option("--service", type=click.Choice(SERVICES), required=True)
@click.argument("dead_letter_id", type=int)
def deadletters_replay(service: str, dead_letter_id: int) -> None:
    """Send a dead letter again, as it was; the inbox still guards against a double effect.

    Replaying the last one left clears the service's dead-letter alert."""
    from shared.messaging import deadletter

    runtime = build_runtime(service, load_settings())
    with runtime.db.uow() as uow:
        taken = deadletter.replay(uow, service, dead_letter_id)
        if taken is None:
            raise click.ClickException(f"no unreplayed dead letter {dead_letter_id} in {service}")
        # Sent before the commit, so a failed commit loses nothing (the inbox dedupes a second
        # replay); should it fail again, its burial waits for this commit (deadletter's lock).
        runtime.app.send_task(taken["task_name"], args=[taken["envelope"]], queue=service)
        uow.commit()
    click.echo(f"replayed {dead_letter_id} ({taken['task_name']})")


@main.group()
def policy() -> None:
    """The approval policy (tiers, chains, approver limits, SLAs)."""


def _approval_use_case(use_case: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """Run an approval use case in-process as the operator (no worker needed)."""
    from shared.contracts.envelope import Actor, Envelope

    runtime = build_runtime("approval", load_settings())
    actor = Actor(user_id="cli", username="cli-operator", roles=frozenset({"admin"}))
    envelope = Envelope(type="cli", payload=payload, actor=actor)
    with runtime.db.uow() as uow:
        reply: dict[str, Any] = use_case(uow, envelope, payload)
        uow.commit()
    return reply


@policy.command("show")
def policy_show() -> None:
    """Print the policy in force as JSON."""
    from services.approval import service

    runtime = build_runtime("approval", load_settings())
    with runtime.db.uow() as uow:
        current = service.current_policy(uow.session)
    click.echo(json.dumps({"version": current.version, **current.to_dict()}, indent=2))


@policy.command("set")
@click.argument("path", type=click.File("r"))
def policy_set(path: Any) -> None:
    """Store a new policy version from a JSON file (the shape `policy show` prints)."""
    from marshmallow import ValidationError

    from services.approval import service
    from shared.contracts.payloads import PolicySchema
    from shared.messaging.errors import DomainError

    raw = json.load(path)
    raw.pop("version", None)
    try:
        payload = PolicySchema().load(raw)
        reply = _approval_use_case(service.set_policy, payload)
    except ValidationError as exc:
        raise click.ClickException(f"invalid policy: {exc.messages}") from exc
    except DomainError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"policy version {reply['body']['version']} in force")


main.add_command(chaos)
main.add_command(history)
