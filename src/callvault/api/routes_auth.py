"""``/api/v1/auth``, ``/api/v1/tokens`` and ``/api/v1/audit``: login, password change, tokens, the trail.

Login bodies are small and hostile: they are read with a size cap, every field
is length-checked (4xx, never 500), and no part of a password reaches a log
or an error message.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, ValidationError

from callvault.api.deps import any_principal, client_address, context, principal
from callvault.errors import InvalidInput, PayloadTooLarge
from callvault.services.access import Principal
from callvault.services.context import ServiceContext
from callvault.services.manifest import iso
from callvault.services.passwords import MAX_PASSWORD_LENGTH

router = APIRouter(tags=["auth"])
Ctx = Annotated[ServiceContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]
LOGIN_TOKEN_TTL = timedelta(hours=12)
MAX_LOGIN_BODY = 16 * 1024


class Login(BaseModel):
    username: str = Field(min_length=1, max_length=120)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)
    new_password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


def _field_problems(exc: ValidationError) -> str:
    # Only field names and rules: pydantic's input echo would carry the password.
    return "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())) or 'body'}: {e.get('msg', 'invalid')}"
        for e in exc.errors(include_input=False, include_url=False)
    )


async def _small_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_LOGIN_BODY:
        raise PayloadTooLarge(f"body larger than {MAX_LOGIN_BODY} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_LOGIN_BODY:
            raise PayloadTooLarge(f"body larger than {MAX_LOGIN_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _credentials(request: Request, model: type[BaseModel]) -> Any:
    """Parse JSON, urlencoded or multipart form fields into ``model`` (400/413 on anything odd)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fields: Any
    if content_type == "multipart/form-data":
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_LOGIN_BODY:
            raise PayloadTooLarge(f"body larger than {MAX_LOGIN_BODY} bytes")
        form = await request.form(max_files=0, max_fields=8, max_part_size=MAX_LOGIN_BODY)
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
    else:
        body = await _small_body(request)
        try:
            if content_type == "application/json":
                fields = json.loads(body)
            else:
                fields = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput(
                "body must be JSON or a form with the fields " + ", ".join(model.model_fields)
            ) from None
    if not isinstance(fields, dict):
        raise InvalidInput("body must be an object with the fields " + ", ".join(model.model_fields))
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise InvalidInput(_field_problems(exc)) from None


@router.post("/auth/token")
async def login(request: Request) -> dict[str, Any]:
    """Exchange username and password (JSON or form) for a 12-hour bearer token.

    Failures are throttled per username and client address (429 with
    Retry-After while locked) and written to the access trail."""
    ctx: ServiceContext = request.app.state.ctx
    body: Login = await _credentials(request, Login)
    remote = client_address(request)
    user = await run_in_threadpool(ctx.users.authenticate_password, body.username, body.password, remote)
    issued = await run_in_threadpool(ctx.users.issue_token, user, user.username, "login", LOGIN_TOKEN_TTL)
    await run_in_threadpool(ctx.access_log.record, user, "login")
    answer: dict[str, Any] = {
        "access_token": issued.token,
        "token_type": "bearer",
        "expires_in": int(min(LOGIN_TOKEN_TTL, ctx.users.policy.token_max_lifetime).total_seconds()),
    }
    if user.must_change_password:
        answer["password_change_required"] = True
    return answer


@router.post("/auth/password", status_code=204)
async def change_password(request: Request) -> None:
    """Change your own password: ``{"current_password", "new_password"}``.

    The one call a first-start admin's token may make before its password is changed."""
    ctx: ServiceContext = request.app.state.ctx
    caller = await run_in_threadpool(any_principal, request)
    body: PasswordChange = await _credentials(request, PasswordChange)
    await run_in_threadpool(ctx.users.change_own_password, caller, body.current_password, body.new_password)


class TokenRequest(BaseModel):
    name: str = Field(default="api", min_length=1, max_length=120)
    username: str | None = Field(
        default=None, max_length=120, description="Admins may issue tokens for other users."
    )
    ttl_hours: float | None = Field(default=None, gt=0, le=24 * 366)


class TokenRevocation(BaseModel):
    token: str = Field(min_length=1, max_length=200)


@router.post("/tokens", status_code=201)
def create_token(body: TokenRequest, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Issue an API token (shown once; stored only as a hash); its lifetime is at most the maximum."""
    ttl = timedelta(hours=body.ttl_hours) if body.ttl_hours else None
    username = body.username or caller.username
    issued = ctx.users.issue_token(caller, username, body.name, ttl)
    return {
        "token": issued.token,
        "username": username,
        "name": body.name,
        "expires_at": iso(issued.expires_at),
    }


@router.post("/tokens/revoke", status_code=204)
def revoke_token(body: TokenRevocation, ctx: Ctx, caller: Caller) -> None:
    """Revoke one of your tokens (admins: anyone's)."""
    ctx.users.revoke_token(caller, body.token)


@router.get("/audit/access-events")
def access_events(
    ctx: Ctx,
    caller: Caller,
    recording_id: Annotated[str | None, Query(max_length=36)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
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
