"""``callvault serve``: the composition root of the running server.

One event loop (uvloop) carries the HTTP API (uvicorn), the SIPREC
signalling server and the media engine. :func:`running_server` wires them
together and is the one place that does so: ``callvault serve`` runs it until
SIGTERM or SIGINT, and the end-to-end tests run the very same function on the
same kind of loop (a test that wired the parts itself, on another loop, once
hid that every SIP/TCP connection failed under uvloop).

Start order: catalog and migrations, first-start admin, media engine (which
finalises whatever a previous run left in the spool as ``interrupted``), webhook
delivery, SIP, HTTP. Stop order: SIP stops taking calls (new INVITEs get 503, no new TCP/TLS
connections), every open call gets a BYE and is sealed ``interrupted`` with
its audio, the media engine waits for every seal, then HTTP stops. The stop
is bounded by ``CALLVAULT_STOP_TIMEOUT``: past it the workers are killed and
whatever is unsealed stays in the spool, to be sealed as interrupted at the
next start. A second SIGTERM/SIGINT exits at once (the same outcome).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import uvicorn

from callvault.errors import ConfigError
from callvault.log_format import configure_logging
from callvault.runtime.assurance_sweeper import AssuranceSweeper
from callvault.runtime.audit_checkpoints import audit_checkpoints
from callvault.runtime.call_control import CallControl
from callvault.runtime.consent_control import ConsentControl
from callvault.runtime.jobs.supervisor import JobWorkers, celery_dispatcher
from callvault.runtime.media.engine import MediaEngine
from callvault.runtime.passive.live import LiveCapture
from callvault.runtime.retention_sweeper import RetentionSweeper
from callvault.runtime.sip.server import SiprecServer
from callvault.runtime.sip.transport import install_uvloop
from callvault.runtime.webhooks.delivery import WebhookDispatcher
from callvault.services.context import ServiceContext, open_context
from callvault.services.must_record_alerts import MustRecordAlerts
from callvault.services.start_audit import audit_settings_at_start
from callvault.settings import Settings
from callvault.web.app import create_app

if TYPE_CHECKING:
    from callvault.runtime.jobs.dispatcher import Dispatcher  # Celery is imported only when used

log = logging.getLogger("callvault")

HTTP_GRACE_SECONDS = 5


def _configure_logging(level: str) -> None:
    # Control characters in peer-supplied values are escaped: no forged log lines.
    configure_logging(level)


def http_tls_options(settings: Settings) -> dict[str, str]:
    """uvicorn's certificate options: HTTPS when both CALLVAULT_HTTP_TLS_CERT and _KEY are set."""
    cert, key = settings.http_tls_cert, settings.http_tls_key
    if bool(cert) != bool(key):
        raise ConfigError("set both CALLVAULT_HTTP_TLS_CERT and CALLVAULT_HTTP_TLS_KEY for HTTPS, or neither")
    return {"ssl_certfile": cert, "ssl_keyfile": key} if cert else {}


