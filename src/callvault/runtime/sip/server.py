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
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from callvault.runtime.media.engine import MediaEngine
from callvault.runtime.media.session import MediaSession
from callvault.runtime.sip.metrics import SIP_CALLS_ACTIVE, count_request, count_response
from callvault.runtime.sip.offer import DELAYED_OFFER_CODECS, StreamPlan, plan_streams
from callvault.runtime.sip.transport import (
    Peer,
    install_uvloop,
    open_stream,
    open_udp,
    tls_context,
)
from callvault.services.call_record import CallEvent
from callvault.services.directory import AgentDirectory
from callvault.services.recordings import RecordingService
from callvault.services.siprec_session import SiprecSession, parse_direction
from callvault.settings import Settings
from callvault.sip.dialog import Dialog, new_tag
from callvault.sip.message import (
    NameAddr,
    SipRequest,
    SipResponse,
    make_response,
    stamp_received,
)
from callvault.sip.metadata import RecordingMetadata
from callvault.sip.sdp import SessionDescription, StreamAnswer, build_answer, build_offer
from callvault.sip.siprec_body import SiprecOffer, is_recording_session, parse_siprec_body
from callvault.sip.transaction import (
    InviteServerTransaction,
    NonInviteServerTransaction,
    OkRetransmitter,
    ServerTransaction,
    TransactionTable,
)

log = logging.getLogger(__name__)

SUPPORTED_OPTIONS = frozenset({"siprec", "timer"})
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE"
ACCEPT = "application/sdp, application/rs-metadata+xml, multipart/mixed"
SERVER_NAME = "callvault-srs"
# Methods RFC 3261 and its extensions define, which we deliberately do not allow (405, not 501).
KNOWN_METHODS = frozenset({"REGISTER", "PRACK", "SUBSCRIBE", "NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE"})
RETRY_AFTER_SECONDS = 30
MIN_SESSION_EXPIRES = 90

CallState = Literal["proceeding", "answered", "confirmed", "ended"]


class Refusal(Exception):
    """A request we answer with an error status and a reason (never escapes the server)."""

    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or []


@dataclass
class RecordingCall:
    call_id: str
    remote_tag: str
    local_tag: str
    invite: SipRequest
    peer: Peer
    session: SiprecSession
    state: CallState = "proceeding"
    recording_id: str | None = None
    media: MediaSession | None = None
    dialog: Dialog | None = None
    ok: OkRetransmitter | None = None
    streams: dict[str, StreamPlan] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)  # local RTP port per stream label
    offer: SessionDescription | None = None
    sdp_version: int = 1
    awaiting_answer: bool = False  # delayed offer: the SRC's answer comes in the ACK
    session_expires: int | None = None
    expires_at: float | None = None
    started_monotonic: float = 0.0


