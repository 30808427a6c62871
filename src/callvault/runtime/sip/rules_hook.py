"""Recording rules at call time: decided when a call starts, again when its metadata changes.

The decision itself is domain code (:mod:`callvault.services.recording_rules`);
this module gives it the call's facts and carries out its answer on the SIP
side: a call left unrecorded gets an unrecorded media session (answered,
never written, see :mod:`callvault.runtime.media.unrecorded`), an on-demand
call a normal one whose seal waits for a keep request
(:mod:`callvault.runtime.media.on_demand`). When new metadata changes the
answer (a participant joins): a recorded call that must no longer be is
silenced from that moment (cause ``rule``), an unrecorded call that now must
be recorded (a must-record agent joined) raises an alert, since the audio
before cannot be had.
"""

from __future__ import annotations

import asyncio
import logging
import time

from callvault.runtime.media.session import MediaSession
from callvault.runtime.media.unrecorded import UnrecordedSession
from callvault.runtime.sip.core import RecordingCall, ServerCore
from callvault.services.access import Principal
from callvault.services.alerts import MUST_RECORD_NOT_RECORDED, NewAlert
from callvault.services.recording_rule_store import RecordingRuleStore
from callvault.services.recording_rules import Decision
from callvault.services.rule_outcome import customer_of, from_extensions, parse_labels, session_key
from callvault.sip.message import SipRequest

log = logging.getLogger(__name__)

RULE_CAUSE = "rule"


def read_headers(call: RecordingCall, request: SipRequest) -> None:
    """Queue and labels an SBC or PBX put on the INVITE (``X-Queue``, ``X-Recording-Labels``)."""
    queue = (request.headers.get("X-Queue") or "").strip()
    if queue:
        call.session.call.queue = queue[:120]
    call.labels = parse_labels(request.headers.get("X-Recording-Labels"))


def decide(rules: RecordingRuleStore, call: RecordingCall, region: str) -> Decision:
    """The rules' answer for the call as known now (in a thread: reads the catalogue)."""
    record = call.session.call
    metadata = call.session.metadata
    if metadata is not None:
        queue, labels = from_extensions(
            [*metadata.extensions, *(x for s in metadata.sessions for x in s.extensions)]
        )
        if record.queue is None and queue:
            record.queue = queue
        call.labels = sorted({*call.labels, *labels})
    plan = call.session.plan
    agents = plan.agent_user_ids.values() if plan is not None else ()
    facts = rules.facts(
        record.started_at,
        session_key(record),
        agents,
        queue=record.queue,
        direction=call.session.direction,
        customer=customer_of(record, region),
        labels=call.labels,
    )
    return rules.decide(facts)


def open_media(core: ServerCore, call: RecordingCall, recording_id: str) -> MediaSession | UnrecordedSession:
    """The call's media session as the rules decided: unrecorded, held for a keep, or plain."""
    decision = call.decision
    if decision is not None and not decision.record_audio:
        return core.media.open_unrecorded(recording_id, time.time())
    session = core.media.open_session(recording_id, time.time())
    if decision is not None and decision.action == "on_demand":
        core.media.keep_gate.hold(recording_id)
    return session


async def reevaluate(core: ServerCore, call: RecordingCall) -> None:
    """After new metadata: apply a changed answer (see the module's docstring)."""
    rules, before = core.rules, call.decision
    if rules is None or before is None or call.recording_id is None:
        return
    after = await asyncio.to_thread(decide, rules, call, core.settings.default_region)
    if after.record_audio == before.record_audio:
        return
    call.decision = after
    recording_id = call.recording_id
    if not after.record_audio and core.media.is_live(recording_id):
        log.info(
            "call %s: rule %r now says %s; audio silenced from here",
            call.call_id,
            after.rule_name,
            after.action,
        )
        core.media.silence(recording_id, RULE_CAUSE, detail={"rule": after.rule_name or ""})
    elif after.record_audio and after.must_record and core.alerts is not None:
        detail = (
            f"a must-record agent joined call {call.call_id!r}, left unrecorded by rule {before.rule_name!r}"
        )
        alert = NewAlert(MUST_RECORD_NOT_RECORDED, detail, recording_id=recording_id)
        await asyncio.to_thread(core.alerts.raise_alert, alert, Principal.system())
