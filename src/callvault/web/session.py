"""The signed-in user of a page: the session cookie, CSRF checks, and the sign-in redirect.

The cookie is HttpOnly (scripts never see the session), SameSite=Lax (sent when
a bookmarked or shared link is followed, never with another site's form post)
and Secure when callvault speaks HTTPS. Every state-changing request also
carries the session's CSRF token (a form field or the ``X-CSRF-Token`` header)
and, when the browser names it, an ``Origin`` of this server.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from callvault.api.deps import client_address
from callvault.errors import AuthenticationFailed, PayloadTooLarge, PermissionDenied
from callvault.services.access import Principal
from callvault.services.web_sessions import WebSessions, csrf_token

SESSION_COOKIE = "callvault_session"
LOGIN_CSRF_COOKIE = "callvault_login_csrf"
MAX_FORM_FIELDS = 32
MAX_FIELD_BYTES = 16 * 1024
MAX_FORM_BYTES = 64 * 1024


class SignInRequired(Exception):
    """No valid session: pages redirect to the sign-in form, data requests answer 401."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


class PasswordChangeDue(Exception):
    """The account still has its one-time password: only the password page is open to it."""


def sessions(request: Request) -> WebSessions:
    found: WebSessions = request.app.state.web_sessions
    return found


def web_principal(request: Request) -> Principal:
    """The caller of every page but sign-in (a FastAPI dependency)."""
    caller = any_web_principal(request)
    if caller.must_change_password:
        raise PasswordChangeDue()
    return caller


def any_web_principal(request: Request) -> Principal:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequired()
    try:
        caller = sessions(request).resume(token, client_address(request))
    except AuthenticationFailed as exc:
        raise SignInRequired(exc.message) from None
    request.state.principal = caller
    request.state.session_token = token
    return caller


def sign_in_location(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login" if target in ("/", "/login") else f"/login?next={quote(target, safe='')}"


def safe_next(value: str | None) -> str:
    """Only a path on this server (no scheme, no host, no ``//``): never an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/recordings"
    parts = urlsplit(value)
    return "/recordings" if parts.scheme or parts.netloc else value


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=is_https(request))


def login_csrf(request: Request) -> str:
    """The sign-in form's token (before there is a session): a random cookie echoed in the form."""
    value = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    request.state.login_csrf = value
    return value


def set_login_csrf_cookie(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE, value, path="/login", httponly=True, samesite="strict", secure=is_https(request)
    )


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    parts = urlsplit(origin)
    return parts.netloc == request.headers.get("host", "") and parts.scheme == request.url.scheme


def check_csrf(request: Request, supplied: str | None, expected: str | None = None) -> None:
    """Refuse (403) a state change without the session's token or from another origin."""
    if expected is None:
        token = getattr(request.state, "session_token", None)
        expected = csrf_token(token) if token else None
    if (
        not expected
        or not supplied
        or not hmac.compare_digest(supplied, expected)
        or not _same_origin(request)
    ):
        raise PermissionDenied("the form expired or came from another site; reload the page and try again")


async def read_form(
    request: Request, max_fields: int = MAX_FORM_FIELDS, max_bytes: int = MAX_FORM_BYTES
) -> FormData:
    """A small urlencoded or multipart form (no files): 4xx on anything larger. The form
    builder's pages allow more fields (one row of inputs per question)."""
    declared = request.headers.get("content-length", "")
    if not declared.isdigit() or int(declared) > max_bytes:
        raise PayloadTooLarge(f"a form must declare its length and be at most {max_bytes} bytes")
    return await request.form(max_files=0, max_fields=max_fields, max_part_size=MAX_FIELD_BYTES)


def field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""
