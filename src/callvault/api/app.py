"""The FastAPI application: routes under ``/api/v1``, errors as JSON, health and metrics.

Errors leave through one place: every :class:`CallvaultError` becomes its JSON
body and status; a driver's OperationalError (locked, full or unreachable
catalog) and a full disk (ENOSPC) become JSON 503; anything unexpected becomes
a JSON 500 without internals. A 403 or out-of-scope 404 met by an
authenticated caller is written to the access trail unless the service wrote it.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from callvault import __version__
from callvault.api import (
    routes_analytics,
    routes_assurance,
    routes_auth,
    routes_calls,
    routes_captures,
    routes_comments,
    routes_compliance,
    routes_consent,
    routes_disclosure,
    routes_erasure,
    routes_holds,
    routes_jobs,
    routes_qa,
    routes_qa_library,
    routes_recordings,
    routes_retention,
    routes_rules,
    routes_users,
    routes_webhooks,
)
from callvault.api.deps import optional_principal, principal
from callvault.api.metrics import HTTP_LATENCY, HTTP_REQUESTS, refresh_job_metrics
from callvault.api.security import SecurityHeaders, docs_router, security_headers
from callvault.db.catalog import translate_operational_error
from callvault.errors import (
    AuthenticationFailed,
    CallvaultError,
    CatalogUnavailable,
    StorageFull,
    TooManyAttempts,
)
from callvault.runtime.call_control import CallControl
from callvault.runtime.consent_control import ConsentControl
from callvault.runtime.passive.pcap_import import SealJournal
from callvault.services.access import Role
from callvault.services.audit import current_refusals
from callvault.services.context import ServiceContext

log = logging.getLogger(__name__)
# Returns details for the admin view of /healthz; a list under "degraded"
# names reasons that make the whole service degraded (e.g. disk nearly full).
HealthCheck = Callable[[], dict[str, Any]]
RETRY_AFTER_SECONDS = "5"


def create_app(
    ctx: ServiceContext,
    health_extra: HealthCheck | None = None,
    calls: CallControl | None = None,
    consent: ConsentControl | None = None,
    seal_journal: SealJournal | None = None,
) -> FastAPI:
    """``calls``, ``consent``: the controls of the recorder's live calls (None: a server that records
    none); ``seal_journal``: the media engine's, for capture imports (None: captures answer 409)."""
    app = FastAPI(
        title="callvault",
        version=__version__,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.state.calls = calls if calls is not None else CallControl(ctx, None)
    app.state.consent = consent if consent is not None else ConsentControl(ctx, None, app.state.calls)
    app.state.seal_journal = seal_journal
    app.include_router(routes_recordings.router, prefix="/api/v1")
    app.include_router(routes_auth.router, prefix="/api/v1")
    app.include_router(routes_users.router, prefix="/api/v1")
    app.include_router(routes_compliance.router, prefix="/api/v1")
    app.include_router(routes_retention.router, prefix="/api/v1")
    app.include_router(routes_holds.router, prefix="/api/v1")
    app.include_router(routes_erasure.router, prefix="/api/v1")
    app.include_router(routes_webhooks.router, prefix="/api/v1")
    app.include_router(routes_disclosure.router, prefix="/api/v1")
    app.include_router(routes_calls.router, prefix="/api/v1")
    app.include_router(routes_comments.router, prefix="/api/v1")
    app.include_router(routes_consent.calls_router, prefix="/api/v1")
    app.include_router(routes_consent.router, prefix="/api/v1")
    app.include_router(routes_captures.router, prefix="/api/v1")
    app.include_router(routes_assurance.router, prefix="/api/v1")
    app.include_router(routes_rules.router, prefix="/api/v1")
    app.include_router(routes_qa.router, prefix="/api/v1")
    app.include_router(routes_qa_library.router, prefix="/api/v1")
    app.include_router(routes_analytics.router, prefix="/api/v1")
    app.include_router(routes_jobs.router, prefix="/api/v1")
    app.include_router(docs_router(app, ctx.settings.docs_require_token))
    _install_error_handlers(app, ctx)

    @app.middleware("http")
    async def _measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        HTTP_REQUESTS.labels(request.method, path, str(response.status_code)).inc()
        HTTP_LATENCY.labels(path).observe(time.perf_counter() - started)
        return response

    app.add_middleware(SecurityHeaders)

    @app.get("/healthz", tags=["ops"])
    def healthz(request: Request) -> JSONResponse:
        """``{"status": "ok"|"degraded"}``; with an admin's token also the details."""
        catalog_ok = ctx.catalog.ping()
        reasons = [] if catalog_ok else ["catalog unreachable"]
        details: dict[str, Any] = {
            "version": __version__,
            "catalog": "ok" if catalog_ok else "unreachable",
            "storage": ctx.blobs.describe(),
        }
        if health_extra:
            extra = dict(health_extra())
            reasons.extend(str(r) for r in extra.pop("degraded", []) or [])
            details.update(extra)
        body: dict[str, Any] = {"status": "degraded" if reasons else "ok"}
        caller = optional_principal(request) if catalog_ok else None
        if caller is not None and caller.role is Role.ADMIN:
            body.update(details, degraded=reasons)
        return JSONResponse(body, status_code=503 if reasons else 200)

    @app.get("/metrics", tags=["ops"])
    def metrics(request: Request) -> PlainTextResponse:
        if ctx.settings.metrics_require_token:
            principal(request)
        refresh_job_metrics(ctx.jobs)
        return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)

    return app


