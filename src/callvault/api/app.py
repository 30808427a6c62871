"""The FastAPI application: routes under ``/api/v1``, errors as JSON, health and metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from callvault import __version__
from callvault.api import routes_auth, routes_recordings
from callvault.api.metrics import HTTP_LATENCY, HTTP_REQUESTS
from callvault.errors import AuthenticationFailed, CallvaultError
from callvault.services.context import ServiceContext

log = logging.getLogger(__name__)
HealthCheck = Callable[[], dict[str, Any]]


def create_app(ctx: ServiceContext, health_extra: HealthCheck | None = None) -> FastAPI:
    app = FastAPI(
        title="callvault",
        version=__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.include_router(routes_recordings.router, prefix="/api/v1")
    app.include_router(routes_auth.router, prefix="/api/v1")

    @app.exception_handler(CallvaultError)
    async def _callvault_error(_request: Request, exc: CallvaultError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthenticationFailed) else None
        if exc.status_code >= 500:
            log.error("request failed: %s: %s", exc.code, exc.message)
        return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors():
            where = ".".join(
                str(part) for part in error.get("loc", ()) if part not in ("query", "body", "form")
            )
            problems.append(f"{where or 'request'}: {error.get('msg', 'invalid')}")
        return JSONResponse({"error": "invalid_input", "detail": "; ".join(problems)}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse({"error": code, "detail": str(exc.detail)}, status_code=exc.status_code)

    @app.middleware("http")
    async def _measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        HTTP_REQUESTS.labels(request.method, path, str(response.status_code)).inc()
        HTTP_LATENCY.labels(path).observe(time.perf_counter() - started)
        return response

    @app.get("/healthz", tags=["ops"])
    def healthz() -> JSONResponse:
        catalog_ok = ctx.catalog.ping()
        body: dict[str, Any] = {
            "status": "ok" if catalog_ok else "degraded",
            "version": __version__,
            "catalog": "ok" if catalog_ok else "unreachable",
            "storage": ctx.blobs.describe(),
        }
        if health_extra:
            body.update(health_extra())
        # The server's own checks (e.g. disk below its free-space reserve) list what is wrong here.
        # Still 200: the server works (API, playback, calls in progress), it only refuses new calls,
        # and a liveness probe restarting it would cut those calls off.
        reasons = body.pop("degraded", [])
        if reasons:
            body["status"] = "degraded"
            body["reasons"] = reasons
        return JSONResponse(body, status_code=200 if catalog_ok else 503)

    @app.get("/metrics", tags=["ops"])
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)

    return app
