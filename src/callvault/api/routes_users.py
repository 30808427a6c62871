"""``/api/v1/users``: accounts and their tokens (admins; a user may see and revoke their own tokens)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path

from callvault.api.deps import context, principal
from callvault.errors import InvalidInput
from callvault.services.access import Principal
from callvault.services.context import ServiceContext
from callvault.services.manifest import iso
from callvault.services.user_edit import UserEdit
from callvault.services.users import UserInfo

router = APIRouter(prefix="/users", tags=["users"])
Ctx = Annotated[ServiceContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]
Username = Annotated[str, Path(min_length=1, max_length=120)]
# Larger ids cannot exist (64-bit keys); refusing them early answers 400, not a driver overflow.
TokenId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _user_json(u: UserInfo) -> dict[str, Any]:
    return {
        "username": u.username,
        "role": u.role,
        "team": u.team,
        "sip_identities": u.sip_identities,
        "disabled": u.disabled,
        "must_record": u.must_record,
    }


@router.get("")
def list_users(ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return {"items": [_user_json(u) for u in ctx.users.list_users(caller)]}


@router.patch("/{username}")
def update_user(
    username: Username,
    ctx: Ctx,
    caller: Caller,
    body: Annotated[
        dict[str, Any],
        Body(
            examples=[
                {"must_record": True},
                {"role": "supervisor", "team": "east", "sip_identities": ["1001"]},
            ]
        ),
    ],
) -> dict[str, Any]:
    """Any of ``role``, ``team`` (``""`` or null: no team), ``sip_identities`` (the whole list:
    identities left out are removed) and ``must_record`` (regulated staff, whose calls no
    recording rule may leave unrecorded; a call of theirs that is not recorded, or recorded
    incomplete, raises an alert). Audited as ``user_update`` / ``user_must_record``."""
    unknown = set(body) - {"must_record", "role", "team", "sip_identities"}
    if unknown or not body:
        raise InvalidInput("body: any of role, team, sip_identities, must_record")
    value = body.get("must_record")
    if "must_record" in body and not isinstance(value, bool):
        raise InvalidInput("must_record: true or false")
    role, team, identities = body.get("role"), body.get("team", ...), body.get("sip_identities")
    if role is not None and not isinstance(role, str):
        raise InvalidInput("role: a role name")
    if team is not ... and team is not None and not isinstance(team, str):
        raise InvalidInput("team: a team name, or null for none")
    if identities is not None and (
        not isinstance(identities, list) or not all(isinstance(i, str) for i in identities)
    ):
        raise InvalidInput("sip_identities: a list of AORs, extensions or numbers")
    edit = UserEdit(role, None if team is ... else (team or ""), identities)
    info = ctx.users.update_user(caller, username, edit)
    if isinstance(value, bool):
        info = ctx.users.set_must_record(caller, username, value)
    return _user_json(info)


@router.post("/{username}/disable", status_code=204)
def disable_user(username: Username, ctx: Ctx, caller: Caller) -> None:
    """Disable an account: its password and all its tokens stop working at once."""
    ctx.users.set_disabled(caller, username, True)


@router.post("/{username}/enable", status_code=204)
def enable_user(username: Username, ctx: Ctx, caller: Caller) -> None:
    ctx.users.set_disabled(caller, username, False)


@router.get("/{username}/tokens")
def list_tokens(username: Username, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """The user's tokens, newest first: id, name, created, expiry, revoked (never the token)."""
    return {
        "items": [
            {
                "id": t.id,
                "name": t.name,
                "created_at": iso(t.created_at),
                "expires_at": iso(t.expires_at),
                "revoked_at": iso(t.revoked_at),
                "active": t.active,
            }
            for t in ctx.users.list_tokens(caller, username)
        ]
    }


@router.delete("/{username}/tokens/{token_id}", status_code=204)
def revoke_token(username: Username, token_id: TokenId, ctx: Ctx, caller: Caller) -> None:
    ctx.users.revoke_user_token(caller, username, token_id)