def _install_error_handlers(app: FastAPI, ctx: ServiceContext) -> None:
    async def audit_refusal(request: Request, exc: CallvaultError) -> None:
        caller = getattr(request.state, "principal", None)
        refusals = current_refusals()
        if caller is None or exc.status_code not in (403, 404) or (refusals and refusals.recorded):
            return
        recording_id = request.path_params.get("recording_id")
        try:
            await run_in_threadpool(
                ctx.access_log.record,
                caller,
                "refused",
                recording_id if isinstance(recording_id, str) else None,
                f"{request.method} {request.url.path}: {exc.code}",
                "forbidden" if exc.status_code == 403 else "not_found",
            )
        except CallvaultError as failure:
            log.error("could not write a refusal to the access trail: %s", failure.message)

    @app.exception_handler(CallvaultError)
    async def _callvault_error(request: Request, exc: CallvaultError) -> JSONResponse:
        headers: dict[str, str] = {}
        if isinstance(exc, AuthenticationFailed):
            headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, TooManyAttempts):
            headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, CatalogUnavailable):
            headers["Retry-After"] = RETRY_AFTER_SECONDS
        if exc.status_code >= 500:
            log.error("request failed: %s: %s", exc.code, exc.message)
        await audit_refusal(request, exc)
        return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=headers)

    @app.exception_handler(OperationalError)
    async def _database_error(request: Request, exc: OperationalError) -> JSONResponse:
        # Normally translated inside Catalog; this catches one that escaped a session.
        return await _callvault_error(request, translate_operational_error(exc))

    @app.exception_handler(OSError)
    async def _os_error(request: Request, exc: OSError) -> JSONResponse:
        if exc.errno == errno.ENOSPC:
            return await _callvault_error(
                request, StorageFull("no space left on the server's disk; retry later")
            )
        return _internal_error(request, exc)

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

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _internal_error(request, exc)


def _internal_error(request: Request, exc: BaseException) -> JSONResponse:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    # Answered outside the middleware stack, so the security headers are added here.
    headers = security_headers(request.url.path, request.url.scheme == "https")
    return JSONResponse(
        {"error": "internal_error", "detail": "internal error; see the server log"},
        status_code=500,
        headers=headers,
    )
