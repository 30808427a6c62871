"""``/api/v1/auth`` and ``/api/v1/audit``: login for a bearer token; the access trail."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from callvault.api.deps import context, principal
from callvault.errors import InvalidInput
from callvault.services.access import Principal
from callvault.services.context import ServiceContext
from callvault.services.manifest import iso

router = APIRouter(tags=["auth"])
Ctx = Annotated[ServiceContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]
LOGIN_TOKEN_TTL = timedelta(hours=12)


class Login(BaseModel):
    username: str = Field(min_length=1, max_length=120)
    password: str = Field(min_length=1, max_length=1024)


@router.post("/auth/token")
async def login(request: Request) -> dict[str, Any]:
    """Exchange username and password (JSON or form) for a 12-hour bearer token."""
    ctx: ServiceContext = request.app.state.ctx
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        try:
            body = Login.model_validate(await request.json())
        except ValueError:
            raise InvalidInput('body must be JSON {"username": ..., "password": ...}') from None
    else:
        form = await request.form()
        username, password = form.get("username"), form.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise InvalidInput("username and password are required")
        body = Login(username=username, password=password)
    from fastapi.concurrency import run_in_threadpool

    remote = request.client.host if request.client else None
    user = await run_in_threadpool(ctx.users.authenticate_password, body.username, body.password, remote)
    token = await run_in_threadpool(ctx.users.create_token, user, user.username, "login", LOGIN_TOKEN_TTL)
    ctx.access_log.record(user, "login")
    return {"access_token": token, "token_type": "bearer", "expires_in": int(LOGIN_TOKEN_TTL.total_seconds())}


class TokenRequest(BaseModel):
    name: str = Field(default="api", min_length=1, max_length=120)
    username: str | None = Field(default=None, description="Admins may issue tokens for other users.")
    ttl_hours: float | None = Field(default=None, gt=0, le=24 * 366)


class TokenRevocation(BaseModel):
    token: str = Field(min_length=1, max_length=200)


@router.post("/tokens", status_code=201)
def create_token(body: TokenRequest, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Issue an API token (shown once; stored only as a hash)."""
    ttl = timedelta(hours=body.ttl_hours) if body.ttl_hours else None
    token = ctx.users.create_token(caller, body.username or caller.username, body.name, ttl)
    return {"token": token, "username": body.username or caller.username, "name": body.name}


@router.post("/tokens/revoke", status_code=204)
def revoke_token(body: TokenRevocation, ctx: Ctx, caller: Caller) -> None:
    """Revoke one of your tokens (admins: anyone's)."""
    ctx.users.revoke_token(caller, body.token)


@router.get("/audit/access-events")
def access_events(
    ctx: Ctx, caller: Caller, recording_id: str | None = None, limit: int = 100
) -> dict[str, Any]:
    events = ctx.access_log.list(caller, recording_id=recording_id, limit=limit)
    return {
        "items": [
            {
                "id": e.id,
                "at": iso(e.at),
                "user": e.username,
                "action": e.action,
                "recording_id": e.recording_id,
                "detail": e.detail,
                "remote_addr": e.remote_addr,
                "outcome": e.outcome,
            }
            for e in events
        ]
    }


@router.get("/me")
def me(caller: Caller) -> dict[str, Any]:
    return {"username": caller.username, "role": caller.role.value, "team_id": caller.team_id}
