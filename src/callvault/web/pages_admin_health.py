"""``/admin/health``: the system's health in one page, for administrators.

What is checked each time the page is shown (cheap): the catalog answers a
query (and how fast), the audio store takes a write, a read and a delete of a
probe object, the free space under the data directory, and the running
server's own figures (``/healthz``'s details: SIP per transport, open calls,
finalisation backlog, capture and render workers, anything degraded). The
audit chain's size and last signed checkpoint come from the catalog.

What is checked on demand (a button, CSRF-protected, as it reads every entry
or every recording's audio): the whole audit chain (``AuditVerifier``, as
``callvault audit verify``) and the integrity of the newest recordings
(``IntegrityService.verify``). Both are audited (``audit_verify``, ``verify``).
"""

from __future__ import annotations

import shutil
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import func, select

from callvault.db.models import AccessEvent, AuditCheckpoint, Recording
from callvault.errors import InvalidInput
from callvault.services.access import Action, Principal, require
from callvault.services.audit_verify import AuditVerifier
from callvault.services.context import ServiceContext
from callvault.web.render import page
from callvault.web.session import check_csrf, field, read_form, web_principal

router = APIRouter(include_in_schema=False)
Caller = Annotated[Principal, Depends(web_principal)]
NEWEST = 20  # recordings the on-demand integrity check covers


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def _catalog(ctx: ServiceContext) -> dict[str, Any]:
    started = time.perf_counter()
    ok = ctx.catalog.ping()
    return {"ok": ok, "ms": round(1000 * (time.perf_counter() - started), 1)}


def _storage(ctx: ServiceContext) -> dict[str, Any]:
    """A probe object written, read back and deleted: the store takes writes now."""
    key = f"health-probe/{uuid.uuid4().hex}"
    try:
        ctx.blobs.put(key, b"callvault health probe")
        writable = ctx.blobs.get(key) == b"callvault health probe"
        ctx.blobs.delete(key)
        problem = "" if writable else "the probe read back differently"
    except Exception as exc:  # any failure of the store is the finding, not a crash of the page
        writable, problem = False, f"{type(exc).__name__}: {str(exc)[:200]}"
    usage = shutil.disk_usage(ctx.settings.data_dir)
    return {
        "describe": ctx.blobs.describe(),
        "writable": writable,
        "problem": problem,
        "free_gb": round(usage.free / 2**30, 1),
        "used_percent": round(100 * usage.used / usage.total, 1) if usage.total else 0.0,
    }


def _audit_chain(ctx: ServiceContext) -> dict[str, Any]:
    with ctx.catalog.read() as session:
        entries = session.scalar(select(func.count()).select_from(AccessEvent)) or 0
        head = session.scalar(select(func.max(AccessEvent.seq)))
        signed = session.scalar(select(func.max(AuditCheckpoint.seq)))
    return {"entries": int(entries), "head": head, "signed": signed, "unsigned": (head or 0) - (signed or 0)}


def _health_page(request: Request, caller: Principal, status_code: int = 200, **values: Any) -> Response:
    ctx = _ctx(request)
    health_extra = request.app.state.health_extra
    server = dict(health_extra()) if health_extra else {}
    return page(
        request,
        "admin_health.html",
        status_code,
        catalog=_catalog(ctx),
        storage=_storage(ctx),
        server=server,
        audit=_audit_chain(ctx),
        newest=NEWEST,
        **values,
    )


@router.get("/admin/health")
def health(request: Request, caller: Caller) -> Response:
    require(caller, Action.USER_MANAGE)
    return _health_page(request, caller)


@router.post("/admin/health")
async def check(request: Request, caller: Caller) -> Response:
    """``check=audit``: walk the audit chain; ``check=integrity``: verify the newest recordings."""
    require(caller, Action.USER_MANAGE)
    form = await read_form(request)
    check_csrf(request, field(form, "csrf"))
    ctx, what = _ctx(request), field(form, "check")
    if what == "audit":
        verifier = AuditVerifier(ctx.catalog, ctx.signer, ctx.audit_log)
        report = await run_in_threadpool(verifier.verify, caller)
        outcome = "ok" if report.ok else "failed"
        detail = f"{report.entries} entries, {len(report.problems)} problems"
        await run_in_threadpool(ctx.access_log.record, caller, "audit_verify", None, detail, outcome)
        return _health_page(request, caller, audit_report=report)
    if what == "integrity":
        results = await run_in_threadpool(_verify_newest, ctx, caller)
        return _health_page(request, caller, integrity=results)
    raise InvalidInput("check: audit or integrity")


def _verify_newest(ctx: ServiceContext, caller: Principal) -> list[Any]:
    with ctx.catalog.read() as session:
        ids = list(
            session.scalars(
                select(Recording.id)
                .where(Recording.status.in_(("complete", "incomplete", "interrupted")))
                .order_by(Recording.started_at.desc())
                .limit(NEWEST)
            )
        )
    return ctx.integrity.verify(caller, ids)
