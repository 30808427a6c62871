"""serve signs the audit log's head on its schedule and once more at shutdown."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from sqlalchemy import func, select

from callvault.cli.serve import running_server
from callvault.db.models import AccessEvent, AuditCheckpoint
from callvault.services.context import ServiceContext, open_context
from tests.conftest import make_settings
from tests.support.people import ADMIN


def _head_and_signed(ctx: ServiceContext) -> tuple[int, int]:
    with ctx.catalog.read() as session:
        head = session.scalar(select(func.max(AccessEvent.seq))) or 0
        signed = session.scalar(select(func.max(AuditCheckpoint.seq))) or 0
    return int(head), int(signed)


async def test_checkpoints_while_serving_and_at_shutdown(data_dir: Path, database_url: str) -> None:
    settings = make_settings(
        data_dir, database_url, sip_port="0", http_port="0", audit_checkpoint_seconds="1"
    )
    ctx = open_context(settings)
    try:
        async with running_server(settings, ctx=ctx, first_admin=False):
            ctx.access_log.record(ADMIN, "search", detail="before the scheduled checkpoint")
            deadline = time.monotonic() + 20
            while True:
                head, signed = _head_and_signed(ctx)
                if signed >= head:
                    break
                assert time.monotonic() < deadline, f"no checkpoint of seq {head} while serving"
                await asyncio.sleep(0.1)
            ctx.access_log.record(ADMIN, "search", detail="just before shutdown")
        head, signed = _head_and_signed(ctx)
        assert signed == head
        # The first start recorded its settings.
        with ctx.catalog.read() as session:
            assert session.scalar(select(AccessEvent.detail).where(AccessEvent.action == "settings_change"))
    finally:
        ctx.close()


def test_settings_changed_between_starts_are_audited_by_name(
    ctx: ServiceContext, data_dir: Path, database_url: str
) -> None:
    from callvault.services.start_audit import audit_settings_at_start

    first = audit_settings_at_start(ctx.catalog, ctx.access_log, ctx.settings)
    assert "sip_allowed_sources" in first
    assert audit_settings_at_start(ctx.catalog, ctx.access_log, ctx.settings) == []
    changed = make_settings(
        data_dir, database_url, sip_allowed_sources="any", http_port="0", sip_port="0", job_workers="0"
    )
    assert audit_settings_at_start(ctx.catalog, ctx.access_log, changed) == ["sip_allowed_sources"]
    with ctx.catalog.read() as session:
        details = list(
            session.scalars(select(AccessEvent.detail).where(AccessEvent.action == "settings_change"))
        )
    assert details[-1] == "changed: sip_allowed_sources" and "0.0.0.0" not in details[-1]
