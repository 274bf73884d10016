"""Administering people over the running stack: the first admin from the shell, and a
deactivation that takes an approver out of the approval service's routing at once."""

from __future__ import annotations

import secrets
import uuid

from shared.db.engine import Database
from tests.support import Api, kes, pettycash, scalar, wait_for


def strong() -> str:
    return "-".join(secrets.token_urlsafe(5) for _ in range(4))


def test_the_first_admin_comes_from_the_shell_and_sets_a_password_with_its_link(
    api: Api, test_env: dict[str, str]
) -> None:
    username = f"ada-{uuid.uuid4().hex[:6]}"
    made = pettycash(test_env, "create-admin", username, "--name", "Ada Admin", "--email", f"{username}@example.org")
    assert made.returncode == 0, made.stderr
    link = made.stdout.split()[0]
    assert "/password/set?token=" in link
    token = link.split("token=")[1]
    password = strong()
    assert api.post("/api/v1/password-link", json={"token": token, "password": password}).status_code == 200
    assert api.post("/api/v1/password-link", json={"token": token, "password": strong()}).status_code == 404  # once
    signed = api.post("/api/v1/session", json={"username": username, "password": password})
    assert signed.status_code == 200, signed.text
    assert signed.json()["next"] == "enrol"  # an admin signs in with a second factor
    assert pettycash(test_env, "unlock", username).stdout.strip() == f"{username} unlocked"
    again = pettycash(test_env, "password-link", username)
    assert "/password/set?token=" in again.stdout
    assert pettycash(test_env, "unlock", "nobody-at-all").returncode != 0


def test_deactivating_an_approver_takes_them_out_of_routing(
    api: Api, tokens: dict[str, str], dbs: dict[str, Database]
) -> None:
    admin = tokens["admin"]
    region = f"D{uuid.uuid4().hex[:5].upper()}"
    assert api.post("/api/v1/admin/regions", admin, json={"code": region, "name": "Deactivation"}).status_code == 201
    branch = {"code": f"{region}-1", "name": "Branch", "region": region, "reorder_level": kes(100), "imprest": kes(900)}
    assert api.post("/api/v1/admin/branches", admin, json=branch).status_code == 201
    person = {
        "username": f"mgr-{uuid.uuid4().hex[:6]}",
        "full_name": "Manager",
        "email": f"mgr-{uuid.uuid4().hex[:6]}@example.org",
        "roles": ["branch_manager"],
        "branches": [branch["code"]],
    }
    created = api.post("/api/v1/admin/users", admin, json=person)
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]

    def active() -> object:
        return scalar(dbs["approval"], "SELECT active FROM approvers WHERE user_id = :u", u=user_id)

    wait_for(lambda: active() is True, 15, what="the approver to be known")
    assert api.post(f"/api/v1/admin/users/{user_id}/deactivate", admin).status_code == 200
    wait_for(lambda: active() is False, 15, what="the approver to be out of routing")

    # The branch's float levels reached the ledger too.
    def levels() -> object:
        return scalar(
            dbs["ledger"], "SELECT reorder_level_minor FROM branch_levels WHERE branch_code = :c", c=branch["code"]
        )

    wait_for(lambda: levels() == 10_000, 15, what="the branch's levels in the ledger")
