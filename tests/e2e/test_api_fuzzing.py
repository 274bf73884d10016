"""Property-based fuzzing of the whole OpenAPI document: the API does what the document says.

schemathesis generates requests from every operation's schema (examples, boundary values,
then random ones) and sends them to a running gateway as a member of staff, a treasurer and
an admin on their bearer tokens, and as the member of staff on a browser's session cookie
(with its CSRF token), so each role's paths are reached past the permission checks. Every
check it has runs on every answer: no server error; every status, content type, header and
body as documented (the response schemas are what flask-smorest dumps, so they cannot
drift); data the schema calls invalid refused, data it calls valid accepted; a missing or
broken credential refused 401 (public operations say ``security: []``); an undeclared method
405 with ``Allow``.

The fuzzer is an admin who deactivates users, revokes tokens and renames branches at random,
so it runs on a world of its own (its own databases, Redis database and processes): the
other tests' demo organisation stays as they expect it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests

from services.gateway import identity
from services.gateway.passwords import Passwords
from shared.config import load_settings
from shared.db.engine import Database
from tests.conftest import DB_PREFIX, REDIS_DB
from tests.support import Stack, database_template, free_port, fresh_databases, scalar, wait_for

SCHEMATHESIS = shutil.which("schemathesis", path=os.path.dirname(sys.executable))

# What the checks need to know about this API that its schema cannot say.
CONFIG = """
[checks.positive_data_acceptance]
# A well-formed request that breaks a business rule is refused 422 (README, "How it fits
# together"): a branch code no branch has, a policy or a cap that does not hold together, a
# wrong one-time code, an Idempotency-Key already used for another request. Which codes,
# branches and keys exist is data, not schema; 422 is documented on each such operation.
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]

[checks.negative_data_rejection]
# The HTTP server in front refuses a request line over 4 KiB with 414 before the API sees it
# (a generated query string can be that long); that is a rejection too, documented as such.
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "414", "415", "422", "428", "429", "5xx"]

[[operations]]
include-path = "/api/v1/requisitions/{requisition_id}/receipts"
# A receipt is accepted by its content (PDF, PNG or JPEG magic bytes), which no schema can
# express: a generated file is refused 400 "invalid-receipt", as documented.
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "3xx", "400", "401", "403", "404", "409", "422", "429", "5xx",
]
"""


@dataclass
class World:
    stack: Stack
    tokens: dict[str, str]
    passwords: dict[str, str]


@pytest.fixture(scope="module")
def world(
    backing: dict[str, str], test_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """The whole system once more, on databases and a Redis database of its own."""
    prefix = f"{DB_PREFIX}fuzz_"
    var = tmp_path_factory.mktemp("fuzz-var")
    env = {
        **test_env,
        "PETTYCASH_DATABASE_URL": database_template(backing["postgres"], prefix),
        "PETTYCASH_BROKER_URL": f"{backing['redis']}/{REDIS_DB - 1}",
        "PETTYCASH_GATEWAY_PORT": str(free_port()),
        "PETTYCASH_VAR_DIR": str(var),
    }
    settings = load_settings(env)
    fresh_databases(backing["postgres"], prefix, settings)
    redis.Redis.from_url(settings.broker_url).flushdb()
    gateway_db, approval_db = Database(settings.database_url("gateway")), Database(settings.database_url("approval"))
    with gateway_db.uow() as uow:
        tokens = identity.seed_demo(uow.session)
        passwords = identity.set_demo_passwords(uow.session, Passwords.from_settings(settings.identity).hash)
        uow.commit()
    (var / "logs").mkdir()
    stack = Stack(env, var / "logs").start()
    users = scalar(gateway_db, "SELECT count(*) FROM users")
    wait_for(lambda: scalar(approval_db, "SELECT count(*) FROM approvers") >= users, 30, what="the directory")
    gateway_db.dispose()
    approval_db.dispose()
    yield World(stack, tokens, passwords)
    stack.stop()


def signed_in(world: World, username: str) -> tuple[str, str]:
    """Sign in as a browser does: the session cookie's value and the session's CSRF token."""
    browser = requests.Session()
    signed = browser.post(
        f"{world.stack.base_url}/api/v1/session",
        json={"username": username, "password": world.passwords[username]},
        timeout=10,
    )
    assert signed.status_code == 200, signed.text
    assert signed.json()["signed_in"], signed.text
    return browser.cookies["pettycash_session"], signed.json()["csrf_token"]


# Signing out would end the session the run is made on; the session tests cover both.
SIGN_OUTS = ["--exclude-name", "DELETE /api/v1/session", "--exclude-name", "DELETE /api/v1/sessions"]


# Every phase, 12 examples an operation, as one caller; the others (another role, a session
# with its CSRF token, the admin) fuzz 5 an operation, which is where their credentials differ.
# The admin last: it may deactivate the others. CI's twenty minutes bound these counts; raise
# them here to search harder.
RUNS = [
    ("alice", "examples,coverage,fuzzing", 12),
    ("tom", "fuzzing", 5),
    ("alice-session", "fuzzing", 5),
    ("admin", "fuzzing", 5),
]


@pytest.mark.parametrize(("caller", "phases", "examples"), RUNS, ids=[r[0] for r in RUNS])
def test_the_api_answers_as_its_openapi_document_says(
    world: World, caller: str, phases: str, examples: int, tmp_path: Path
) -> None:
    assert SCHEMATHESIS, "schemathesis is a dev dependency"
    username, _, via = caller.partition("-")
    # The credential by its security scheme, so schemathesis also sends requests without it.
    if via == "session":
        cookie, csrf_token = signed_in(world, username)
        auth = f'[auth.openapi.sessionCookie]\napi_key = "{cookie}"\n'
        extra = ["--header", f"X-CSRFToken: {csrf_token}", *SIGN_OUTS]
    else:
        auth = f'[auth.openapi.bearerAuth]\nbearer = "{world.tokens[username]}"\n'
        extra = []
    config = tmp_path / "schemathesis.toml"
    config.write_text(auth + CONFIG)
    done = subprocess.run(
        [
            SCHEMATHESIS,
            "--config-file",
            str(config),
            "run",
            f"{world.stack.base_url}/api/v1/openapi.json",
            *extra,
            "--checks",
            "all",
            "--phases",
            phases,
            "--max-examples",
            str(examples),
            "--seed",
            "20261124",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,
    )
    summary = done.stdout[-6000:]
    assert done.returncode == 0, summary
    assert " passed" in summary
    assert "Server error" not in summary
    generated = re.search(r"(\d+) generated", summary)
    assert generated, summary
    # Every operation was exercised, not cut short (some eighty operations; a session skips the
    # two that would end it).
    assert int(generated.group(1)) > 70 * examples, summary
