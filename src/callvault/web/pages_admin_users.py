"""``/admin/users/{username}`` (role, team, SIP identities) and ``/admin/keys/rotate`` (with confirmation).

Both are admin pages of the ``/admin`` layout: forms posted with the session's
CSRF token to the service calls the API makes (``UserService.update_user``,
``KeyRotationService.rotate``), which authorise and audit them
(``user_update``, ``key_rotate``). Key rotation asks first: the form on the
confirmation page carries ``confirm=rotate``, and a post without it changes
nothing (400).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from callvault.errors import CallvaultError, InvalidInput, NotFound
from callvault.services.access import Action, Principal, Role, require
from callvault.services.context import ServiceContext
from callvault.services.user_edit import UserEdit
from callvault.services.users import UserInfo
from callvault.web.render import page
from callvault.web.session import check_csrf, field, read_form, web_principal

router = APIRouter(include_in_schema=False)
Caller = Annotated[Principal, Depends(web_principal)]
Username = Annotated[str, Path(min_length=1, max_length=120)]
CONFIRM_ROTATION = "rotate"


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def _user(ctx: ServiceContext, caller: Principal, username: str) -> tuple[UserInfo, list[str]]:
    users = ctx.users.list_users(caller)
    found = [u for u in users if u.username == username]
    if not found:
        raise NotFound(f"user {username!r} not found")
    return found[0], sorted({u.team for u in users if u.team})


def _edit_page(
    request: Request, caller: Principal, username: str, status_code: int = 200, **values: object
) -> Response:
    user, teams = _user(_ctx(request), caller, username)
    return page(
        request,
        "admin_user.html",
        status_code,
        user=user,
        teams=teams,
        roles=[r.value for r in Role],
        **values,
    )


@router.get("/admin/users/{username}")
def edit_user(username: Username, request: Request, caller: Caller) -> Response:
    require(caller, Action.USER_MANAGE)
    return _edit_page(request, caller, username)


@router.post("/admin/users/{username}")
async def save_user(username: Username, request: Request, caller: Caller) -> Response:
    require(caller, Action.USER_MANAGE)
    form = await read_form(request)
    check_csrf(request, field(form, "csrf"))
    lines = field(form, "sip_identities").replace(",", "\n").splitlines()
    edit = UserEdit(
        role=field(form, "role"),
        team=field(form, "team").strip(),
        sip_identities=[line.strip() for line in lines if line.strip()],
    )
    try:
        await run_in_threadpool(_ctx(request).users.update_user, caller, username, edit)
    except CallvaultError as exc:
        return _edit_page(request, caller, username, exc.status_code, notice=exc.message, failed=True)
    return RedirectResponse(f"/admin?saved={username}#users", status_code=303)


@router.get("/admin/keys/rotate")
def confirm_rotation(request: Request, caller: Caller) -> Response:
    require(caller, Action.KEYS_ROTATE)
    return page(request, "admin_rotate.html", confirm=CONFIRM_ROTATION)


@router.post("/admin/keys/rotate")
async def rotate_keys(request: Request, caller: Caller) -> Response:
    require(caller, Action.KEYS_ROTATE)
    form = await read_form(request)
    check_csrf(request, field(form, "csrf"))
    try:
        if field(form, "confirm") != CONFIRM_ROTATION:
            raise InvalidInput("confirm the rotation on this page: nothing was changed")
        rotation = await run_in_threadpool(_ctx(request).key_rotation.rotate, caller)
    except CallvaultError as exc:
        return page(
            request,
            "admin_rotate.html",
            exc.status_code,
            confirm=CONFIRM_ROTATION,
            notice=exc.message,
            failed=True,
        )
    notice = f"New key {rotation.new_kek_id}; {rotation.rewrapped} data keys re-wrapped."
    return page(request, "admin_rotate.html", confirm=CONFIRM_ROTATION, notice=notice, done=True)
