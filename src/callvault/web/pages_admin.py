"""``/admin`` (users, teams, roles, SIP identities, API tokens, key rotation, health) and ``/audit``.

The overview lists the users (each with an edit page: role, team, SIP
identities), the tokens of one user, and links to key rotation (with a
confirmation page) and the system health page.

Each action is a form posted with the session's CSRF token to the same
service call the API and CLI make (so it is authorised and audited there);
the page then shows what happened. A token issued here is shown once.
Compliance pages (retention, holds, erasure, alerts, rules, reports) join the
``Compliance`` section as the features that build them land.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from callvault import __version__
from callvault.errors import CallvaultError, InvalidInput
from callvault.services.access import Action, Principal, Role, require
from callvault.services.context import ServiceContext
from callvault.web.render import page
from callvault.web.session import check_csrf, field, read_form, web_principal

router = APIRouter(include_in_schema=False)
Caller = Annotated[Principal, Depends(web_principal)]
COMPLIANCE_SECTIONS = ("Retention", "Legal holds", "Erasure", "Alerts", "Rules", "Reports")


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def _admin_page(request: Request, caller: Principal, status_code: int = 200, **values: object) -> Response:
    ctx = _ctx(request)
    users = ctx.users.list_users(caller)
    selected = request.query_params.get("tokens") or str(values.pop("tokens_of", "") or "")
    tokens = ctx.users.list_tokens(caller, selected) if selected else []
    health_extra = request.app.state.health_extra
    health = {"version": __version__, "catalog": "ok" if ctx.catalog.ping() else "unreachable"}
    if health_extra:
        # The overview shows the flat figures; the health page shows the rest.
        health.update({k: str(v) for k, v in health_extra().items() if not isinstance(v, dict | list)})
    return page(
        request,
        "admin.html",
        status_code,
        users=users,
        teams=sorted({u.team for u in users if u.team}),
        roles=[r.value for r in Role],
        tokens=tokens,
        tokens_of=selected,
        health=health,
        storage=ctx.blobs.describe(),
        sections=COMPLIANCE_SECTIONS,
        **values,
    )


@router.get("/admin")
def admin(request: Request, caller: Caller) -> Response:
    require(caller, Action.USER_MANAGE)
    saved = request.query_params.get("saved", "")[:120]
    return _admin_page(request, caller, notice=f"User {saved} saved." if saved else "")


@router.post("/admin")
async def admin_action(request: Request, caller: Caller) -> Response:
    """One form per action (``action`` field): create_user, disable, enable, issue_token,
    revoke_token. Editing a user, rotating keys (asked first) and system health have
    their own pages (:mod:`.pages_admin_users`, :mod:`.pages_admin_health`)."""
    require(caller, Action.USER_MANAGE)
    form = await read_form(request)
    check_csrf(request, field(form, "csrf"))
    ctx, action, username = _ctx(request), field(form, "action"), field(form, "username").strip()
    notice, issued, status = "", "", 200
    try:
        if action == "create_user":
            identities = [i.strip() for i in field(form, "sip_identities").split(",") if i.strip()]
            await run_in_threadpool(
                ctx.users.create_user,
                caller,
                username,
                field(form, "role"),
                field(form, "team").strip() or None,
                identities,
                field(form, "password") or None,
            )
            notice = f"User {username} created."
        elif action in ("disable", "enable"):
            await run_in_threadpool(ctx.users.set_disabled, caller, username, action == "disable")
            notice = f"User {username} {action}d."
        elif action == "issue_token":
            hours = field(form, "ttl_hours").strip()
            ttl = timedelta(hours=float(hours)) if hours and float(hours) > 0 else None
            name = field(form, "name").strip() or "api"
            result = await run_in_threadpool(ctx.users.issue_token, caller, username, name, ttl)
            issued, notice = (
                result.token,
                f"Token {name} issued for {username}: copy it now, it is shown once.",
            )
        elif action == "revoke_token":
            token_id = field(form, "token_id")
            if not token_id.isdigit():
                raise InvalidInput("token_id: choose a token to revoke")
            await run_in_threadpool(ctx.users.revoke_user_token, caller, username, int(token_id))
            notice = f"Token {token_id} of {username} revoked."
        else:
            raise InvalidInput(f"unknown action {action[:40]!r}")
    except ValueError:
        notice, status = "ttl_hours: a number of hours, e.g. 24", 400
    except CallvaultError as exc:
        notice, status = exc.message, exc.status_code
    return _admin_page(
        request,
        caller,
        status,
        notice=notice,
        failed=status >= 400,
        issued=issued,
        tokens_of=username if action in ("issue_token", "revoke_token") else "",
    )


@router.get("/audit")
def audit(request: Request, caller: Caller) -> Response:
    recording_id = request.query_params.get("recording_id", "").strip()[:36] or None
    events = _ctx(request).access_log.list(caller, recording_id=recording_id, limit=200)
    return page(request, "audit.html", events=events, recording_id=recording_id or "")
