"""The recording server's clocks: session timers (RFC 4028) and the tick loop.

Session timers are honoured when the SRC asks for them: it refreshes (we
answer ``refresher=uac``), each re-INVITE or UPDATE re-arms the timer, and a
session not refreshed in time is ended with BYE.

One loop drives every timer: transaction retransmissions and timeouts, our
2xx retransmitted until the ACK comes (a session whose 2xx is never
acknowledged is ended), session expiry, and media sessions the engine closed
on its own (RTP timeout). It sleeps until the earliest deadline, at most a
second, and is woken early when a new timer starts.
"""

from __future__ import annotations

import asyncio
import logging

from callvault.runtime.sip.core import RecordingCall, ServerCore
from callvault.runtime.sip.refusals import Refusal
from callvault.runtime.sip.transport import Peer
from callvault.sip.message import SipRequest

log = logging.getLogger(__name__)

MIN_SESSION_EXPIRES = 90


def session_expires(request: SipRequest) -> int | None:
    """The interval the SRC asks for in ``Session-Expires``; refused below ``Min-SE`` (422)."""
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


def session_timer_headers(call: RecordingCall, *, require: bool) -> list[tuple[str, str]]:
    """Session-Expires for a 2xx (plus ``Require: timer`` on INVITE answers); none without a timer."""
    if call.session_expires is None:
        return []
    headers = [("Session-Expires", f"{call.session_expires};refresher=uac")]
    if require:
        headers.append(("Require", "timer"))
    return headers


def arm_session_timer(core: ServerCore, call: RecordingCall) -> None:
    if call.session_expires is not None:
        call.expires_at = core.clock() + call.session_expires


async def run_timers(core: ServerCore) -> None:
    """Tick until cancelled."""
    while True:
        deadlines = [d for d in [core.transactions.next_deadline] if d is not None]
        for call in core.calls.values():
            if call.ok is not None and (d := call.ok.next_deadline) is not None:
                deadlines.append(d)
        timeout = min(1.0, max(0.0, min(deadlines) - core.clock())) if deadlines else 1.0
        core.wake.clear()
        try:
            await asyncio.wait_for(core.wake.wait(), timeout)
        except TimeoutError:
            pass
        try:
            tick(core)
        except Exception:
            log.exception("SIP timer processing failed")


def tick(core: ServerCore) -> None:
    for transaction, responses in core.transactions.poll():
        if isinstance(transaction.context, Peer):
            core.send(transaction.context, responses)
    now = core.clock()
    for call in list(core.calls.values()):
        if call.ok is not None:
            core.send(call.peer, call.ok.poll())
            if call.ok.gave_up:
                log.warning("call %s: no ACK for our 200; ending the session", call.call_id)
                core.end_call_soon(call, "interrupted", send_bye=True)
                continue
        if call.expires_at is not None and now >= call.expires_at:
            log.warning("call %s: session timer expired", call.call_id)
            core.end_call_soon(call, "complete", send_bye=True)
            continue
        if call.media is not None and call.media.closing and call.state != "ended":
            # The media engine closed the session on its own (RTP timeout).
            core.end_call_soon(call, "complete", send_bye=True)
