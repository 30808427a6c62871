"""``callvault serve``: the composition root of the running server.

One event loop (uvloop when installed) carries the HTTP API (uvicorn), the
SIPREC signalling server and the media engine. Start order: catalog and
migrations, first-start admin, media engine (which finalises whatever a
previous run left in the spool as ``interrupted``), SIP, HTTP. Stop order is
the reverse, so calls in progress are finished and sealed before exit.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import uvicorn

from callvault.api.app import create_app
from callvault.services.context import open_context
from callvault.settings import Settings

log = logging.getLogger("callvault")


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def run_server(settings: Settings) -> None:
    _configure_logging(settings.log_level)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        pass
    asyncio.run(_serve(settings))


async def _serve(settings: Settings) -> None:
    from callvault.runtime.media.engine import MediaEngine
    from callvault.runtime.sip.server import SiprecServer

    ctx = await asyncio.to_thread(open_context, settings)
    password = await asyncio.to_thread(ctx.users.ensure_initial_admin)
    if password:
        # Printed once, on the first start only; never logged.
        sys.stdout.write(
            "\n  First start: created user 'admin' with one-time password:\n\n"
            f"      {password}\n\n"
            "  Get an API token:  curl -s -d username=admin -d password=... "
            f"http://{settings.http_host}:{settings.http_port}/api/v1/auth/token\n\n"
        )
        sys.stdout.flush()
    sip: SiprecServer | None = None

    async def rtp_timeout(recording_id: str) -> None:
        if sip is not None:
            await sip.on_rtp_timeout(recording_id)

    media = MediaEngine(settings, ctx.recordings, ctx.directory, on_timeout=rtp_timeout)
    await media.start()
    if settings.sip_port:
        sip = SiprecServer(settings, ctx.recordings, ctx.directory, media)
        await sip.start()

    def health() -> dict[str, Any]:
        return {"sip": "listening" if sip else "disabled", **media.health()}

    app = create_app(ctx, health_extra=health)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        lifespan="off",
        access_log=False,
    )
    server = uvicorn.Server(config)
    log.info(
        "callvault serving HTTP on %s:%d, SIP on %s:%s, data in %s",
        settings.http_host,
        settings.http_port,
        settings.sip_host,
        settings.sip_port or "-",
        settings.data_dir,
    )
    try:
        await server.serve()
    finally:
        if sip is not None:
            await sip.stop()
        await media.stop()
        ctx.close()
        log.info("callvault stopped")
