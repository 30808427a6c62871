"""New recording sessions: an initial INVITE from an SRC, up to our 200.

The INVITE is checked, its RTP ports bound (all of them, or 503: nothing
is catalogued for a call we cannot take) and its call registered at once
(so a CANCEL finds it and a second INVITE for the same dialog is refused);
the rest runs as a background task because it writes to the catalogue:
metadata applied, participants bound to channels, the recording begun, a
media session opened on the bound ports, one per accepted stream, then the
200 with our SDP answer. A call can end (CANCEL, stop)
while that task runs; it checks after every wait and cleans up.

Metadata that does not parse does not cost the recording: the call is
recorded without it, with the From and To parties standing in for the
participants when the INVITE had no metadata part at all.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from datetime import UTC, datetime

from sqlalchemy.exc import OperationalError, SQLAlchemyError

from callvault.errors import CatalogUnavailable, Overloaded, StorageError
from callvault.runtime.sip.answer import answer_sdp, contact, delayed_offer_sdp
from callvault.runtime.sip.core import RecordingCall, ServerCore, ended
from callvault.runtime.sip.metrics import SIP_CALLS_ACTIVE, count_lost_call
from callvault.runtime.sip.offer import DELAYED_OFFER_CODECS, StreamPlan, plan_streams
from callvault.runtime.sip.refusals import (
    RETRY_AFTER_SECONDS,
    Refusal,
    capabilities,
    check_admission,
    check_disk_reserve,
    check_new_session,
    check_recording_request,
    check_stream_count,
    parse_body,
    parse_sdp,
    release_ports,
    reserve_ports,
)
from callvault.runtime.sip.rules_hook import decide, open_media, read_headers
from callvault.runtime.sip.timers import arm_session_timer, session_expires, session_timer_headers
from callvault.runtime.sip.transport import Peer
from callvault.services.call_record import IngestSource
from callvault.services.rule_outcome import rule_columns
from callvault.services.siprec_session import SiprecSession, parse_direction
from callvault.sip.dialog import Dialog, new_tag
from callvault.sip.message import NameAddr, SipRequest, make_response
from callvault.sip.metadata import RecordingMetadata
from callvault.sip.transaction import InviteServerTransaction, OkRetransmitter

log = logging.getLogger(__name__)

BEGIN_ATTEMPTS = 2
BEGIN_RETRY_SECONDS = 0.5
UNAVAILABLE = (StorageError, CatalogUnavailable, Overloaded, SQLAlchemyError)
# The streams the recorder offers itself when the INVITE has no SDP (delayed offer).
DELAYED_OFFER_LABELS = ("1", "2")


class InviteHandler:
    def __init__(self, core: ServerCore) -> None:
        self._core = core

    def on_invite(self, request: SipRequest, transaction: InviteServerTransaction, peer: Peer) -> None:
        core = self._core
        check_new_session(request, core.calls, core.settings.max_calls)
        check_disk_reserve(core.media.disk_low)
        check_admission(core.media.admission)
        offer_body = parse_body(request)  # once: the checks and the answer share it
        check_recording_request(request, offer_body)
        sdp = parse_sdp(offer_body)
        plans: list[StreamPlan] = []
        if sdp is not None:
            plans = plan_streams(sdp)
            if not any(p.accepted for p in plans):
                reasons = "; ".join(f"{p.label}: {p.reason}" for p in plans) or "no m= lines"
                raise Refusal(488, f"no recordable stream ({reasons})")
            check_stream_count(sum(p.accepted for p in plans), core.settings.max_streams_per_invite)
        expires = session_expires(request)
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
            agent_for=core.directory.agent_for,
            direction=direction,
            max_participants=core.settings.max_participants,
            fallback_parties=fallback
            if offer_body.metadata is None and not offer_body.has_metadata_part
            else (),
        )
        if offer_body.metadata_error:
            log.warning("call %s: recording without metadata: %s", request.call_id, offer_body.metadata_error)
            session.metadata_errors.append(offer_body.metadata_error)
        # Last check, so that nothing else can refuse the call while it holds ports.
        sockets = reserve_ports(
            core, len(DELAYED_OFFER_LABELS) if sdp is None else len(plans_accepted(plans))
        )
        call = RecordingCall(
            call_id=request.call_id,
            remote_tag=request.from_addr.tag or "",
            local_tag=new_tag(),
            invite=request,
            peer=peer,
            session=session,
            offer=sdp,
            session_expires=expires,
            started_monotonic=core.clock(),
        )
        read_headers(call, request)  # queue and labels for the recording rules
        core.calls[(request.call_id, request.from_addr.tag or "")] = call
        SIP_CALLS_ACTIVE.inc()
        core.spawn(self._answer_invite(call, transaction, offer_body.metadata, plans, sockets))

    async def _answer_invite(
        self,
        call: RecordingCall,
        transaction: InviteServerTransaction,
        metadata: RecordingMetadata | None,
        plans: list[StreamPlan],
        sockets: list[socket.socket],
    ) -> None:
        core = self._core
        try:
            now = datetime.now(UTC)
            if metadata is not None:
                await asyncio.to_thread(call.session.apply_metadata, metadata, now)
            delayed = call.offer is None
            labels = list(DELAYED_OFFER_LABELS) if delayed else [p.label for p in plans_accepted(plans)]
            bindings = await asyncio.to_thread(call.session.bind_streams, labels)
            if core.rules is not None:
                call.decision = await asyncio.to_thread(
                    decide, core.rules, call, core.settings.default_region
                )
            if ended(call):
                return
            call.recording_id = await _begin(core, call)
            if ended(call):
                # Cancelled while the catalogue was being written.
                await asyncio.to_thread(core.recordings.mark_interrupted_without_audio, call.recording_id)
                return
            core.recording_ids[call.call_id] = call.recording_id
            if len(core.recording_ids) > 10_000:
                del core.recording_ids[next(iter(core.recording_ids))]
            media = open_media(core, call, call.recording_id)
            call.media = media
            core.by_recording[call.recording_id] = call
            by_label = {b.label: b for b in bindings}
            ports: dict[str, int] = {}
            address = core.settings.advertised_media_host
            if delayed:
                for label in labels:
                    binding = by_label[label]
                    ports[label] = core.media.add_stream(
                        media.recording_id,
                        label,
                        list(DELAYED_OFFER_CODECS),
                        binding.channel,
                        binding.participant_aor,
                        None,
                        sockets.pop(),
                    )
                body = delayed_offer_sdp(call, labels, ports, address).encode()
                call.awaiting_answer = True
                call.ports.update(ports)
            else:
                assert call.offer is not None
                for plan in plans:
                    if not plan.accepted:
                        continue
                    binding = by_label[plan.label]
                    ports[plan.label] = core.media.add_stream(
                        media.recording_id,
                        plan.label,
                        list(plan.codecs),
                        binding.channel,
                        binding.participant_aor,
                        plan.srtp,
                        sockets.pop(),
                    )
                    if plan.on_hold:
                        core.media.update_stream(media.recording_id, plan.label, on_hold=True)
                    call.streams[plan.label] = plan
                call.ports.update(ports)
                body = answer_sdp(call, call.offer, plans, ports, address).encode()
            core.metadata_changed(call)
            self._accept(call, transaction, body)
        except Exception as exc:
            log.exception("call %s: answering the INVITE failed", call.call_id)
            if transaction.state == "proceeding":
                # Storage (a full disk), the catalogue (a refused connection) or the RTP ports may
                # work again soon: 503 lets the SRC retry or fail over, where 500 loses the call.
                status = 503 if isinstance(exc, UNAVAILABLE) else 500
                retry = [("Retry-After", str(RETRY_AFTER_SECONDS))] if status == 503 else None
                core.final(transaction, status, headers=retry)
                count_lost_call(status)
            # The ports go back before the catalogue is told: once the recording reads
            # interrupted, nothing of the failed call holds a port.
            release_ports(core, sockets)
            await core.end_call(call, "interrupted", send_bye=False)
            if call.recording_id is not None and call.media is None:
                # Begun in the catalogue, never captured (no journal): say so now, not at the next start.
                try:
                    await asyncio.to_thread(core.recordings.mark_interrupted_without_audio, call.recording_id)
                except Exception:
                    log.exception(
                        "call %s: marking recording %s interrupted failed", call.call_id, call.recording_id
                    )
        finally:
            # Ports not handed to the media session (the call ended, or failed, first).
            release_ports(core, sockets)

    def _accept(self, call: RecordingCall, transaction: InviteServerTransaction, body: bytes) -> None:
        core = self._core
        if transaction.state != "proceeding":
            return
        headers = [
            *capabilities(),
            ("Contact", contact(call.peer)),
            ("Content-Type", "application/sdp"),
            *session_timer_headers(call, require=True),
        ]
        arm_session_timer(core, call)
        response = make_response(call.invite, 200, to_tag=call.local_tag, headers=headers, body=body)
        core.send(call.peer, transaction.respond(response))
        call.ok = OkRetransmitter(response, reliable=call.peer.reliable, clock=core.clock)
        call.dialog = Dialog.from_invite(call.invite, call.local_tag)
        call.state = "answered"
        core.wake.set()
        log.info("call %s: recording %s started", call.call_id, call.recording_id)


async def _begin(core: ServerCore, call: RecordingCall) -> str:
    """Catalogue the recording; a database that refuses a connection for a moment (PostgreSQL at
    max_connections, a restart, a network blip) gets one more try before the INVITE is refused."""
    for attempt in range(BEGIN_ATTEMPTS):
        try:
            peer = call.peer  # the socket's address and, over mutual TLS, the certificate's subject
            src = IngestSource.siprec(peer.transport, peer.host, peer.port, peer.tls_subject)
            rule = rule_columns(call.decision, call.labels) if call.decision is not None else None
            return await asyncio.to_thread(core.recordings.begin, call.session.call, src, rule)
        except (OperationalError, CatalogUnavailable) as exc:
            if attempt + 1 == BEGIN_ATTEMPTS or ended(call):
                raise
            log.warning(
                "call %s: catalogue unavailable (%s); trying again", call.call_id, exc.__class__.__name__
            )
            await asyncio.sleep(BEGIN_RETRY_SECONDS)
    raise AssertionError("unreachable")


def plans_accepted(plans: list[StreamPlan]) -> list[StreamPlan]:
    return [p for p in plans if p.accepted]


def _aor(address: NameAddr) -> str | None:
    uri = address.uri
    for scheme in ("sips:", "sip:", "tel:"):
        if uri.lower().startswith(scheme):
            uri = uri[len(scheme) :]
            break
    return uri.split(";")[0] or None
