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
from callvault.errors import ConfigError
from callvault.log_format import configure_logging
from callvault.services.context import open_context
from callvault.settings import Settings

log = logging.getLogger("callvault")


def _configure_logging(level: str) -> None:
    # Control characters in peer-supplied values are escaped: no forged log lines.
    configure_logging(level)


def http_tls_options(settings: Settings) -> dict[str, str]:
    """uvicorn's certificate options: HTTPS when both CALLVAULT_HTTP_TLS_CERT and _KEY are set."""
    cert, key = settings.http_tls_cert, settings.http_tls_key
    if bool(cert) != bool(key):
        raise ConfigError("set both CALLVAULT_HTTP_TLS_CERT and CALLVAULT_HTTP_TLS_KEY for HTTPS, or neither")
    return {"ssl_certfile": cert, "ssl_keyfile": key} if cert else {}


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

    tls = http_tls_options(settings)
    scheme = "https" if tls else "http"
    ctx = await asyncio.to_thread(open_context, settings)
    password = await asyncio.to_thread(ctx.users.ensure_initial_admin)
    if password:
        # Printed once, on the first start only; never logged.
        sys.stdout.write(
            "\n  First start: created user 'admin' with one-time password:\n\n"
            f"      {password}\n\n"
            "  It only allows choosing a new password: log in (POST /api/v1/auth/token), then\n"
            "  POST /api/v1/auth/password, or run: callvault admin set-password admin --password-stdin\n"
            f"  API: {scheme}://{settings.http_host}:{settings.http_port}/api/v1/docs\n\n"
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
        log_config=None,  # uvicorn's records go through our escaping formatter
        **tls,  # type: ignore[arg-type]
    )
    server = uvicorn.Server(config)
    log.info(
        "callvault serving %s on %s:%d, SIP on %s:%s, data in %s",
        scheme.upper(),
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
