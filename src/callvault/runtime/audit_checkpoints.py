"""Signing the audit log's head on a schedule while ``serve`` runs, and once at shutdown.

A checkpoint bounds what an intruder with database access can silently cut
off the end of the log: at most the entries since the last one. The signing
is a short catalog write, run in a worker thread so the event loop never waits
on the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from callvault.services.audit_log import AuditLog

log = logging.getLogger(__name__)


async def _every(audit_log: AuditLog, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        await asyncio.to_thread(audit_log.checkpoint_quietly)


@contextlib.asynccontextmanager
async def audit_checkpoints(audit_log: AuditLog, interval: float) -> AsyncIterator[None]:
    """Checkpoint every ``interval`` seconds inside the block, and once more when it ends."""
    task = asyncio.create_task(_every(audit_log, interval), name="audit-checkpoints")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.to_thread(audit_log.checkpoint_quietly)
