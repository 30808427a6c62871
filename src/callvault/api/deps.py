"""Request-scoped dependencies: the service context and the authenticated principal."""

from __future__ import annotations

from fastapi import Request

from callvault.errors import AuthenticationFailed
from callvault.services.access import Principal
from callvault.services.context import ServiceContext


def context(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def principal(request: Request) -> Principal:
    """Authenticate ``Authorization: Bearer <token>``; everything but health and login needs it."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed(
            "missing bearer token (POST /api/v1/auth/token or `callvault admin create-token`)"
        )
    remote = request.client.host if request.client else None
    return context(request).users.authenticate_token(token.strip(), remote_addr=remote)
