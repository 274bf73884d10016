"""Authentication: one SELECT outside any transaction, the same actor as before, no cache."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, text

from services.gateway import identity
from services.gateway.models import User
from tests.integration.gateway_path.rig import Rig
from tests.support import Api

IDENTITY_TABLES = re.compile(r"\b(api_tokens|users|user_roles|memberships|branches|regions)\b")


def test_a_request_authenticates_with_one_query(rig: Rig, gateway: Callable[..., Api], tokens: dict[str, str]) -> None:
    api = gateway()
    probe = f"/api/v1/commands/{uuid.uuid4()}"  # authenticates, then reads pending_commands
    assert api.get(probe, tokens["rita"]).status_code == 404  # past SQLAlchemy's first-connection queries
    rig.pg_proxy.take_statements()

    response = api.get(probe, tokens["rita"])
    statements = [sql for _, sql in rig.pg_proxy.take_statements() if sql != ";"]  # ";" is the pool's ping

    assert response.status_code == 404, response.text  # authenticated: the command is just unknown
    about_identity = [s for s in statements if IDENTITY_TABLES.search(s)]
    assert len(about_identity) == 1, statements
    assert all(t in about_identity[0] for t in ("api_tokens", "users", "user_roles", "memberships", "branches"))
    # It comes first, with no BEGIN before it nor ROLLBACK after it: no transaction round trips.
    assert statements[0] == about_identity[0], statements
    assert statements[1].split()[0].upper() == "BEGIN", statements  # the pending_commands lookup's own


def test_the_actor_is_the_one_the_user_rows_describe(dbs: Any, tokens: dict[str, str]) -> None:
    with dbs["gateway"].uow() as uow:
        for username, token in tokens.items():
            user = uow.session.scalar(select(User).where(User.username == username))
            assert user is not None
            found = identity.authenticate(uow.session, token)
            assert found is not None, username
            assert found.actor == identity.actor_of(user), username
            assert not found.read_only, username
        assert identity.authenticate(uow.session, identity.TOKEN_PREFIX + "not-a-token") is None


def test_deactivation_and_revocation_take_effect_on_the_next_request(
    rig: Rig, gateway: Callable[..., Api], dbs: Any
) -> None:
    api = gateway()
    with dbs["gateway"].uow() as uow:
        user = identity.create_user(uow.session, f"tmp-{uuid.uuid4().hex[:8]}", "Temporary", ["staff"], ["NBO-CBD"])
        token = identity.issue_token(uow.session, user, "test")
        uow.commit()
        user_id = user.id
    probe = f"/api/v1/commands/{uuid.uuid4()}"

    def set_sql(sql: str) -> None:
        with dbs["gateway"].engine.begin() as conn:
            conn.execute(text(sql), {"u": user_id})

    assert api.get(probe, token).status_code == 404
    set_sql("UPDATE users SET is_active = false WHERE id = :u")
    assert api.get(probe, token).status_code == 401
    set_sql("UPDATE users SET is_active = true WHERE id = :u")
    assert api.get(probe, token).status_code == 404
    set_sql("UPDATE api_tokens SET revoked_at = now() WHERE user_id = :u")
    assert api.get(probe, token).status_code == 401
