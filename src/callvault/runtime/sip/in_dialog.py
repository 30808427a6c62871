"""Requests within a recording session: re-INVITE, UPDATE, ACK, BYE, and CANCEL of the INVITE.

A re-INVITE or UPDATE may carry new metadata (participants joining,
leaving, changing streams), new or changed streams, or put streams on hold;
the media session follows (through the engine: SIP → engine → session) and
the answer lists every stream again. The answer is made in a task: agents are
resolved and the catalogue updated in threads, so a slow database never
stalls signalling. A re-INVITE while our previous 2xx is unacknowledged, or
any offer while another is being answered, is refused with 491. A
re-INVITE without SDP gets our current streams as an offer, answered in the
ACK, as the delayed-offer INVITE is.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from datetime import UTC, datetime

from callvault.runtime.sip.answer import answer_sdp, contact, current_sdp, port_of
from callvault.runtime.sip.core import RecordingCall, ServerCore, ended
from callvault.runtime.sip.offer import StreamPlan, plan_streams
from callvault.runtime.sip.refusals import (
    Refusal,
    capabilities,
    check_stream_count,
    parse_body,
    parse_sdp,
    refuse,
    release_ports,
    reserve_ports,
)
from callvault.runtime.sip.rules_hook import reevaluate
from callvault.runtime.sip.timers import arm_session_timer, session_timer_headers
from callvault.runtime.sip.transport import Peer
from callvault.services.call_record import CallEvent
from callvault.services.siprec_session import StreamBinding
from callvault.sip.message import SipRequest, make_response
from callvault.sip.sdp import SessionDescription
from callvault.sip.siprec_body import SiprecOffer, parse_siprec_body
from callvault.sip.transaction import InviteServerTransaction, OkRetransmitter, ServerTransaction

log = logging.getLogger(__name__)


class DialogHandler:
    def __init__(self, core: ServerCore) -> None:
        self._core = core

    def on_reinvite(self, request: SipRequest, transaction: InviteServerTransaction) -> None:
        call = self._dialog_call(request)
        if call.ok is not None and not call.ok.acknowledged:
            raise Refusal(491, "previous INVITE not yet acknowledged", [("Retry-After", "1")])
        self._start_renegotiation(call, request, transaction)

    def on_update(self, request: SipRequest, transaction: ServerTransaction) -> None:
        self._start_renegotiation(self._dialog_call(request), request, transaction)

    def _start_renegotiation(
        self, call: RecordingCall, request: SipRequest, transaction: ServerTransaction
    ) -> None:
        """Answer a re-INVITE/UPDATE in a task: its catalogue work runs in a thread, off the event loop."""
        if call.renegotiating:
            # RFC 3261 §14.2 / RFC 3311 §5.2: one offer at a time in a dialog.
            raise Refusal(491, "an offer is already being answered", [("Retry-After", "1")])
        offer_body = parse_body(request)
        call.renegotiating = True
        self._core.spawn(self._answer_renegotiation(call, request, transaction, offer_body))

    async def _answer_renegotiation(
        self,
        call: RecordingCall,
        request: SipRequest,
        transaction: ServerTransaction,
        offer_body: SiprecOffer,
    ) -> None:
        core = self._core
        try:
            body = await self._renegotiate(call, request, offer_body)
        except Refusal as refusal:
            refuse(core, transaction, refusal)
            return
        except Exception:
            log.exception("call %s: answering the %s failed", call.call_id, request.method)
            refuse(core, transaction, Refusal(500, "the offer could not be applied"))
            return
        finally:
            call.renegotiating = False
        headers = [("Contact", contact(call.peer))]
        if request.method == "INVITE":
            headers = [*capabilities(), *headers]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        headers += session_timer_headers(call, require=request.method == "INVITE")
        if request.method != "INVITE":
            core.final(transaction, 200, headers=headers, body=body, to_tag=call.local_tag)
            return
        assert isinstance(transaction, InviteServerTransaction)
        response = make_response(request, 200, to_tag=call.local_tag, headers=headers, body=body)
        core.send(call.peer, transaction.respond(response))
        call.ok = OkRetransmitter(response, reliable=call.peer.reliable, clock=core.clock)
        if not request.body.strip():
            call.awaiting_answer = True
        core.wake.set()

    def on_ack(self, request: SipRequest) -> None:
        call = self._core.calls.get((request.call_id, request.from_addr.tag or ""))
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
            _apply_ack_answer(self._core, call, answer)

    def on_bye(self, request: SipRequest, transaction: ServerTransaction) -> None:
        call = self._dialog_call(request)
        self._core.final(transaction, 200)
        self._core.end_call_soon(call, "complete", send_bye=False)

    def on_cancel(self, request: SipRequest, peer: Peer) -> None:
        core = self._core
        cancel_transaction = core.transactions.create(request, reliable=peer.reliable)
        cancel_transaction.context = peer
        invite_transaction = core.transactions.find_invite(request)
        if invite_transaction is None:
            core.final(cancel_transaction, 481)
            return
        core.final(cancel_transaction, 200)
        # Once the INVITE has its 2xx, CANCEL changes nothing (RFC 3261 §9.2): the SRC sends BYE.
        if invite_transaction.state == "proceeding":
            core.final(invite_transaction, 487)
            invite = invite_transaction.request
            call = core.calls.get((invite.call_id, invite.from_addr.tag or ""))
            if call is not None:
                core.end_call_soon(call, "interrupted", send_bye=False)

    def _dialog_call(self, request: SipRequest) -> RecordingCall:
        call = self._core.calls.get((request.call_id, request.from_addr.tag or ""))
        if call is None or call.local_tag != request.to_addr.tag or call.dialog is None:
            raise Refusal(481, "no such recording session")
        if not call.dialog.accept_cseq(request):
            raise Refusal(500, "CSeq out of order")
        return call

    async def _renegotiate(self, call: RecordingCall, request: SipRequest, offer_body: SiprecOffer) -> bytes:
        """Apply a re-INVITE/UPDATE: metadata, new/changed/held streams; returns our SDP (or b"")."""
        core = self._core
        address = core.settings.advertised_media_host
        assert call.dialog is not None
        call.dialog.refresh_target(request)
        arm_session_timer(core, call)
        now = datetime.now(UTC)
        changed = False
        if offer_body.metadata is not None:
            try:
                # Resolving new participants' agents may read the catalogue.
                events = await asyncio.to_thread(call.session.apply_metadata, offer_body.metadata, now)
            except ValueError as exc:
                raise Refusal(488, f"metadata refused: {exc}") from None
            _check_open(call)
            _publish(core, call, events)
            await reevaluate(core, call)  # a participant joined or left: the rules may answer otherwise
            core.metadata_changed(call)
            changed = True
        elif offer_body.metadata_error:
            log.warning("call %s: metadata update ignored: %s", call.call_id, offer_body.metadata_error)
        sdp = parse_sdp(offer_body)
        if sdp is None:
            if changed:
                self._update_catalog(call)
            if call.offer is None or not request.method == "INVITE":
                return b""
            # Re-INVITE without SDP: we offer what we have, the answer comes in the ACK.
            call.sdp_version += 1
            return current_sdp(call, address).encode()
        plans = plan_streams(sdp, call.streams)
        if not any(p.accepted for p in plans):
            raise Refusal(488, "no recordable stream in the new offer")
        assert call.media is not None
        new_labels = [p.label for p in plans if p.accepted and p.label not in call.streams]
        held = set(call.ports) | set(call.streams)
        check_stream_count(len(held | set(new_labels)), core.settings.max_streams_per_invite)
        bindings = await asyncio.to_thread(call.session.bind_streams, [*call.streams, *new_labels])
        _check_open(call)
        sockets = reserve_ports(core, len(new_labels))
        try:
            body = self._apply_offer(call, sdp, plans, {b.label: b for b in bindings}, sockets)
        finally:
            release_ports(core, sockets)
        self._update_catalog(call)
        return body

    def _update_catalog(self, call: RecordingCall) -> None:
        """Write the call's new metadata to the catalogue in a thread; the answer does not wait for it."""
        if call.media is None:
            return
        recording_id, record = call.media.recording_id, call.session.call
        recordings = self._core.recordings

        async def update() -> None:
            try:
                # Each write reads the record when it runs; in order, the last one holds the latest state.
                async with call.catalog_lock:
                    await asyncio.to_thread(recordings.update_call, recording_id, record)
            except Exception:
                log.exception("updating call metadata of %s failed", recording_id)

        self._core.spawn(update())

    def _apply_offer(
        self,
        call: RecordingCall,
        sdp: SessionDescription,
        plans: list[StreamPlan],
        bindings: dict[str, StreamBinding],
        sockets: list[socket.socket],
    ) -> bytes:
        assert call.media is not None
        engine, recording_id = self._core.media, call.media.recording_id
        address = self._core.settings.advertised_media_host
        ports: dict[str, int] = {}
        for plan in plans:
            if not plan.accepted:
                if plan.label in call.streams:
                    engine.update_stream(recording_id, plan.label, on_hold=True)
                continue
            binding = bindings[plan.label]
            if plan.label in call.streams:
                engine.update_stream(
                    recording_id,
                    plan.label,
                    codecs=list(plan.codecs),
                    channel=binding.channel,
                    srtp=plan.srtp,
                    on_hold=plan.on_hold,
                )
                ports[plan.label] = port_of(call, plan.label)
            else:
                ports[plan.label] = engine.add_stream(
                    recording_id,
                    plan.label,
                    list(plan.codecs),
                    binding.channel,
                    binding.participant_aor,
                    plan.srtp,
                    sockets.pop(),
                )
                if plan.on_hold:
                    engine.update_stream(recording_id, plan.label, on_hold=True)
            call.streams[plan.label] = plan
        # Streams this offer left out or rejected can still move channel after a participant change.
        for label, binding in bindings.items():
            if label in call.streams and label not in ports:
                engine.update_stream(recording_id, label, channel=binding.channel)
        call.ports.update(ports)
        call.offer = sdp
        call.sdp_version += 1
        return answer_sdp(call, sdp, plans, ports, address).encode()


def _check_open(call: RecordingCall) -> None:
    """The call may have ended (BYE, stop) while a thread wrote the catalogue."""
    if ended(call) or call.media is None:
        raise Refusal(481, "the recording session ended")


def _apply_ack_answer(core: ServerCore, call: RecordingCall, answer: SessionDescription) -> None:
    if call.media is None or ended(call):
        return
    plans = plan_streams(answer, call.streams)
    # Our delayed offer named its streams "1" and "2"; the answer's m= lines follow that order.
    for plan, label in zip(plans, ["1", "2", *(p.label for p in plans[2:])], strict=False):
        if plan.accepted:
            core.media.update_stream(
                call.media.recording_id, label, codecs=list(plan.codecs), on_hold=plan.on_hold
            )
    call.offer = answer


def _publish(core: ServerCore, call: RecordingCall, events: list[CallEvent]) -> None:
    if call.media is None:
        return
    for event in events:
        core.media.record_event(call.media.recording_id, event)
