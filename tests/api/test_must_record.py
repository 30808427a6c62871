"""The per-user ``must_record`` flag (regulated staff): API, CLI, audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from callvault.api.app import create_app
from callvault.services.context import ServiceContext
from tests.api.conftest import auth
from tests.support.cli import invoke_cli
from tests.support.people import ADMIN, Staff, create_staff


@pytest.fixture
def api(ctx: ServiceContext) -> Iterator[TestClient]:
    with TestClient(create_app(ctx)) as client:
        yield client


@pytest.fixture
def people(ctx: ServiceContext) -> Staff:
    return create_staff(ctx)


def _audit(ctx: ServiceContext) -> list[str | None]:
    events = reversed(ctx.access_log.list(ADMIN, limit=1000))  # oldest first
    return [e.detail for e in events if e.action == "user_must_record"]


def test_admin_sets_and_clears_must_record_and_each_change_is_audited(
    api: TestClient, ctx: ServiceContext, people: Staff
) -> None:
    admin = ctx.users.create_token(ADMIN, "carol", "t")  # a compliance officer cannot manage users
    assert (
        api.patch("/api/v1/users/alice", json={"must_record": True}, headers=auth(admin)).status_code == 403
    )
    root_token = _admin_token(ctx)
    answer = api.patch("/api/v1/users/alice", json={"must_record": True}, headers=auth(root_token))
    assert answer.status_code == 200, answer.text
    assert answer.json()["must_record"] is True
    listed = {
        u["username"]: u["must_record"]
        for u in api.get("/api/v1/users", headers=auth(root_token)).json()["items"]
    }
    assert listed["alice"] is True and listed["bob"] is False
    # Setting it again changes nothing and writes no second entry.
    api.patch("/api/v1/users/alice", json={"must_record": True}, headers=auth(root_token))
    api.patch("/api/v1/users/alice", json={"must_record": False}, headers=auth(root_token))
    assert _audit(ctx) == ["user=alice must_record=true", "user=alice must_record=false"]


def test_bad_bodies_and_unknown_users_are_refused(
    api: TestClient, ctx: ServiceContext, people: Staff
) -> None:
    token = _admin_token(ctx)
    for body in ({}, {"must_record": "yes"}, {"must_record": True, "colour": "red"}, {"role": 7}):
        answer = api.patch("/api/v1/users/alice", json=body, headers=auth(token))
        assert answer.status_code == 400, (body, answer.text)
    assert (
        api.patch("/api/v1/users/nobody", json={"must_record": True}, headers=auth(token)).status_code == 404
    )
    assert not any(u.must_record for u in ctx.users.list_users(ADMIN))


def test_cli_creates_and_flags_regulated_staff(
    ctx: ServiceContext, data_dir: Path, database_url: str
) -> None:
    env = {"CALLVAULT_DATA_DIR": str(data_dir), "CALLVAULT_DATABASE_URL": database_url}
    created = invoke_cli(["admin", "create-user", "trader", "--role", "agent", "--must-record"], env)
    assert created.returncode == 0, created.stderr
    assert invoke_cli(["admin", "create-user", "clerk", "--role", "agent"], env).returncode == 0
    assert invoke_cli(["admin", "must-record", "clerk"], env).returncode == 0
    assert invoke_cli(["admin", "must-record", "trader", "--off"], env).returncode == 0
    flags = {u.username: u.must_record for u in ctx.users.list_users(ADMIN)}
    assert flags == {"clerk": True, "trader": False}
    listing = invoke_cli(["admin", "list-users"], env).stdout
    assert "clerk\tagent\t-\t\tmust_record" in listing
    unknown = invoke_cli(["admin", "must-record", "ghost"], env)
    assert unknown.returncode != 0 and "ghost" in unknown.stderr


def _admin_token(ctx: ServiceContext) -> str:
    ctx.users.create_user(ADMIN, "root", "admin")
    return ctx.users.create_token(ADMIN, "root", "t")
