"""The SIPREC Session Recording Server (RFC 7866 SRS) user agent server.

Decisions a deployment should know about:

* A request is a recording session when its body has an rs-metadata part
  (with or without ``Require: siprec`` / ``+sip.src``), or when it says
  ``siprec`` in Require/Supported or ``+sip.src``/``src`` in Contact.
  An INVITE without a body is taken as a delayed offer from an SRC (Cisco
  CUCM built-in-bridge does this): we offer two ``recvonly`` streams in the
  200 and the SRC answers in the ACK.
* A plain SDP INVITE with none of those markers is refused with 488 and a
  Warning saying why: a normal phone call sent to the recorder by mistake
  expects two-way audio we would never send.
* Metadata that does not parse does not cost the recording: the call is
  recorded without it (participants unknown, channels by label order).
* ``Require`` with anything but ``siprec`` or ``timer`` → 420 + Unsupported.
  Session timers (RFC 4028) are honoured when asked: the SRC refreshes, and a
  session not refreshed in time is ended with BYE.
* No decodable audio stream → 488; more than ``max_calls`` sessions → 503
  with Retry-After; a re-INVITE while our 2xx is unacknowledged → 491.
* RTP timeout (reported by the media engine, or seen as the media session
  closing on its own) ends the session with a BYE to the SRC.

This module is the shell: listening, routing each request to its handler
and answering refusals. New sessions are in ``invite``, in-dialog requests
in ``in_dialog``, refusals and capabilities in ``refusals``, timers in
``timers``, the SDP we answer with in ``answer``; the state they share is in
``core``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from callvault.runtime.media.engine import MediaEngine
from callvault.runtime.sip.core import ServerCore
from callvault.runtime.sip.in_dialog import DialogHandler
from callvault.runtime.sip.invite import InviteHandler
from callvault.runtime.sip.metrics import count_request
from callvault.runtime.sip.refusals import (
    RETRY_AFTER_SECONDS,
    Refusal,
    capabilities,
    method_refusal,
    refuse,
    refuse_source,
)
from callvault.runtime.sip.sources import SourcePolicy
from callvault.runtime.sip.timers import run_timers
from callvault.runtime.sip.transport import (
    Peer,
    StreamProtocol,
    install_uvloop,
    open_stream,
    open_udp,
    tls_context,
)
from callvault.services.alerts import AlertService
from callvault.services.directory import AgentDirectory
from callvault.services.recording_rule_store import RecordingRuleStore
from callvault.services.recordings import RecordingService
from callvault.services.siprec_session import SiprecSession
from callvault.settings import Settings
from callvault.sip.message import SipRequest, SipResponse, make_response, stamp_received
from callvault.sip.transaction import InviteServerTransaction, ServerTransaction

log = logging.getLogger(__name__)


class SiprecServer:
    def __init__(
        self,
        settings: Settings,
        recordings: RecordingService,
        directory: AgentDirectory,
        media: MediaEngine,
        *,
        clock: Callable[[], float] = time.monotonic,
        rules: RecordingRuleStore | None = None,
        alerts: AlertService | None = None,
    ) -> None:
        self.settings = settings
        self.recordings = recordings
        self.directory = directory
        self.media = media
        self._core = ServerCore(settings, recordings, directory, media, clock, rules, alerts)
        self._invites = InviteHandler(self._core)
        self._dialogs = DialogHandler(self._core)
        self._sources = SourcePolicy(settings.sip_allowed_sources)
        self.transactions = self._core.transactions
        self._ticker: asyncio.Task[None] | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tls: asyncio.Server | None = None
        self.udp_port: int | None = None
        self.tcp_port: int | None = None
        self.tls_port: int | None = None
        self._connections: set[StreamProtocol] = set()
        self._stopping = False
        self.host = settings.sip_host
        # Call-ID -> recording id of recent sessions (demo output, tests, logs); bounded.
        self.recording_ids: dict[str, str] = self._core.recording_ids

    # -- life cycle ----------------------------------------------------------

    async def start(self) -> None:
        """Bind UDP and TCP on ``sip_port`` (0: any free port, the same for both) and TLS if configured."""
        max_size = self.settings.max_sip_message_bytes
        for _attempt in range(20):
            self._udp, udp_port = await open_udp(self, self.host, self.settings.sip_port, max_size)
            try:
                self._tcp, tcp_port = await open_stream(
                    self, self.host, udp_port, max_size, **self._stream_options()
                )
            except OSError:
                self._udp.close()
                if self.settings.sip_port:
                    raise
                continue
            self.udp_port, self.tcp_port = udp_port, tcp_port
            break
        else:
            raise OSError("could not bind UDP and TCP on one free port")
        if self.settings.sip_tls_cert and self.settings.sip_tls_key:
            context = tls_context(
                self.settings.sip_tls_cert, self.settings.sip_tls_key, self.settings.sip_tls_ca or None
            )
            self._tls, self.tls_port = await open_stream(
                self, self.host, self.settings.sip_tls_port, max_size, context, **self._stream_options()
            )
        self._ticker = asyncio.create_task(run_timers(self._core))
        if self._sources.allows_any:
            log.warning(
                "CALLVAULT_SIP_ALLOWED_SOURCES allows any address: anyone reaching the SIP port can record"
            )
        elif not self._sources.allows_non_loopback and self.host not in ("127.0.0.1", "::1", "localhost"):
            log.warning(
                "SIP listens on %s but CALLVAULT_SIP_ALLOWED_SOURCES allows loopback only: "
                "list the SBCs that may record, or every request will be refused with 403",
                self.host,
            )
        log.info("SIPREC server on %s udp/tcp %s tls %s", self.host, self.udp_port, self.tls_port)

    def _stream_options(self) -> dict[str, Any]:
        return {
            "idle_timeout": float(self.settings.sip_tcp_idle_timeout),
            "keep_open": self._carries_call,
            "connections": self._connections,
        }

    def _carries_call(self, peer: Peer) -> bool:
        return any(call.peer is peer for call in self._core.calls.values())

    async def stop(self) -> None:
        """Stop taking calls, BYE and close every open session as interrupted, then stop listening.

        New TCP/TLS connections are refused at once and new INVITEs answered
        503, but the sockets stay open until every BYE is sent: the BYE of a
        call travels where its INVITE came from.
        """
        self._stopping = True
        for server in (self._tcp, self._tls):
            if server is not None:
                server.close()
        calls = list(self._core.calls.values())
        if calls:
            log.info("stopping: ending %d open call(s) with BYE", len(calls))
        await asyncio.gather(
            *(self._core.end_call(call, "interrupted", send_bye=True) for call in calls),
            return_exceptions=True,
        )
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        while self._core.tasks:
            await asyncio.gather(*list(self._core.tasks), return_exceptions=True)
        if self._udp is not None:
            self._udp.close()
        for connection in list(self._connections):
            connection.close()
        for server in (self._tcp, self._tls):
            if server is not None:
                await server.wait_closed()

    @staticmethod
    def use_uvloop() -> bool:
        return install_uvloop()

    def listening(self) -> dict[str, str]:
        """Each SIP transport's state for the health pages: ``listening on <port>``, ``closed``,
        or ``not configured`` (TLS without a certificate)."""
        udp = self._udp is not None and not self._udp.is_closing()
        states = {
            "udp": f"listening on {self.udp_port}" if udp else "closed",
            "tcp": f"listening on {self.tcp_port}" if self._tcp and self._tcp.is_serving() else "closed",
        }
        if self._tls is None:
            states["tls"] = "not configured"
        else:
            states["tls"] = f"listening on {self.tls_port}" if self._tls.is_serving() else "closed"
        return states

    @property
    def active_calls(self) -> int:
        return len(self._core.calls)

    # -- entry point from the transports ---------------------------------------

    def handle(self, message: SipRequest | SipResponse, peer: Peer) -> None:
        if isinstance(message, SipResponse):
            return  # responses to our BYEs: nothing depends on them
        core = self._core
        request = message
        if not self._sources.allows(peer.host):
            refuse_source(self._sources, request, peer)
            return
        request.validate()
        count_request(request.method)
        stamp_received(request, peer.host, peer.port)
        transaction = core.transactions.match(request)
        if transaction is not None:
            core.send(peer, transaction.receive(request))
            return
        if request.method == "ACK":
            self._dialogs.on_ack(request)
            return
        if request.method == "CANCEL":
            self._dialogs.on_cancel(request, peer)
            return
        transaction = core.transactions.create(request, reliable=peer.reliable)
        transaction.context = peer
        try:
            self._route(request, transaction, peer)
        except Refusal as refusal:
            refuse(core, transaction, refusal)
        core.wake.set()

    def _route(self, request: SipRequest, transaction: ServerTransaction, peer: Peer) -> None:
        method = request.method
        if method == "OPTIONS":
            self._core.final(transaction, 200, headers=capabilities())
        elif method == "INVITE" and self._stopping and not request.to_addr.tag:
            raise Refusal(503, "recorder shutting down", [("Retry-After", str(RETRY_AFTER_SECONDS))])
        elif method == "INVITE":
            assert isinstance(transaction, InviteServerTransaction)
            self._core.send(peer, transaction.respond(make_response(request, 100)))
            if request.to_addr.tag:
                self._dialogs.on_reinvite(request, transaction)
            else:
                self._invites.on_invite(request, transaction, peer)
        elif method == "BYE":
            self._dialogs.on_bye(request, transaction)
        elif method == "UPDATE":
            self._dialogs.on_update(request, transaction)
        else:
            raise method_refusal(method)

    def on_metadata(self, listener: Callable[[str, SiprecSession], None]) -> None:
        """``listener(recording id, session)`` on the event loop when a live call's metadata arrives."""
        self._core.metadata_listeners.append(listener)

    async def on_rtp_timeout(self, recording_id: str) -> None:
        """Media engine callback: no RTP for ``rtp_timeout`` seconds."""
        call = self._core.by_recording.get(recording_id)
        if call is None:
            # A session whose call the SIP side no longer holds (stop, a failed answer).
            await self.media.close(recording_id, "complete")
            return
        await self._core.end_call(call, "complete", send_bye=True)
