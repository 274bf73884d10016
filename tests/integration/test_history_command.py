"""``pettycash history generate`` bulk-loads a history that checks out, and loads it only once.

It runs as an operator runs it (a subprocess) on databases of its own, named after this test
session's prefix; the services' own tables are the oracle: counts, the ledger's balances
against its transfers, the floats' and accounts' days against the transfers, and the
gateway's read models filled from the services.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from services.ledger import days
from services.ledger.levels import totals_of
from services.ledger.models import Account
from services.ledger.service import verify_balances
from shared.config import DATABASES, load_settings
from shared.db.engine import Database
from tests.conftest import DB_PREFIX
from tests.support import database_template, drop_databases, scalar

ROOT = Path(__file__).resolve().parents[2]
PREFIX = DB_PREFIX + "history_"
TRANSFERS, REQUISITIONS = 20_000, 1_000


def _generate(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pettycash", "history", "generate", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.fixture(scope="module")
def history_env(backing: dict[str, str], test_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The test environment on databases of this module's own, which the command creates."""
    drop_databases(backing["postgres"], PREFIX)
    yield {**test_env, "PETTYCASH_DATABASE_URL": database_template(backing["postgres"], PREFIX)}
    drop_databases(backing["postgres"], PREFIX)


@pytest.fixture(scope="module")
def generated(history_env: dict[str, str]) -> Iterator[tuple[str, dict[str, Database]]]:
    """One history generated; what the command said, and handles on its databases."""
    done = _generate(history_env, "--transfers", str(TRANSFERS), "--requisitions", str(REQUISITIONS), "--branches", "3")
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    settings = load_settings(history_env)
    handles = {name: Database(settings.database_url(name)) for name in DATABASES}
    yield done.stdout, handles
    for db in handles.values():
        db.dispose()


@pytest.mark.timeout(300)
def test_it_loads_every_service_and_says_what(generated: tuple[str, dict[str, Database]]) -> None:
    said, dbs = generated
    assert scalar(dbs["requisition"], "SELECT count(*) FROM requisitions") == REQUISITIONS
    assert scalar(dbs["ledger"], "SELECT count(*) FROM transfers") >= TRANSFERS
    # Every submitted requisition has its case; every paid one its payment and its posting.
    submitted = scalar(dbs["requisition"], "SELECT count(*) FROM requisitions WHERE status <> 'draft'")
    assert scalar(dbs["approval"], "SELECT count(*) FROM approval_cases") == submitted
    paid = scalar(dbs["requisition"], "SELECT count(*) FROM requisitions WHERE status = 'paid'")
    assert scalar(dbs["payment"], "SELECT count(*) FROM payments WHERE state = 'completed'") == paid
    # 3 field branches and the head office, each with its float.
    assert scalar(dbs["gateway"], "SELECT count(*) FROM branches") == 4
    assert scalar(dbs["ledger"], "SELECT count(*) FROM accounts WHERE kind = 'float'") == 4
    transfers = scalar(dbs["ledger"], "SELECT count(*) FROM transfers")
    # Rows per table, and the seconds it took.
    assert re.search(rf"^\s+transfers\s+{transfers:,}$", said, re.MULTILINE), said
    assert re.search(rf"^\s+requisitions\s+{REQUISITIONS:,}$", said, re.MULTILINE), said
    assert re.search(r"history generated in [0-9.]+ s", said), said


@pytest.mark.timeout(300)
def test_the_ledger_it_loads_balances_and_its_days_agree(generated: tuple[str, dict[str, Database]]) -> None:
    _said, dbs = generated
    ledger = dbs["ledger"]
    sums = "SELECT sum(debits_posted) - sum(credits_posted), sum(debits_pending) - sum(credits_pending) FROM accounts"
    with ledger.engine.connect() as conn:
        assert tuple(conn.execute(text(sums)).one()) == (0, 0)
    with ledger.uow() as uow:
        # Every cached balance equals its transfers, derived from them alone.
        assert verify_balances(uow.session) == []
        for account in uow.session.query(Account).filter(Account.kind == "float"):
            totals = totals_of(account)
            assert totals.available >= 0, account.code
            last = uow.session.execute(
                text(
                    "SELECT closing_balance_minor, closing_available_minor FROM float_days "
                    "WHERE account_id = :a ORDER BY day DESC LIMIT 1"
                ),
                {"a": account.id},
            ).one()
            assert tuple(last) == (totals.balance, totals.available), account.code
        # The floats' and the accounts' days are what a rebuild from the transfers makes.
        before = uow.session.execute(text("SELECT * FROM float_days ORDER BY id")).all()
        days.rebuild(uow.session)
        assert uow.session.execute(text("SELECT * FROM float_days ORDER BY id")).all() == before
        summed = uow.session.execute(
            text(
                "SELECT a.code FROM accounts a JOIN (SELECT account_id, sum(debits_posted) dp, sum(credits_posted) cp "
                "FROM account_days GROUP BY account_id) d ON d.account_id = a.id "
                "WHERE d.dp <> a.debits_posted OR d.cp <> a.credits_posted"
            )
        ).all()
        assert summed == []
        uow.rollback()


@pytest.mark.timeout(300)
def test_the_gateway_reads_the_history(generated: tuple[str, dict[str, Database]]) -> None:
    _said, dbs = generated
    gateway = dbs["gateway"]
    assert scalar(gateway, "SELECT count(*) FROM rm_requisitions") == REQUISITIONS
    assert scalar(gateway, "SELECT count(*) FROM rm_float_days") == scalar(
        dbs["ledger"], "SELECT count(*) FROM float_days"
    )
    assert scalar(gateway, "SELECT count(*) FROM rm_accounts") == scalar(dbs["ledger"], "SELECT count(*) FROM accounts")


@pytest.mark.timeout(300)
def test_a_second_run_refuses_databases_that_hold_data(
    generated: tuple[str, dict[str, Database]], history_env: dict[str, str]
) -> None:
    _said, dbs = generated
    transfers = scalar(dbs["ledger"], "SELECT count(*) FROM transfers")
    again = _generate(history_env, "--transfers", "1000", "--requisitions", "10", "--branches", "1")
    assert again.returncode != 0
    assert "already hold data" in again.stderr
    assert "--replace" in again.stderr
    assert scalar(dbs["ledger"], "SELECT count(*) FROM transfers") == transfers


def test_it_refuses_sqlite(test_env: dict[str, str], tmp_path: Path) -> None:
    env = {**test_env, "PETTYCASH_DATABASE_URL": f"sqlite:///{tmp_path}/{{service}}.db"}
    done = _generate(env, "--transfers", "10")
    assert done.returncode != 0
    assert "PostgreSQL COPY" in done.stderr
    assert not list(tmp_path.glob("*.db")), "nothing is created on SQLite"
