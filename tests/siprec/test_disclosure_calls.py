"""Disclosure verification end to end: SIPREC calls from the test SRC to a running recorder.

A call to a California number (marked all-party notification by the
customer's area code) in which the SBC plays the recording announcement to
the customer is sealed ``verified``, with the offset where it was heard and
the channel; the same kind of call without it is ``missing``, a call to a
one-party state without it ``not_required``, and the search finds each by that.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx
import numpy as np

from callvault.media.announcement_match import fingerprint
from tests.siprec.conftest import Recorder, as_peer
from tests.siprec.test_calls import AGENT, CUSTOMER, within_call
from tests.support.audio import mono_wav, voice
from tests.support.people import ADMIN
from tests.support.phone_line import ANNOUNCEMENT, RATE, place, speak
from tests.support.test_src import (
    RtpSender,
    Stream,
    TestSrc,
    answered_ports,
    frames_for,
    metadata_xml,
    multipart,
    sdp_offer,
    send_rtp,
)

NEW_YORK = "sip:+12125550199@carrier.example"  # a one-party state
CALL_SECONDS = 7.0
PLAYED_AT = 1.0  # seconds into the customer's stream


@dataclass
class Sent:
    call_id: str
    lead_in: float  # 200 arrived → first RTP sent: where the streams start in the recording


def _call(
    recorder: Recorder,
    encoding: str,
    customer_16k: np.ndarray,
    agent_16k: np.ndarray,
    customer: str = CUSTOMER,
) -> Sent:
    rate = 16000 if encoding == "G722" else 8000
    step = 16000 // rate
    agent_stream = Stream("1", encoding, sender_aor=AGENT)
    customer_stream = Stream("2", encoding, sender_aor=customer)
    streams = [agent_stream, customer_stream]
    content_type, body = multipart(
        sdp_offer(streams), metadata_xml([("YQ==", AGENT), ("cA==", customer)], streams)
    )
    # (A crude decimation is enough for the narrowband stream: both sides hear the same.)
    frames = [frames_for(encoding, pcm[::step].copy()) for pcm in (agent_16k, customer_16k)]
    src = TestSrc("127.0.0.1", recorder.port, "UDP")
    try:
        response = src.invite(content_type, body)
        answered = time.monotonic()
        assert response.status == 200, response
        ports = answered_ports(response.body)
        senders = [
            RtpSender("127.0.0.1", ports[stream.label], stream.payload_type, stream_frames)
            for stream, stream_frames in zip(streams, frames, strict=True)
        ]
        first_sent = send_rtp(senders)
        assert src.bye().status == 200
        return Sent(src.call_id, first_sent - answered)
    finally:
        src.close()


async def test_played_announcement_is_verified_where_it_was_heard_and_its_absence_is_missing(
    recorder: Recorder,
) -> None:
    announcement = speak(ANNOUNCEMENT)
    await asyncio.to_thread(
        recorder.ctx.announcements.add, ADMIN, "greeting", mono_wav(announcement, RATE), "greeting.wav"
    )
    lead = fingerprint(announcement, RATE).lead_seconds
    agent = place(CALL_SECONDS, [(PLAYED_AT + 4.5, voice(2.0, RATE, 140.0, seed=1))])
    with_it = place(CALL_SECONDS, [(PLAYED_AT, announcement)])
    without = place(CALL_SECONDS, [(PLAYED_AT, voice(4.0, RATE, 220.0, seed=2))])
    played, silent, one_party = await asyncio.gather(
        as_peer(lambda: _call(recorder, "G722", with_it, agent)),
        as_peer(lambda: _call(recorder, "PCMU", without, agent)),
        as_peer(lambda: _call(recorder, "PCMU", without, agent, NEW_YORK)),
    )
    played_id = await recorder.recording_for(played.call_id)
    silent_id = await recorder.recording_for(silent.call_id)
    one_party_id = await recorder.recording_for(one_party.call_id)
    for recording_id in (played_id, silent_id, one_party_id):
        assert (await recorder.finished(recording_id)).status == "complete"

    detail = await asyncio.to_thread(recorder.detail, played_id)
    disclosure = detail["disclosure"]
    assert detail["consent_requirement"] == "all_party_notification"  # +1 415: California
    assert disclosure["status"] == "verified", detail
    assert disclosure["requirement"] == "all_party_notification"
    assert disclosure["channel"] == "customer" and disclosure["announcement"] == "greeting"
    sent_at = played.lead_in + PLAYED_AT + lead
    assert within_call(disclosure["offset_seconds"], sent_at), (disclosure, sent_at)
    heard = [e for e in detail["events"] if e["kind"] == "disclosure_heard"]
    assert len(heard) == 1 and heard[0]["offset_seconds"] == disclosure["offset_seconds"]

    missing = (await asyncio.to_thread(recorder.detail, silent_id))["disclosure"]
    assert missing["status"] == "missing" and missing["offset_seconds"] is None, missing
    assert missing["requirement"] == "all_party_notification"
    not_required = (await asyncio.to_thread(recorder.detail, one_party_id))["disclosure"]
    assert not_required["status"] == "not_required" and not_required["requirement"] == "one_party"

    def search(status: str) -> list[str]:
        response = httpx.get(
            f"http://127.0.0.1:{recorder.http_port}/api/v1/recordings",
            params={"disclosure": status},
            headers={"Authorization": f"Bearer {recorder.token}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await asyncio.to_thread(search, "missing") == [silent_id]
    assert await asyncio.to_thread(search, "verified") == [played_id]
    assert await asyncio.to_thread(search, "not_required") == [one_party_id]