class SiprecServer:
    def __init__(
        self,
        settings: Settings,
        recordings: RecordingService,
        directory: AgentDirectory,
        media: MediaEngine,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.recordings = recordings
        self.directory = directory
        self.media = media
        # Session timers, 2xx retransmission and transaction timers run on this clock.
        self._clock = clock
        self.transactions = TransactionTable(self._clock)
        self._calls: dict[tuple[str, str], RecordingCall] = {}
        self._by_recording: dict[str, RecordingCall] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tls: asyncio.Server | None = None
        self.udp_port: int | None = None
        self.tcp_port: int | None = None
        self.tls_port: int | None = None
        self.host = settings.sip_host
        self._agent_cache: dict[str, int | None] = {}
        # Call-ID -> recording id of recent sessions (demo output, tests, logs); bounded.
        self.recording_ids: dict[str, str] = {}

    # -- life cycle ----------------------------------------------------------

    async def start(self) -> None:
        """Bind UDP and TCP on ``sip_port`` (0: any free port, the same for both) and TLS if configured."""
        max_size = self.settings.max_sip_message_bytes
        for _attempt in range(20):
            self._udp, udp_port = await open_udp(self, self.host, self.settings.sip_port, max_size)
            try:
                self._tcp, tcp_port = await open_stream(self, self.host, udp_port, max_size)
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
            context = tls_context(self.settings.sip_tls_cert, self.settings.sip_tls_key)
            self._tls, self.tls_port = await open_stream(
                self, self.host, self.settings.sip_tls_port, max_size, context
            )
        self._ticker = asyncio.create_task(self._tick_loop())
        log.info("SIPREC server on %s udp/tcp %s tls %s", self.host, self.udp_port, self.tls_port)

    async def stop(self) -> None:
        """Stop listening, end open sessions (BYE, media closed as interrupted)."""
        for call in list(self._calls.values()):
            await self._end_call(call, "interrupted", send_bye=True)
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._udp is not None:
            self._udp.close()
        for server in (self._tcp, self._tls):
            if server is not None:
                server.close()
                await server.wait_closed()

    @staticmethod
    def use_uvloop() -> bool:
        return install_uvloop()

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    # -- entry point from the transports ---------------------------------------

    def handle(self, message: SipRequest | SipResponse, peer: Peer) -> None:
        if isinstance(message, SipResponse):
            return  # responses to our BYEs: nothing depends on them
        request = message
        request.validate()
        count_request(request.method)
        stamp_received(request, peer.host, peer.port)
        transaction = self.transactions.match(request)
        if transaction is not None:
            self._send(peer, transaction.receive(request))
            return
        if request.method == "ACK":
            self._on_ack(request)
            return
        if request.method == "CANCEL":
            self._on_cancel(request, peer)
            return
        transaction = self.transactions.create(request, reliable=peer.reliable)
        transaction.context = peer
        try:
            self._route(request, transaction, peer)
        except Refusal as refusal:
            self._refuse(transaction, refusal)
        self._wake.set()

    def _route(self, request: SipRequest, transaction: ServerTransaction, peer: Peer) -> None:
        method = request.method
        if method == "OPTIONS":
            self._final(transaction, 200, headers=self._capabilities())
        elif method == "INVITE":
            assert isinstance(transaction, InviteServerTransaction)
            self._send(peer, transaction.respond(make_response(request, 100)))
            if request.to_addr.tag:
                self._on_reinvite(request, transaction)
            else:
                self._on_invite(request, transaction, peer)
        elif method == "BYE":
            self._on_bye(request, transaction)
        elif method == "UPDATE":
            self._on_update(request, transaction)
        elif method in KNOWN_METHODS:
            raise Refusal(405, f"{method} is not used by a recording server", [("Allow", ALLOW)])
        else:
            raise Refusal(501, f"{method} is not implemented", [("Allow", ALLOW)])

    # -- new recording sessions ----------------------------------------------

    def _on_invite(self, request: SipRequest, transaction: InviteServerTransaction, peer: Peer) -> None:
        unsupported = request.headers.tokens("Require") - SUPPORTED_OPTIONS
        if unsupported:
            raise Refusal(420, "unsupported extension", [("Unsupported", ", ".join(sorted(unsupported)))])
        if len(self._calls) >= self.settings.max_calls:
            raise Refusal(503, "recorder at capacity", [("Retry-After", str(RETRY_AFTER_SECONDS))])
        key = (request.call_id, request.from_addr.tag or "")
        if key in self._calls:
            raise Refusal(482, "a recording session with this Call-ID and From tag exists")
        offer_body = self._parse_body(request)
        if request.body.strip() and not self._is_recording_request(request):
            raise Refusal(
                488, "not a recording session: no rs-metadata part, no siprec option tag, no +sip.src"
            )
        sdp = self._parse_sdp(offer_body)
        plans: list[StreamPlan] = []
        if sdp is not None:
            plans = plan_streams(sdp)
            if not any(p.accepted for p in plans):
                reasons = "; ".join(f"{p.label}: {p.reason}" for p in plans) or "no m= lines"
                raise Refusal(488, f"no recordable stream ({reasons})")
        session_expires = self._session_expires(request)
        direction = parse_direction(
            request.headers.get("X-Call-Direction") or request.headers.get("X-Direction")
        )
        fallback: list[tuple[str | None, str | None]] = []
        if offer_body.metadata is None:
            fallback = [
                (_aor(request.from_addr), request.from_addr.display_name),
                (_aor(request.to_addr), request.to_addr.display_name),
            ]
        started = datetime.now(UTC)
        session = SiprecSession(
            request.call_id,
            started,
            agent_for=self._agent_for,
            direction=direction,
            max_participants=self.settings.max_participants,
            fallback_parties=fallback
            if offer_body.metadata is None and not offer_body.has_metadata_part
            else (),
        )
        if offer_body.metadata_error:
            log.warning("call %s: recording without metadata: %s", request.call_id, offer_body.metadata_error)
            session.metadata_errors.append(offer_body.metadata_error)
        call = RecordingCall(
            call_id=request.call_id,
            remote_tag=request.from_addr.tag or "",
            local_tag=new_tag(),
            invite=request,
            peer=peer,
            session=session,
            offer=sdp,
            session_expires=session_expires,
            started_monotonic=self._clock(),
        )
        self._calls[key] = call
        SIP_CALLS_ACTIVE.inc()
        self._spawn(self._answer_invite(call, transaction, offer_body.metadata, plans))

    async def _answer_invite(
        self,
        call: RecordingCall,
        transaction: InviteServerTransaction,
        metadata: RecordingMetadata | None,
        plans: list[StreamPlan],
    ) -> None:
        try:
            now = datetime.now(UTC)
            if metadata is not None:
                await asyncio.to_thread(call.session.apply_metadata, metadata, now)
            delayed = call.offer is None
            labels = ["1", "2"] if delayed else [p.label for p in plans if p.accepted]
            bindings = await asyncio.to_thread(call.session.bind_streams, labels)
            if _ended(call):
                return
            call.recording_id = await asyncio.to_thread(self.recordings.begin, call.session.call)
            if _ended(call):
                # Cancelled while the catalogue was being written.
                await asyncio.to_thread(self.recordings.mark_interrupted_without_audio, call.recording_id)
                return
            self.recording_ids[call.call_id] = call.recording_id
            if len(self.recording_ids) > 10_000:
                del self.recording_ids[next(iter(self.recording_ids))]
            media = self.media.open_session(call.recording_id, time.time())
            call.media = media
            self._by_recording[call.recording_id] = call
            by_label = {b.label: b for b in bindings}
            ports: dict[str, int] = {}
            if delayed:
                for label in labels:
                    binding = by_label[label]
                    ports[label] = media.add_stream(
                        label, list(DELAYED_OFFER_CODECS), binding.channel, binding.participant_aor, None
                    )
                body_text = build_offer(
                    labels,
                    [ports[label] for label in labels],
                    DELAYED_OFFER_CODECS,
                    address=self.settings.advertised_media_host,
                    session_id=call.local_tag,
                ).serialise()
                body = body_text.encode()
                call.awaiting_answer = True
                call.ports.update(ports)
            else:
                assert call.offer is not None
                for plan in plans:
                    if not plan.accepted:
                        continue
                    binding = by_label[plan.label]
                    ports[plan.label] = media.add_stream(
                        plan.label, list(plan.codecs), binding.channel, binding.participant_aor, plan.srtp
                    )
                    if plan.on_hold:
                        media.update_stream(plan.label, on_hold=True)
                    call.streams[plan.label] = plan
                call.ports.update(ports)
                body = self._answer_sdp(call, call.offer, plans, ports).encode()
            self._accept(call, transaction, body)
        except Exception:
            log.exception("call %s: answering the INVITE failed", call.call_id)
            if transaction.state == "proceeding":
                self._final(transaction, 500)
            await self._end_call(call, "interrupted", send_bye=False)

    def _accept(self, call: RecordingCall, transaction: InviteServerTransaction, body: bytes) -> None:
        if transaction.state != "proceeding":
            return
        headers = [
            *self._capabilities(),
            ("Contact", self._contact(call.peer)),
            ("Content-Type", "application/sdp"),
        ]
        if call.session_expires is not None:
            headers += [("Session-Expires", f"{call.session_expires};refresher=uac"), ("Require", "timer")]
            call.expires_at = self._clock() + call.session_expires
        response = make_response(call.invite, 200, to_tag=call.local_tag, headers=headers, body=body)
        self._send(call.peer, transaction.respond(response))
        call.ok = OkRetransmitter(response, reliable=call.peer.reliable, clock=self._clock)
        call.dialog = Dialog.from_invite(call.invite, call.local_tag)
        call.state = "answered"
        self._wake.set()
        log.info("call %s: recording %s started", call.call_id, call.recording_id)

    # -- in-dialog requests ----------------------------------------------------

    def _dialog_call(self, request: SipRequest) -> RecordingCall:
        call = self._calls.get((request.call_id, request.from_addr.tag or ""))
        if call is None or call.local_tag != request.to_addr.tag or call.dialog is None:
            raise Refusal(481, "no such recording session")
        if not call.dialog.accept_cseq(request):
            raise Refusal(500, "CSeq out of order")
        return call

    def _on_reinvite(self, request: SipRequest, transaction: InviteServerTransaction) -> None:
        call = self._dialog_call(request)
        if call.ok is not None and not call.ok.acknowledged:
            raise Refusal(491, "previous INVITE not yet acknowledged", [("Retry-After", "1")])
        offer_body = self._parse_body(request)
        body = self._renegotiate(call, request, offer_body)
        headers = [*self._capabilities(), ("Contact", self._contact(call.peer))]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        if call.session_expires is not None:
            headers += [("Session-Expires", f"{call.session_expires};refresher=uac"), ("Require", "timer")]
        response = make_response(request, 200, to_tag=call.local_tag, headers=headers, body=body)
        self._send(call.peer, transaction.respond(response))
        call.ok = OkRetransmitter(response, reliable=call.peer.reliable, clock=self._clock)
        if not request.body.strip():
            call.awaiting_answer = True

    def _on_update(self, request: SipRequest, transaction: ServerTransaction) -> None:
        call = self._dialog_call(request)
        offer_body = self._parse_body(request)
        body = self._renegotiate(call, request, offer_body)
        headers = [("Contact", self._contact(call.peer))]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        if call.session_expires is not None:
            headers += [("Session-Expires", f"{call.session_expires};refresher=uac")]
        self._final(transaction, 200, headers=headers, body=body, to_tag=call.local_tag)

    def _renegotiate(self, call: RecordingCall, request: SipRequest, offer_body: SiprecOffer) -> bytes:
        """Apply a re-INVITE/UPDATE: metadata, new/changed/held streams; returns our SDP (or b"")."""
        assert call.dialog is not None
        call.dialog.refresh_target(request)
        if call.session_expires is not None:
            call.expires_at = self._clock() + call.session_expires
        now = datetime.now(UTC)
        if offer_body.metadata is not None:
            try:
                events = call.session.apply_metadata(offer_body.metadata, now)
            except ValueError as exc:
                raise Refusal(488, f"metadata refused: {exc}") from None
            self._publish(call, events)
        elif offer_body.metadata_error:
            log.warning("call %s: metadata update ignored: %s", call.call_id, offer_body.metadata_error)
        sdp = self._parse_sdp(offer_body)
        if sdp is None:
            if call.offer is None or not request.method == "INVITE":
                return b""
            # Re-INVITE without SDP: we offer what we have, the answer comes in the ACK.
            call.sdp_version += 1
            return self._current_sdp(call).encode()
        plans = plan_streams(sdp, call.streams)
        if not any(p.accepted for p in plans):
            raise Refusal(488, "no recordable stream in the new offer")
        media = call.media
        assert media is not None
        ports: dict[str, int] = {}
        new_labels = [p.label for p in plans if p.accepted and p.label not in call.streams]
        bindings = {b.label: b for b in call.session.bind_streams([*call.streams, *new_labels])}
        for plan in plans:
            if not plan.accepted:
                if plan.label in call.streams:
                    media.update_stream(plan.label, on_hold=True)
                continue
            binding = bindings[plan.label]
            if plan.label in call.streams:
                media.update_stream(
                    plan.label,
                    codecs=list(plan.codecs),
                    channel=binding.channel,
                    srtp=plan.srtp,
                    on_hold=plan.on_hold,
                )
                ports[plan.label] = self._port_of(call, plan.label)
            else:
                ports[plan.label] = media.add_stream(
                    plan.label, list(plan.codecs), binding.channel, binding.participant_aor, plan.srtp
                )
                if plan.on_hold:
                    media.update_stream(plan.label, on_hold=True)
            call.streams[plan.label] = plan
        for label, binding in bindings.items():
            if label in call.streams and label not in ports:
                media.update_stream(label, channel=binding.channel)
        call.ports.update(ports)
        call.offer = sdp
        call.sdp_version += 1
        media.update_call(call.session.call)
        return self._answer_sdp(call, sdp, plans, ports).encode()

    def _on_ack(self, request: SipRequest) -> None:
        call = self._calls.get((request.call_id, request.from_addr.tag or ""))
        if call is None or call.local_tag != request.to_addr.tag:
            return
        if call.ok is not None:
            call.ok.acknowledge()
        if call.state == "answered":
            call.state = "confirmed"
        if call.awaiting_answer and request.body.strip():
            call.awaiting_answer = False
            try:
                answer = SessionDescription.parse(
                    parse_siprec_body(request.content_type or "application/sdp", request.body).sdp or ""
                )
            except ValueError as exc:
                log.warning("call %s: unusable SDP answer in ACK: %s", call.call_id, exc)
                return
            self._apply_ack_answer(call, answer)

    def _apply_ack_answer(self, call: RecordingCall, answer: SessionDescription) -> None:
        media = call.media
        if media is None:
            return
        plans = plan_streams(answer, call.streams)
        for plan, label in zip(plans, ["1", "2", *(p.label for p in plans[2:])], strict=False):
            if plan.accepted:
                media.update_stream(label, codecs=list(plan.codecs), on_hold=plan.on_hold)
        call.offer = answer

    def _on_bye(self, request: SipRequest, transaction: ServerTransaction) -> None:
        call = self._dialog_call(request)
        self._final(transaction, 200)
        self._spawn(self._end_call(call, "complete", send_bye=False))

    def _on_cancel(self, request: SipRequest, peer: Peer) -> None:
        cancel_transaction = self.transactions.create(request, reliable=peer.reliable)
        cancel_transaction.context = peer
        invite_transaction = self.transactions.find_invite(request)
        if invite_transaction is None:
            self._final(cancel_transaction, 481)
            return
        self._final(cancel_transaction, 200)
        if invite_transaction.state == "proceeding":
            self._final(invite_transaction, 487)
            invite = invite_transaction.request
            call = self._calls.get((invite.call_id, invite.from_addr.tag or ""))
            if call is not None:
                self._spawn(self._end_call(call, "interrupted", send_bye=False))

    # -- ending ------------------------------------------------------------------

    async def _end_call(
        self, call: RecordingCall, status: Literal["complete", "interrupted"], *, send_bye: bool
    ) -> None:
        if call.state == "ended":
            return
        was_answered = call.state in ("answered", "confirmed")
        call.state = "ended"
        if self._calls.pop((call.call_id, call.remote_tag), None) is not None:
            SIP_CALLS_ACTIVE.dec()
        if call.recording_id is not None:
            self._by_recording.pop(call.recording_id, None)
        if send_bye and was_answered and call.dialog is not None:
            self._send_bye(call)
        if call.media is not None:
            await call.media.close(status)
        log.info("call %s: recording %s ended (%s)", call.call_id, call.recording_id, status)

    def _send_bye(self, call: RecordingCall) -> None:
        assert call.dialog is not None
        bye = call.dialog.make_request(
            "BYE", via_host=call.peer.local_host, via_port=call.peer.local_port, transport=call.peer.transport
        )
        bye.headers.add("Reason", 'SIP;cause=200;text="recording ended by the recorder"')
        try:
            call.peer.send(bye.serialise())
        except Exception:
            log.exception("call %s: sending BYE failed", call.call_id)

    async def on_rtp_timeout(self, recording_id: str) -> None:
        """Media engine callback: no RTP for ``rtp_timeout`` seconds."""
        call = self._by_recording.get(recording_id)
        if call is None:
            media = self.media.session(recording_id)
            if media is not None:
                await media.close("complete")
            return
        await self._end_call(call, "complete", send_bye=True)

    # -- timers --------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        while True:
            deadlines = [d for d in [self.transactions.next_deadline] if d is not None]
            for call in self._calls.values():
                if call.ok is not None and (d := call.ok.next_deadline) is not None:
                    deadlines.append(d)
            timeout = min(1.0, max(0.0, min(deadlines) - self._clock())) if deadlines else 1.0
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass
            try:
                self._tick()
            except Exception:
                log.exception("SIP timer processing failed")

    def _tick(self) -> None:
        for transaction, responses in self.transactions.poll():
            if isinstance(transaction.context, Peer):
                self._send(transaction.context, responses)
        now = self._clock()
        for call in list(self._calls.values()):
            if call.ok is not None:
                self._send(call.peer, call.ok.poll())
                if call.ok.gave_up:
                    log.warning("call %s: no ACK for our 200; ending the session", call.call_id)
                    self._spawn(self._end_call(call, "interrupted", send_bye=True))
                    continue
            if call.expires_at is not None and now >= call.expires_at:
                log.warning("call %s: session timer expired", call.call_id)
                self._spawn(self._end_call(call, "complete", send_bye=True))
                continue
            if call.media is not None and call.media.closing and call.state != "ended":
                # The media engine closed the session on its own (RTP timeout).
                self._spawn(self._end_call(call, "complete", send_bye=True))

    # -- helpers ----------------------------------------------------------------------

    def _agent_for(self, identity: str | None) -> int | None:
        if not identity:
            return None
        if identity not in self._agent_cache:
            self._agent_cache[identity] = self.directory.agent_for(identity)
        return self._agent_cache[identity]

    def _parse_body(self, request: SipRequest) -> SiprecOffer:
        content_type = request.content_type or ("application/sdp" if request.body.strip() else "")
        try:
            return parse_siprec_body(content_type, request.body)
        except ValueError as exc:
            raise Refusal(
                415 if "Content-Type" in str(exc) else 400, str(exc), [("Accept", ACCEPT)]
            ) from None

    @staticmethod
    def _parse_sdp(offer: SiprecOffer) -> SessionDescription | None:
        if offer.sdp is None:
            if offer.has_metadata_part or offer.metadata is not None:
                return None
            return None
        try:
            return SessionDescription.parse(offer.sdp)
        except ValueError as exc:
            raise Refusal(488, f"SDP refused: {exc}") from None

    @staticmethod
    def _is_recording_request(request: SipRequest) -> bool:
        if is_recording_session(request.content_type or "", request.body):
            return True
        if "siprec" in request.headers.tokens("Require") | request.headers.tokens("Supported"):
            return True
        for contact in request.headers.get_all("Contact"):
            lowered = contact.lower()
            if "+sip.src" in lowered or ";src" in lowered:
                return True
        return False

    def _session_expires(self, request: SipRequest) -> int | None:
        value = request.headers.get("Session-Expires")
        if value is None:
            return None
        number = value.split(";")[0].strip()
        if not number.isdigit():
            raise Refusal(400, f"Session-Expires {value!r} is not a number")
        seconds = int(number)
        if seconds < MIN_SESSION_EXPIRES:
            raise Refusal(422, "session interval too small", [("Min-SE", str(MIN_SESSION_EXPIRES))])
        return seconds

    def _answer_sdp(
        self, call: RecordingCall, offer: SessionDescription, plans: list[StreamPlan], ports: dict[str, int]
    ) -> str:
        answers = [
            StreamAnswer(ports.get(p.label, 0), list(p.codecs), p.answer_crypto, p.answer_direction)
            if p.accepted
            else StreamAnswer(0, [])
            for p in plans
        ]
        answer = build_answer(
            offer,
            answers,
            address=self.settings.advertised_media_host,
            session_id=call.local_tag,
            session_version=call.sdp_version,
        )
        return answer.serialise()

    def _current_sdp(self, call: RecordingCall) -> str:
        assert call.offer is not None
        plans = plan_streams(call.offer, call.streams)
        ports = {label: self._port_of(call, label) for label in call.streams}
        return self._answer_sdp(call, call.offer, plans, ports)

    @staticmethod
    def _port_of(call: RecordingCall, label: str) -> int:
        return call.ports.get(label, 0)

    def _publish(self, call: RecordingCall, events: list[CallEvent]) -> None:
        if call.media is None:
            return
        for event in events:
            call.media.record_event(event)
        call.media.update_call(call.session.call)

    def _capabilities(self) -> list[tuple[str, str]]:
        return [
            ("Allow", ALLOW),
            ("Supported", "siprec, timer"),
            ("Accept", ACCEPT),
            ("Server", SERVER_NAME),
        ]

    def _contact(self, peer: Peer) -> str:
        transport = "" if peer.transport == "UDP" else f";transport={peer.transport.lower()}"
        return f"<sip:srs@{peer.local_host}:{peer.local_port}{transport}>;+sip.srs"

    def _final(
        self,
        transaction: ServerTransaction,
        status: int,
        *,
        reason: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        to_tag: str | None = None,
    ) -> None:
        response = make_response(
            transaction.request, status, reason, to_tag=to_tag or new_tag(), headers=headers or [], body=body
        )
        if isinstance(transaction.context, Peer):
            self._send(transaction.context, transaction.respond(response))

    def _refuse(self, transaction: ServerTransaction, refusal: Refusal) -> None:
        log.info(
            "%s %s refused with %d: %s",
            transaction.request.method,
            transaction.request.call_id,
            refusal.status,
            refusal.reason,
        )
        warning = refusal.reason.replace('"', "'")[:200]
        headers = [*refusal.headers, ("Warning", f'399 callvault "{warning}"')]
        if isinstance(transaction, NonInviteServerTransaction) or transaction.state == "proceeding":
            self._final(transaction, refusal.status, headers=headers)

    @staticmethod
    def _send(peer: Peer, responses: list[SipResponse]) -> None:
        for response in responses:
            count_response(response.status)
            peer.send(response.serialise())

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _ended(call: RecordingCall) -> bool:
    """A call can end (CANCEL, stop) while its INVITE is being answered in another task."""
    return call.state == "ended"


def _aor(address: NameAddr) -> str | None:
    uri = address.uri
    for scheme in ("sips:", "sip:", "tel:"):
        if uri.lower().startswith(scheme):
            uri = uri[len(scheme) :]
            break
    return uri.split(";")[0] or None
