"""The application ``callvault serve`` runs: the API plus the web UI, on one port.

The web routes answer HTML; their errors become pages (with the status the
API would give, and after the API's own handling, so refusals still reach the
access trail); a request without a session is sent to the sign-in form, or
answered 401 when it asked for data rather than a page.
"""

from __future__ import annotations

import inspect
from datetime import timedelta

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from callvault.api.app import HealthCheck
from callvault.api.app import create_app as create_api_app
from callvault.errors import CallvaultError
from callvault.runtime.call_control import CallControl
from callvault.runtime.consent_control import ConsentControl
from callvault.runtime.passive.pcap_import import SealJournal
from callvault.services.context import ServiceContext
from callvault.services.web_sessions import WebSessions
from callvault.web import (
    pages_admin,
    pages_admin_health,
    pages_admin_users,
    pages_auth,
    pages_live,
    pages_qa,
    pages_qa_calibration,
    pages_qa_coach,
    pages_qa_library,
    pages_qa_manage,
    pages_recordings,
)
from callvault.web.render import HERE, page
from callvault.web.session import PasswordChangeDue, SignInRequired, sign_in_location

_API_PATHS = ("/api/", "/healthz", "/metrics")


def create_app(
    ctx: ServiceContext,
    health_extra: HealthCheck | None = None,
    calls: CallControl | None = None,
    consent: ConsentControl | None = None,
    seal_journal: SealJournal | None = None,
) -> FastAPI:
    """The API (same arguments as :func:`callvault.api.app.create_app`) with the web UI on it."""
    app = create_api_app(
        ctx, health_extra=health_extra, calls=calls, consent=consent, seal_journal=seal_journal
    )
    settings = ctx.settings
    app.state.web_sessions = WebSessions(
        ctx.catalog,
        ctx.users,
        ctx.access_log,
        idle_timeout=timedelta(minutes=settings.web_idle_minutes),
        lifetime=timedelta(hours=settings.web_session_hours),
    )
    app.state.health_extra = health_extra
    app.include_router(pages_auth.router)
    app.include_router(pages_recordings.router)
    app.include_router(pages_live.router)
    app.include_router(pages_admin.router)
    app.include_router(pages_admin_users.router)
    app.include_router(pages_admin_health.router)
    app.include_router(pages_qa_manage.router)  # before pages_qa_calibration: /qa/calibrations/new
    app.include_router(pages_qa_coach.router)
    app.include_router(pages_qa.router)
    app.include_router(pages_qa_library.router)
    app.include_router(pages_qa_calibration.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _install_page_errors(app)
    return app


def _wants_page(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _install_page_errors(app: FastAPI) -> None:
    api_handler = app.exception_handlers[CallvaultError]

    async def callvault_error(request: Request, exc: Exception) -> Response:
        answer = api_handler(request, exc)
        if inspect.isawaitable(answer):
            answer = await answer
        assert isinstance(answer, Response)
        if request.url.path.startswith(_API_PATHS) or not _wants_page(request):
            return answer
        assert isinstance(exc, CallvaultError)
        return page(request, "error.html", exc.status_code, error=exc)

    async def sign_in_required(request: Request, exc: Exception) -> Response:
        if not _wants_page(request):
            return JSONResponse(
                {"error": "authentication_failed", "detail": "sign in first"}, status_code=401
            )
        location = sign_in_location(request)
        if isinstance(exc, SignInRequired) and exc.reason:
            location += ("&" if "?" in location else "?") + "reason=expired"
        return RedirectResponse(location, status_code=303)

    async def password_change_due(_request: Request, _exc: Exception) -> Response:
        return RedirectResponse("/account/password", status_code=303)

    app.add_exception_handler(CallvaultError, callvault_error)
    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(PasswordChangeDue, password_change_due)