class _HttpServer(uvicorn.Server):
    """uvicorn without its own signal handling.

    uvicorn catches SIGTERM/SIGINT while it serves and raises them again once
    it has stopped, which killed the process before the SIP server and the
    media engine could BYE and seal open calls. The composition root owns the
    signals instead.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _http_server(settings: Settings, app: Any) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        lifespan="off",
        access_log=False,
        timeout_graceful_shutdown=HTTP_GRACE_SECONDS,
        log_config=None,  # uvicorn's records go through our escaping formatter
        **http_tls_options(settings),  # type: ignore[arg-type]
    )
    return _HttpServer(config)


def _bind_http(settings: Settings) -> socket.socket:
    family = socket.AF_INET6 if ":" in settings.http_host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.http_host, settings.http_port))
    except OSError:
        sock.close()
        raise
    return sock


@dataclass
class RunningServer:
    """What :func:`running_server` started: the parts, and the ports they listen on."""

    settings: Settings
    ctx: ServiceContext
    media: MediaEngine
    sip: SiprecServer | None
    http_port: int
    _http_task: asyncio.Task[None] = field(repr=False)
    # The embedded job worker processes (None: CALLVAULT_JOB_WORKERS=0 or Celery).
    job_workers: JobWorkers | None = None

    async def wait(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set; raises if the HTTP server ended on its own."""
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({stopped, self._http_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if self._http_task.done():
            self._http_task.result()
            raise RuntimeError("the HTTP server stopped unexpectedly")


@contextlib.asynccontextmanager
async def running_server(
    settings: Settings,
    *,
    ctx: ServiceContext | None = None,
    first_admin: bool = True,
    render_executor: Executor | None = None,
    flush_interval: float = 1.0,
    sip_clock: Callable[[], float] = time.monotonic,
    sip_any_port: bool = False,
) -> AsyncIterator[RunningServer]:
    """Start catalog, media engine, SIP and HTTP on the running loop; stop them gracefully on exit.

    The keyword arguments exist for tests: an already open ``ctx`` (left open),
    no first-start admin, a thread pool for rendering, a faster journal flush,
    a SIP clock the test can move, SIP on any free port (``sip_port`` 0 otherwise
    means no SIP). ``settings.http_port`` 0 binds any free port (see
    :attr:`RunningServer.http_port`).
    """
    http_tls_options(settings)  # a half-configured HTTPS is refused before anything starts
    own_ctx = ctx is None
    context = await asyncio.to_thread(open_context, settings) if ctx is None else ctx
    sip: SiprecServer | None = None
    media: MediaEngine | None = None
    live: LiveCapture | None = None
    http: uvicorn.Server | None = None
    http_task: asyncio.Task[None] | None = None
    sweeper = RetentionSweeper(context, float(settings.retention_interval))
    assurance = AssuranceSweeper(context, float(settings.assurance_interval))
    webhooks: WebhookDispatcher | None = None
    jobs: JobWorkers | None = None
    dispatcher: Dispatcher | None = None
    try:
        await asyncio.to_thread(audit_settings_at_start, context.catalog, context.access_log, settings)
        password = await asyncio.to_thread(context.users.ensure_initial_admin) if first_admin else None

        async def rtp_timeout(recording_id: str) -> None:
            if sip is not None:
                await sip.on_rtp_timeout(recording_id)

        media = MediaEngine(
            settings,
            context.recordings,
            on_timeout=rtp_timeout,
            render_executor=render_executor,
            flush_interval=flush_interval,
            disclosure=context.disclosure,
            after_call=MustRecordAlerts(context.catalog, context.alerts).check,
        )
        await media.start()
        if settings.capture_interfaces:  # passive capture (port mirroring), see runtime/passive/live.py
            live = LiveCapture(context, media, settings.capture_interfaces, settings.capture_filter)
            live.start()
        webhooks = WebhookDispatcher(context.webhooks, context.webhook_outbox, settings)
        await webhooks.start()
        if settings.sip_port or sip_any_port:
            sip = SiprecServer(
                settings,
                context.recordings,
                context.directory,
                media,
                clock=sip_clock,
                rules=context.recording_rules,
                alerts=context.alerts,
            )
            await sip.start()
        engine = media

        def health() -> dict[str, Any]:
            return {
                "sip": "listening" if sip else "disabled",
                "sip_transports": sip.listening() if sip else {},
                "finalise_backlog": engine.finalise_backlog,
                "workers": engine.workers(),
                **engine.health(),
            }

        sock = _bind_http(settings)
        http_port = int(sock.getsockname()[1])
        calls = CallControl(context, media)
        consent = ConsentControl(context, media, calls)
        if sip is not None:
            sip.on_metadata(consent.on_metadata)
        app = create_app(
            context, health_extra=health, calls=calls, consent=consent, seal_journal=media.seal_journal
        )
        http = _http_server(settings, app)
        http_task = asyncio.create_task(http.serve(sockets=[sock]))
        while not http.started:
            if http_task.done():
                http_task.result()
                raise RuntimeError("the HTTP server did not start")
            await asyncio.sleep(0.01)
        sweeper.start()
        assurance.start()
        if settings.job_queue == "embedded" and settings.job_workers:
            jobs = JobWorkers(settings, settings.job_workers)
            await jobs.start()
        dispatcher = celery_dispatcher(context)
        if password:
            _announce_admin(password, _scheme(settings), settings.http_host, http_port)
        async with audit_checkpoints(context.audit_log, float(settings.audit_checkpoint_seconds)):
            yield RunningServer(settings, context, media, sip, http_port, http_task, jobs)
    finally:
        if jobs is not None:
            jobs.terminate()  # first: they finish or give back their jobs while the rest stops
        await sweeper.stop()
        if live is not None:
            await live.stop()  # first: the calls it still follows are sealed by the engine's stop
        await assurance.stop()
        await _stop(settings, sip, media, http, http_task)
        if webhooks is not None:
            # Last: events of the calls sealed while stopping are queued for the next start.
            await webhooks.stop()
        if jobs is not None:
            await jobs.stop()
        if dispatcher is not None:
            await asyncio.to_thread(dispatcher.stop)
        if own_ctx:
            context.close()


async def _stop(
    settings: Settings,
    sip: SiprecServer | None,
    media: MediaEngine | None,
    http: uvicorn.Server | None,
    http_task: asyncio.Task[None] | None,
) -> None:
    started = time.monotonic()

    async def drain() -> None:
        if sip is not None:
            await sip.stop()
        if media is not None:
            await media.stop()

    try:
        await asyncio.wait_for(drain(), settings.stop_timeout)
    except TimeoutError:
        log.error(
            "stopping took over %d s (CALLVAULT_STOP_TIMEOUT); ending the workers now: "
            "calls not yet sealed stay in the spool and are sealed as interrupted at the next start",
            settings.stop_timeout,
        )
        if media is not None:
            media.abort()
    if http is not None and http_task is not None:
        http.should_exit = True
        await asyncio.gather(http_task, return_exceptions=True)
    log.info("stopped in %.1f s", time.monotonic() - started)


def _scheme(settings: Settings) -> str:
    return "https" if http_tls_options(settings) else "http"


def _announce_admin(password: str, scheme: str, host: str, port: int) -> None:
    # Printed once, on the first start only; never logged.
    sys.stdout.write(
        "\n  First start: created user 'admin' with one-time password:\n\n"
        f"      {password}\n\n"
        "  It only allows choosing a new password: log in (POST /api/v1/auth/token), then\n"
        "  POST /api/v1/auth/password, or run: callvault admin set-password admin --password-stdin\n"
        f"  API: {scheme}://{host}:{port}/api/v1/docs\n\n"
    )
    sys.stdout.flush()


def run_server(settings: Settings) -> None:
    _configure_logging(settings.log_level)
    install_uvloop()
    asyncio.run(_serve(settings))


async def _serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            # Impatient operator: exit now; the workers die with us and the spool keeps the calls.
            log.warning("%s again: exiting without waiting", name)
            os._exit(128 + signum)
        log.info("%s: stopping (at most %d s)", name, settings.stop_timeout)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    async with running_server(settings) as server:
        log.info(
            "callvault serving %s on %s:%d, SIP on %s:%s, data in %s",
            _scheme(settings).upper(),
            settings.http_host,
            server.http_port,
            settings.sip_host,
            server.sip.udp_port if server.sip else "-",
            settings.data_dir,
        )
        await server.wait(stop)
    log.info("callvault stopped")
