"""Security headers on every response, and the OpenAPI pages behind an optional token.

The headers are added by a plain ASGI middleware, so JSON, errors, streamed
audio and the docs page all carry them. Everything the API serves is data, not
a page: the default Content-Security-Policy allows nothing at all. The Swagger
page is the one HTML page; it loads its script and style from the CDN that
FastAPI uses, so its policy allows exactly that.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callvault.api.deps import principal
from callvault.services.access import Principal
from callvault.services.audit import refusal_scope

OPENAPI_URL = "/api/v1/openapi.json"
DOCS_URL = "/api/v1/docs"
_CDN = "https://cdn.jsdelivr.net"
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_POLICY = (
    f"default-src 'none'; script-src 'unsafe-inline' {_CDN}; style-src 'unsafe-inline' {_CDN}; "
    f"img-src data: https://fastapi.tiangolo.com; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
HSTS = "max-age=31536000"


def security_headers(path: str, https: bool) -> dict[str, str]:
    headers = {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": DOCS_POLICY if path == DOCS_URL else API_POLICY,
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
        # Recordings metadata and audio must not linger in shared or browser caches.
        "Cache-Control": "no-store",
    }
    if https:
        headers["Strict-Transport-Security"] = HSTS
    return headers


class SecurityHeaders:
    """ASGI middleware: add :func:`security_headers` (a route's own value wins) and open a
    per-request refusal scope for the access trail."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal_scope()
        extra = security_headers(scope.get("path", ""), scope.get("scheme") == "https")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                added = [
                    (name.lower().encode(), value.encode())
                    for name, value in extra.items()
                    if name.lower().encode() not in present
                ]
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def docs_router(app: FastAPI, require_token: bool) -> APIRouter:
    """``/api/v1/openapi.json`` and ``/api/v1/docs``, behind a bearer token when ``require_token``."""

    def no_token() -> None:
        return None

    def any_role(caller: Annotated[Principal, Depends(principal)]) -> None:
        return None

    guard = any_role if require_token else no_token
    router = APIRouter(include_in_schema=False, dependencies=[Depends(guard)])

    @router.get(OPENAPI_URL)
    def openapi() -> JSONResponse:
        spec: dict[str, Any] = app.openapi()
        return JSONResponse(spec)

    @router.get(DOCS_URL)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=OPENAPI_URL, title="callvault API")

    return router
