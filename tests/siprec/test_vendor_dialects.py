"""Every SRC dialect's own fixture (tests/fixtures/siprec) sent to a running recorder as a SIPREC call.

Each offer is answered and recorded (or, when its metadata is broken, recorded
without metadata or refused with a reason: never a crash); plain SDP is refused.
AudioCodes and FreeSWITCH calls carry real audio, which must land on the channel
the documented rule chain says, with the vendor's call ids searchable; BroadWorks
and Avaya calls come with their own headers (no ``Require: siprec``, ``;src`` or
``+sip.src`` inside the Contact URI) and are recorded all the same.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

import pytest

from callvault.services.search import RecordingQuery
from tests.siprec.conftest import Recorder, as_peer
from tests.support.audio import correlation, voice
from tests.support.people import ADMIN
from tests.support.siprec_samples import PLAIN_SDPS, first_boundary, offer
from tests.support.test_src import RtpSender, TestSrc, answered_ports, frames_for, send_rtp

OFFER_STATUS = {
    "oracle-acme.txt": 200,
    "cisco-cube.txt": 200,
    "cisco-cube-inactive.txt": 200,
    "ribbon-sonus.txt": 200,
    "avaya-sbce.txt": 200,
    "broadworks.txt": 200,
    "opensips.txt": 200,
    "sems.txt": 200,
    "audiocodes.txt": 200,
    "freeswitch.txt": 200,
    "broadworks-stripped.txt": None,  # broken metadata: recorded without it or refused, never a crash
}


@pytest.mark.parametrize("name", sorted(OFFER_STATUS))
async def test_vendor_offer_is_answered_and_recorded(recorder: Recorder, name: str) -> None:
    body = offer(name)
    content_type = f"multipart/mixed;boundary={first_boundary(body)}"
    labels = re.findall(rb"^a=label:(\S+?)\r?$", body, re.MULTILINE)
    src = TestSrc("127.0.0.1", recorder.port)

    def call() -> tuple[int, bytes]:
        try:
            response = src.invite(content_type, body)
            if response.status == 200:
                assert src.bye().status == 200
            else:
                assert 400 <= response.status < 600 and response.header("warning")
            assert src.options().status == 200
            return response.status, response.body
        finally:
            src.close()

    status, answer = await as_peer(call)
    expected = OFFER_STATUS[name]
    if expected is not None:
        assert status == expected
    if status == 200:
        # One recvonly (or inactive) answer per labelled stream, in the offer's order.
        assert list(answered_ports(answer)) == [label.decode() for label in labels]
        recording = await recorder.finished(await recorder.recording_for(src.call_id))
        assert recording.status in ("complete", "incomplete")


@pytest.mark.parametrize("name", sorted(p.name for p in PLAIN_SDPS.glob("*.sdp")))
async def test_plain_sdp_invite_is_refused_with_a_reason(recorder: Recorder, name: str) -> None:
    body = (PLAIN_SDPS / name).read_bytes()
    src = TestSrc("127.0.0.1", recorder.port)

    def call() -> None:
        try:
            invite, _ = src.request_text("INVITE", body=body, content_type="application/sdp")
            src.send_raw(invite.replace(b";+sip.src", b""))
            response = src.final_response()
            assert response.status == 488 and "not a recording session" in (response.header("warning") or "")
            assert src.options().status == 200
        finally:
            src.close()

    await as_peer(call)


@dataclass
class DialectCall:
    fixture: str
    encoding: str
    payload_type: int
    left_label: str  # the label whose audio the rule chain puts on the left (agent) channel
    rule_note: str


async def _record_fixture_call(
    recorder: Recorder, spec: DialectCall, seconds: float = 1.5
) -> tuple[str, dict]:
    body = offer(spec.fixture)
    content_type = f"multipart/mixed;boundary={first_boundary(body)}"
    labels = [label.decode() for label in re.findall(rb"^a=label:(\S+?)\r?$", body, re.MULTILINE)]
    pcm = {label: voice(seconds, 8000, 140.0 + 80.0 * i, seed=i + 1) for i, label in enumerate(labels)}
    frames = {label: frames_for(spec.encoding, pcm[label]) for label in labels}
    src = TestSrc("127.0.0.1", recorder.port)

    def call() -> tuple[float, float]:
        try:
            response = src.invite(content_type, body)
            answered = time.monotonic()
            assert response.status == 200, (response.status, response.reason)
            ports = answered_ports(response.body)
            senders = [
                RtpSender("127.0.0.1", ports[label], spec.payload_type, frames[label]) for label in labels
            ]
            first_sent = send_rtp(senders)
            assert src.bye().status == 200
            return first_sent - answered, time.monotonic() - answered
        finally:
            src.close()

    lead_in, call_seconds = await as_peer(call)
    recording_id = await recorder.recording_for(src.call_id)
    recording = await recorder.finished(recording_id)
    assert recording.status == "complete" and recording.channels == 2 and not recording.mixed
    audio, rate = await asyncio.to_thread(recorder.audio, recording_id)
    assert rate == 8000 and abs(audio.shape[1] / rate - call_seconds) <= 0.1
    skip = round(lead_in * rate)
    left, right = (channel[skip:] for channel in audio)
    right_label = next(label for label in labels if label != spec.left_label)
    lag = int(rate * 0.03)
    assert correlation(left, pcm[spec.left_label], max_lag=lag) >= 0.9, spec.rule_note
    assert correlation(right, pcm[right_label], max_lag=lag) >= 0.9, spec.rule_note
    assert correlation(left, pcm[right_label], max_lag=lag) < 0.5, spec.rule_note
    detail = await asyncio.to_thread(recorder.detail, recording_id)
    return recording_id, detail


async def test_audiocodes_call_agent_by_directory_and_vendor_ids_searchable(recorder: Recorder) -> None:
    # Label 1 is the customer's, label 2 bob's (sip:1002@pbx.example, a known agent): the
    # directory rule puts label 2 left although it comes second.
    spec = DialectCall("audiocodes.txt", "PCMA", 8, "2", "AudioCodes: directory rule")
    recording_id, detail = await _record_fixture_call(recorder, spec)
    streams = {s["label"]: s for s in detail["streams"]}
    assert streams["2"]["channel"] == "left" and streams["1"]["channel"] == "right"
    assert streams["2"]["participant_aor"] == "1002@pbx.example"
    assert detail["agent"] == "bob"
    roles = {p["aor"]: p["role"] for p in detail["participants"]}
    assert roles == {"+14155550123@trunk.example.com": "customer", "1002@pbx.example": "agent"}
    ids = {(i["kind"], i["value"]) for i in detail["call_ids"]}
    assert ("ucid", "FA080019002C51E3A9D044") in ids
    assert ("genesys_uuid", "7QK2M4N6P8R0T2V4X6Z8B0D2F4H6J8L") in ids
    found = await asyncio.to_thread(
        recorder.ctx.search.search, ADMIN, RecordingQuery(call_id="FA080019002C51E3A9D044")
    )
    assert [item["id"] for item in found.items] == [recording_id]


async def test_freeswitch_call_label_order_and_leg_call_id_searchable(recorder: Recorder) -> None:
    # No participant-stream mapping in this dialect: the first label ("inbound") goes left.
    spec = DialectCall("freeswitch.txt", "PCMU", 0, "inbound", "FreeSWITCH: label order")
    recording_id, detail = await _record_fixture_call(recorder, spec)
    streams = {s["label"]: s["channel"] for s in detail["streams"]}
    assert streams == {"inbound": "left", "outbound": "right"}
    # alice (sip:1001@pbx.example) is a known agent even without a stream of her own.
    roles = {p["aor"]: p["role"] for p in detail["participants"]}
    assert roles["1001@pbx.example"] == "agent"
    leg_call_id = "3b8e1f60-52a4-11f0-8c1d-0242ac120004"
    assert ("sip_call_id", leg_call_id) in {(i["kind"], i["value"]) for i in detail["call_ids"]}
    found = await asyncio.to_thread(recorder.ctx.search.search, ADMIN, RecordingQuery(call_id=leg_call_id))
    assert [item["id"] for item in found.items] == [recording_id]


def _invite_as_vendor(src: TestSrc, body: bytes, contact: str) -> bytes:
    """An INVITE with the fixture's body, no ``Require: siprec`` and the vendor's own Contact."""
    content_type = f"multipart/mixed;boundary={first_boundary(body)}"
    invite, _ = src.request_text("INVITE", body=body, content_type=content_type)
    ours = f"Contact: <sip:src@127.0.0.1:{src.local_port}>;+sip.src".encode()
    assert ours in invite and b"Require:" not in invite
    return invite.replace(ours, contact.format(port=src.local_port).encode())


@pytest.mark.parametrize(
    ("fixture", "contact"),
    [
        # BroadWorks/Webex: neither Require: siprec nor +sip.src, only ";src" on the Contact.
        ("broadworks.txt", "Contact: <sip:src@127.0.0.1:{port}>;src"),
        # Avaya: +sip.src inside the URI's brackets.
        ("avaya-sbce.txt", "Contact: <sip:src@127.0.0.1:{port};+sip.src>"),
    ],
)
async def test_vendor_headers_without_require_siprec_still_record(
    recorder: Recorder, fixture: str, contact: str
) -> None:
    body = offer(fixture)
    labels = [label.decode() for label in re.findall(rb"^a=label:(\S+?)\r?$", body, re.MULTILINE)]
    pcm = voice(1.5, 8000, 180.0, seed=7)
    src = TestSrc("127.0.0.1", recorder.port)

    def call() -> float:
        try:
            src.send_raw(_invite_as_vendor(src, body, contact))
            response = src.final_response()
            answered = time.monotonic()
            assert response.status == 200, (response.status, response.reason)
            src.to_tag = response.to_tag
            src.ack()
            ports = answered_ports(response.body)
            first_sent = send_rtp([RtpSender("127.0.0.1", ports[labels[0]], 8, frames_for("PCMA", pcm))])
            assert src.bye().status == 200
            return first_sent - answered
        finally:
            src.close()

    lead_in = await as_peer(call)
    recording = await recorder.finished(await recorder.recording_for(src.call_id))
    assert recording.status in ("complete", "incomplete")
    audio, rate = await asyncio.to_thread(recorder.audio, recording.id)
    if fixture == "broadworks.txt":
        # One stream both parties send on: stored mono, flagged mixed.
        assert recording.mixed and recording.channels == 1
    else:
        assert not recording.mixed and recording.channels == 2
    skip = round(lead_in * rate)
    # The audio sent on the first label is in the recording (on one channel when it is stereo).
    assert max(correlation(channel[skip:], pcm, max_lag=int(rate * 0.03)) for channel in audio) >= 0.9
