"""Request-scoped dependencies: the service context and the authenticated principal.

The principal is also kept on ``request.state`` so that the error handlers
can write a refused attempt (403, out-of-scope 404) to the access trail under
the caller's name.
"""

from __future__ import annotations

from fastapi import Request

from callvault.errors import AuthenticationFailed, CallvaultError, PasswordChangeRequired
from callvault.services.access import Principal
from callvault.services.context import ServiceContext


def context(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def any_principal(request: Request) -> Principal:
    """Authenticate ``Authorization: Bearer <token>``, even an account that must change its password."""
    token = _bearer(request)
    if token is None:
        raise AuthenticationFailed(
            "missing bearer token (POST /api/v1/auth/token or `callvault admin create-token`)"
        )
    caller = context(request).users.authenticate_token(token, remote_addr=client_address(request))
    request.state.principal = caller
    return caller


def principal(request: Request) -> Principal:
    """The caller of every route but health, login and the password change."""
    caller = any_principal(request)
    if caller.must_change_password:
        raise PasswordChangeRequired(
            "this account has a one-time password: choose a new one with POST /api/v1/auth/password"
        )
    return caller


def optional_principal(request: Request) -> Principal | None:
    """The caller if a valid token came along, else None (for pages that show more to some)."""
    if _bearer(request) is None:
        return None
    try:
        return principal(request)
    except CallvaultError:
        return None
