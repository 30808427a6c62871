"""What every part of the SIPREC server shares: the open recording calls and how one ends.

The server is split by concern (routing, new sessions, in-dialog requests,
refusals, timers); those parts meet here. :class:`ServerCore` holds the
calls by dialog and by recording, the transaction table, the clock and the
background tasks, and does the few things they all do: send responses,
answer a transaction, run a coroutine in the background, end a call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

from callvault.runtime.media.engine import MediaEngine
from callvault.runtime.media.session import MediaSession
from callvault.runtime.media.unrecorded import UnrecordedSession
from callvault.runtime.sip.metrics import SIP_CALLS_ACTIVE, count_response
from callvault.runtime.sip.offer import StreamPlan
from callvault.runtime.sip.transport import Peer
from callvault.services.alerts import AlertService
from callvault.services.directory import AgentDirectory
from callvault.services.recording_rule_store import RecordingRuleStore
from callvault.services.recording_rules import Decision
from callvault.services.recordings import RecordingService
from callvault.services.siprec_session import SiprecSession
from callvault.settings import Settings
from callvault.sip.dialog import Dialog, new_tag
from callvault.sip.message import SipRequest, SipResponse, make_response
from callvault.sip.sdp import SessionDescription
from callvault.sip.transaction import OkRetransmitter, ServerTransaction, TransactionTable

log = logging.getLogger(__name__)

CallState = Literal["proceeding", "answered", "confirmed", "ended"]


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
    media: MediaSession | UnrecordedSession | None = None
    dialog: Dialog | None = None
    ok: OkRetransmitter | None = None
    streams: dict[str, StreamPlan] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)  # local RTP port per stream label
    offer: SessionDescription | None = None
    sdp_version: int = 1
    awaiting_answer: bool = False  # delayed offer: the SRC's answer comes in the ACK
    renegotiating: bool = False  # a re-INVITE/UPDATE is being answered (its catalogue work in a thread)
    session_expires: int | None = None
    expires_at: float | None = None
    started_monotonic: float = 0.0
    # Recording rules (see rules_hook): what they decided, and the labels the SRC sent.
    decision: Decision | None = None
    labels: list[str] = field(default_factory=list)
    # Metadata writes run in threads; one at a time per call, so an older snapshot never lands last.
    catalog_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def ended(call: RecordingCall) -> bool:
    """A call can end (CANCEL, stop) while its INVITE is being answered in another task."""
    return call.state == "ended"


class ServerCore:
    def __init__(
        self,
        settings: Settings,
        recordings: RecordingService,
        directory: AgentDirectory,
        media: MediaEngine,
        clock: Callable[[], float] = time.monotonic,
        rules: RecordingRuleStore | None = None,
        alerts: AlertService | None = None,
    ) -> None:
        self.settings = settings
        self.rules = rules  # None: every call recorded whole
        self.alerts = alerts
        self.recordings = recordings
        self.directory = directory
        self.media = media
        # Session timers, 2xx retransmission and transaction timers run on this clock.
        self.clock = clock
        self.transactions = TransactionTable(clock)
        # Keyed by (Call-ID, From tag): the SRC's side of the dialog identifies the call.
        self.calls: dict[tuple[str, str], RecordingCall] = {}
        self.by_recording: dict[str, RecordingCall] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        # Set whenever a timer may have moved earlier, so the tick loop recomputes its sleep.
        self.wake = asyncio.Event()
        # Call-ID -> recording id of recent sessions (demo output, tests, logs); bounded.
        self.recording_ids: dict[str, str] = {}
        # Told (recording id, session) on the event loop when a live call's metadata arrives (consent).
        self.metadata_listeners: list[Callable[[str, SiprecSession], None]] = []

    @staticmethod
    def send(peer: Peer, responses: list[SipResponse]) -> None:
        for response in responses:
            count_response(response.status)
            peer.send(response.serialise())

    def final(
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
            self.send(transaction.context, transaction.respond(response))

    def metadata_changed(self, call: RecordingCall) -> None:
        """Tell the listeners that a live call's metadata arrived (at the INVITE or an update)."""
        if call.recording_id is None or call.session.metadata is None:
            return
        for listener in self.metadata_listeners:
            try:
                listener(call.recording_id, call.session)
            except Exception:
                log.exception("metadata listener failed for %s", call.recording_id)

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def end_call(
        self, call: RecordingCall, status: Literal["complete", "interrupted"], *, send_bye: bool
    ) -> None:
        if self._detach(call, send_bye=send_bye):
            await self._close_media(call, status)

    def end_call_soon(
        self, call: RecordingCall, status: Literal["complete", "interrupted"], *, send_bye: bool
    ) -> None:
        """End the call at once, so the very next request no longer finds it; close its media
        in the background. (uvloop hands over several datagrams before a spawned task runs:
        a new BYE right behind the first one was answered 200 instead of 481.)"""
        if self._detach(call, send_bye=send_bye):
            self.spawn(self._close_media(call, status))

    def _detach(self, call: RecordingCall, *, send_bye: bool) -> bool:
        if call.state == "ended":
            return False
        was_answered = call.state in ("answered", "confirmed")
        call.state = "ended"
        if self.calls.pop((call.call_id, call.remote_tag), None) is not None:
            SIP_CALLS_ACTIVE.dec()
        if call.recording_id is not None:
            self.by_recording.pop(call.recording_id, None)
        if send_bye and was_answered and call.dialog is not None:
            self.send_bye(call)
        return True

    async def _close_media(self, call: RecordingCall, status: Literal["complete", "interrupted"]) -> None:
        if call.media is not None:
            async with call.catalog_lock:  # the last metadata update lands before the seal signs it
                pass
            await self.media.close(call.media.recording_id, status)
        log.info("call %s: recording %s ended (%s)", call.call_id, call.recording_id, status)

    @staticmethod
    def send_bye(call: RecordingCall) -> None:
        assert call.dialog is not None
        bye = call.dialog.make_request(
            "BYE", via_host=call.peer.local_host, via_port=call.peer.local_port, transport=call.peer.transport
        )
        bye.headers.add("Reason", 'SIP;cause=200;text="recording ended by the recorder"')
        try:
            call.peer.send(bye.serialise())
        except Exception:
            log.exception("call %s: sending BYE failed", call.call_id)
