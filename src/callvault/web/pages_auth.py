"""Sign in, sign out, and the one-time password change.

Sign-in goes through the same throttled, audited password check as the API's
login (:meth:`UserService.authenticate_password`): a wrong password is
written to the access trail, and repeated failures lock the username and the
client address out for a while.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from callvault.api.deps import client_address
from callvault.errors import CallvaultError, TooManyAttempts
from callvault.services.access import Principal
from callvault.services.context import ServiceContext
from callvault.services.passwords import MAX_PASSWORD_LENGTH
from callvault.web.render import page
from callvault.web.session import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    any_web_principal,
    check_csrf,
    clear_session_cookie,
    field,
    login_csrf,
    read_form,
    safe_next,
    sessions,
    set_login_csrf_cookie,
    set_session_cookie,
)

router = APIRouter(include_in_schema=False)
AnyCaller = Annotated[Principal, Depends(any_web_principal)]


@router.get("/")
def home(request: Request) -> Response:
    target = "/recordings" if request.cookies.get(SESSION_COOKIE) else "/login"
    return RedirectResponse(target, status_code=303)


def _login_page(request: Request, error: str = "", status_code: int = 200, username: str = "") -> Response:
    value = login_csrf(request)
    response = page(
        request,
        "login.html",
        status_code,
        error=error,
        username=username,
        next=safe_next(request.query_params.get("next")),
        reason=request.query_params.get("reason", ""),
    )
    set_login_csrf_cookie(response, request, value)
    return response


@router.get("/login")
def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await read_form(request)
    username, password = field(form, "username").strip(), field(form, "password")
    check_csrf(request, field(form, "csrf"), request.cookies.get(LOGIN_CSRF_COOKIE))
    if not username or not password or len(username) > 120 or len(password) > MAX_PASSWORD_LENGTH:
        return _login_page(request, "Enter your username and password.", 400, username[:120])
    try:
        token, caller = await run_in_threadpool(
            sessions(request).sign_in, username, password, client_address(request)
        )
    except TooManyAttempts as exc:
        message = f"Too many failed sign-ins. Try again in {exc.retry_after} seconds or ask an administrator."
        return _login_page(request, message, 429, username)
    except CallvaultError:
        return _login_page(request, "Wrong username or password.", 401, username)
    target = "/account/password" if caller.must_change_password else safe_next(field(form, "next"))
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, request, token, int(sessions(request).lifetime.total_seconds()))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await read_form(request)
    caller = await run_in_threadpool(any_web_principal, request)
    check_csrf(request, field(form, "csrf"))
    await run_in_threadpool(sessions(request).sign_out, request.state.session_token, caller)
    response = RedirectResponse("/login?reason=signed_out", status_code=303)
    clear_session_cookie(response, request)
    return response


@router.get("/account/password")
def password_form(request: Request, caller: AnyCaller) -> Response:
    return page(request, "password.html", forced=caller.must_change_password)


@router.post("/account/password")
async def change_password(request: Request) -> Response:
    ctx: ServiceContext = request.app.state.ctx
    form = await read_form(request)
    caller = await run_in_threadpool(any_web_principal, request)
    check_csrf(request, field(form, "csrf"))
    new = field(form, "new_password")
    if new != field(form, "confirm_password"):
        return page(request, "password.html", 400, error="The two new passwords differ.")
    try:
        await run_in_threadpool(ctx.users.change_own_password, caller, field(form, "current_password"), new)
    except CallvaultError as exc:
        return page(request, "password.html", exc.status_code, error=exc.message)
    return RedirectResponse("/recordings", status_code=303)
