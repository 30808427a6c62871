"""Recording rules at call time: decided when a call starts, again when its metadata changes.

The decision itself is domain code (:mod:`callvault.services.recording_rules`);
this module gives it the call's facts and carries out its answer on the SIP
side: a call left unrecorded gets an unrecorded media session (answered,
never written, see :mod:`callvault.runtime.media.unrecorded`), an on-demand
call a normal one whose seal waits for a keep request
(:mod:`callvault.runtime.media.on_demand`). When new metadata changes the
answer (a participant joins): a recorded call that must no longer be is
silenced from that moment (cause ``rule``), an unrecorded call that now must
be recorded (a must-record agent joined) is captured from that moment on the
ports it already has (a ``recording_started`` event marks where).
"""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import Counter

from callvault.media.codec_spec import CodecSpec
from callvault.runtime.media.session import MediaSession
from callvault.runtime.media.unrecorded import UnrecordedSession
from callvault.runtime.sip.core import RecordingCall, ServerCore, ended
from callvault.runtime.sip.offer import DELAYED_OFFER_CODECS
from callvault.services.call_record import CallEvent
from callvault.services.recording_rule_store import RecordingRuleStore
from callvault.services.recording_rules import Decision
from callvault.services.rule_outcome import (
    customer_of,
    from_extensions,
    parse_labels,
    rule_columns,
    session_key,
)
from callvault.sip.message import SipRequest

log = logging.getLogger(__name__)

RULE_CAUSE = "rule"
RULE_DECISIONS = Counter(
    "callvault_recording_rule_decisions_total",
    "Calls by what the recording rules decided at their start (audio: captured or not)",
    ["action", "audio"],
)


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
    if decision is not None:
        audio = "captured" if decision.record_audio else "not_captured"
        RULE_DECISIONS.labels(action=decision.action, audio=audio).inc()
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
    columns = rule_columns(after, call.labels)
    columns.setdefault("rule_name", after.rule_name)
    columns.setdefault("rule_action", after.action)
    await asyncio.to_thread(core.recordings.apply_rule, recording_id, columns)
    if not after.record_audio and core.media.is_live(recording_id):
        log.info(
            "call %s: rule %r now says %s; audio silenced from here",
            call.call_id,
            after.rule_name,
            after.action,
        )
        core.media.silence(recording_id, RULE_CAUSE, detail={"rule": after.rule_name or ""})
    elif after.record_audio and isinstance(call.media, UnrecordedSession) and not ended(call):
        await _start_recording(core, call, recording_id)


async def _start_recording(core: ServerCore, call: RecordingCall, recording_id: str) -> None:
    """An unrecorded call must now be recorded (a must-record agent joined): capture from here on."""
    labels = list(call.ports)
    bindings = {b.label: b for b in await asyncio.to_thread(call.session.bind_streams, labels)}
    if ended(call) or not core.media.is_unrecorded_live(recording_id):
        return
    streams: list[tuple[str, list[CodecSpec], int, str | None, object | None, bool]] = []
    for label in labels:
        plan = call.streams.get(label)
        codecs = list(plan.codecs) if plan is not None else list(DELAYED_OFFER_CODECS)
        srtp = plan.srtp if plan is not None else None
        on_hold = plan.on_hold if plan is not None else False
        binding = bindings[label]
        streams.append((label, codecs, binding.channel, binding.participant_aor, srtp, on_hold))
    media = core.media.record_unrecorded(recording_id, streams)
    call.media = media
    offset = max(0.0, time.time() - media.started_at)
    core.media.record_event(recording_id, CallEvent("recording_started", offset, {"reason": "must_record"}))
    log.info(
        "call %s: a must-record agent joined; recording %s from %.1f s", call.call_id, recording_id, offset
    )
