"""Rendering pages: the Jinja2 environment, the page policy, common values every page gets.

Every page carries a Content-Security-Policy that allows scripts, styles,
images, audio and fetches from callvault itself and nothing inline: a value
that slipped past escaping still could not run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from callvault import __version__
from callvault.services.access import Action, Principal, allowed
from callvault.services.web_sessions import csrf_token

HERE = Path(__file__).parent
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# same-origin, not the API's no-referrer: with no-referrer the browser sends "Origin: null" on
# this site's own form posts, which the CSRF check must refuse.
PAGE_HEADERS = {"Content-Security-Policy": PAGE_POLICY, "Referrer-Policy": "same-origin"}
_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _when(iso: str | None) -> str:
    return iso.replace("T", " ").replace("Z", " UTC")[:23] if iso else "–"


_env.filters["clock"] = _clock
_env.filters["when"] = _when


def may(principal: Principal | None, action: Action) -> bool:
    return principal is not None and allowed(principal, action) is not None


def page(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    caller: Principal | None = getattr(request.state, "principal", None)
    token: str | None = getattr(request.state, "session_token", None)
    html = _env.get_template(template).render(
        request=request,
        me=caller,
        csrf=csrf_token(token) if token else getattr(request.state, "login_csrf", ""),
        may=lambda action: may(caller, Action(action)),
        version=__version__,
        path=request.url.path,
        **values,
    )
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)
