"""SIPREC calls from the independent test SRC: audio lands on the right channel, with the right length."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client import REGISTRY
from scipy.signal import resample_poly
from sqlalchemy import select

from callvault.db.models import Participant, Recording, RecordingEvent
from callvault.db.models import Stream as StreamRow
from callvault.runtime.demo_src import run_demo
from tests.siprec.conftest import Recorder, as_peer, start_recorder
from tests.support.audio import aligned, correlation, voice
from tests.support.test_src import (
    Response,
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
SOURCE_RATES = {"PCMU": 8000, "PCMA": 8000, "G722": 16000, "OPUS": 48000}


@dataclass(frozen=True)
class CallSpec:
    encoding: str = "PCMU"
    seconds: float = 1.5
    transport: str = "UDP"
    srtp: str | None = None  # SDES suite
    drop: frozenset[int] = frozenset()  # 20 ms frames lost on both streams
    customer_digits: tuple[tuple[int, int, int], ...] = ()  # RFC 4733 (event, first frame, frames)


@dataclass
class SentCall:
    """A call as the SRC saw it. The recording spans the call (session opened → BYE), so the
    audio sent begins ``lead_in`` seconds into it: the time from our 200 to the first RTP."""

    call_id: str
    agent: np.ndarray  # what the recording's left channel must hold, at ``rate``
    customer: np.ndarray
    rate: int
    lead_in: float
    call_seconds: float  # from the 200 arriving to the BYE leaving


# Frames are 20 ms, and the recording's start and end are stamped on the recorder's side of
# the network: how much later than the SRC saw it a loaded 2-core machine can make it.
FRAME = 0.025
DELIVERY_SLACK = 0.5


def within_call(recorded: float, sent: float) -> bool:
    """A time the recorder measured, against the same time as the SRC measured it."""
    return sent - FRAME <= recorded <= sent + DELIVERY_SLACK


def spans_call(recorded: float, sent: float) -> bool:
    """The same, for a call the recorder hung up: each end may be off by a delivery, either way."""
    return abs(recorded - sent) <= DELIVERY_SLACK


def _silenced(pcm: np.ndarray, rate: int, frames: set[int]) -> np.ndarray:
    """``pcm`` with the given 20 ms frames zeroed: what a recorder must render for lost packets."""
    out = pcm.copy()
    step = rate // 50
    for index in frames:
        out[index * step : (index + 1) * step] = 0
    return out


async def _two_party_call(recorder: Recorder, spec: CallSpec, tls: ssl.SSLContext | None = None) -> SentCall:
    rate = SOURCE_RATES[spec.encoding]
    agent_pcm = voice(spec.seconds, rate, 140.0, seed=1)
    customer_pcm = voice(spec.seconds, rate, 220.0, seed=2)
    srtp = spec.srtp is not None
    suite = spec.srtp or "AES_CM_128_HMAC_SHA1_80"
    # Label order puts the customer first so only the directory rule can get the layout right.
    agent_stream = Stream("2", spec.encoding, sender_aor=AGENT, srtp=srtp, srtp_suite=suite)
    customer_stream = Stream("1", spec.encoding, sender_aor=CUSTOMER, srtp=srtp, srtp_suite=suite)
    streams = [customer_stream, agent_stream]
    content_type, body = multipart(
        sdp_offer(streams),
        metadata_xml([("cA==", CUSTOMER), ("YQ==", AGENT)], streams),
    )
    port = {"UDP": recorder.port, "TCP": recorder.server.tcp_port, "TLS": recorder.server.tls_port}[
        spec.transport
    ]
    assert port is not None

    # Encoded before the INVITE so the audio follows the answer at once.
    agent_frames, customer_frames = (
        frames_for(spec.encoding, agent_pcm),
        frames_for(spec.encoding, customer_pcm),
    )

    def call() -> tuple[str, float, float]:
        # Connecting (a TLS handshake) blocks: the peer thread does it, not the event loop.
        src = TestSrc("127.0.0.1", port, spec.transport, tls=tls)
        try:
            response = src.invite(content_type, body)
            answered = time.monotonic()
            assert response.status == 200, (spec, response.status, response.reason)
            assert response.body.count(b"a=recvonly") == 2
            ports = answered_ports(response.body)
            if srtp:
                assert response.body.count(f"a=crypto:1 {suite} inline:".encode()) == 2, response.body
            senders = [
                RtpSender(
                    "127.0.0.1",
                    ports[stream.label],
                    stream.payload_type,
                    frames,
                    samples_per_frame=stream.samples_per_frame,
                    srtp_key=stream.key if srtp else None,
                    srtp_suite=suite,
                    drop=spec.drop,
                    digits=digits,
                )
                for stream, frames, digits in (
                    (agent_stream, agent_frames, ()),
                    (customer_stream, customer_frames, spec.customer_digits),
                )
            ]
            first_sent = send_rtp(senders)
            hang_up = time.monotonic()
            assert src.bye().status == 200
            return src.call_id, first_sent - answered, hang_up - answered
        finally:
            src.close()

    call_id, lead_in, call_seconds = await as_peer(call)
    digit_frames = {first + i for _, first, frames in spec.customer_digits for i in range(frames)}
    return SentCall(
        call_id,
        _silenced(agent_pcm, rate, set(spec.drop)),
        _silenced(customer_pcm, rate, set(spec.drop) | digit_frames),
        rate,
        lead_in,
        call_seconds,
    )


def _at_rate(pcm: np.ndarray, rate: int, target: int) -> np.ndarray:
    """The whole band of ``pcm`` at the rate the SRC sent (no filtering beyond resampling)."""
    samples = pcm.astype(np.float64)
    return samples if rate == target else resample_poly(samples, target, rate)


async def _check_stereo(
    recorder: Recorder,
    sent: SentCall,
    status: str = "complete",
    what: str = "",
    recorder_hung_up: bool = False,
) -> Recording:
    recording_id = await recorder.recording_for(sent.call_id)
    recording = await recorder.finished(recording_id)
    assert recording.status == status, what
    assert recording.channels == 2 and not recording.mixed, what
    audio, rate = await asyncio.to_thread(recorder.audio, recording_id)
    assert audio.shape[0] == 2
    # The recorder's span (session opened before its 200 left → BYE arrived) holds the SRC's
    # (200 arrived → BYE left): never shorter, and longer only by delivery delays, which a
    # loaded machine stretches well past the tens of milliseconds of an idle one.
    # When the recorder hangs up, its span ends before the SRC sees the BYE, so it can also be shorter.
    check = spans_call if recorder_hung_up else within_call
    seconds = audio.shape[1] / rate
    assert check(seconds, sent.call_seconds), (what, seconds, sent)
    assert recording.duration_seconds is not None, what
    assert check(recording.duration_seconds, sent.call_seconds), (what, recording.duration_seconds)
    # The audio starts where the first RTP did: searched from lead_in up to a delivery delay later.
    skip = round(sent.lead_in * sent.rate)
    left, right = (_at_rate(channel, rate, sent.rate) for channel in audio)
    agent_ref = sent.agent.astype(np.float64)
    customer_ref = sent.customer.astype(np.float64)
    start = (
        left.size - aligned(left, agent_ref, skip, skip + round(DELIVERY_SLACK * sent.rate), sent.rate).size
    )
    left, right = left[start:], right[start:]
    lag = int(sent.rate * 0.03)
    assert correlation(left, agent_ref, max_lag=lag) >= 0.9, what
    assert correlation(right, customer_ref, max_lag=lag) >= 0.9, what
    assert correlation(left, customer_ref, max_lag=lag) < 0.5, what
    return recording


async def test_two_stream_pcmu_call_agent_left_customer_right(recorder: Recorder) -> None:
    sent = await _two_party_call(recorder, CallSpec(seconds=2.0))
    await _check_stereo(recorder, sent)
    # The signed manifest names the SRC the recording came from.
    with recorder.ctx.catalog.read() as session:
        manifests = [json.loads(r.manifest or "{}") for r in session.scalars(select(Recording))]
    assert [m["source"]["kind"] for m in manifests] == ["siprec"]
    assert manifests[0]["source"]["address"].startswith("udp:127.0.0.1:")
    assert manifests[0]["source"]["received_at"]


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "callvault test recorder")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "srs.pem", directory / "srs.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


VARIANTS = {
    "PCMA": CallSpec("PCMA"),
    "G.722": CallSpec("G722"),
    "Opus PT 111": CallSpec("OPUS"),
    "PCMU over TCP": CallSpec(transport="TCP"),
    "PCMU over TLS": CallSpec(transport="TLS"),
    "SRTP AES_CM_128_HMAC_SHA1_80": CallSpec(srtp="AES_CM_128_HMAC_SHA1_80"),
    "SRTP AES_CM_128_HMAC_SHA1_32": CallSpec("PCMA", srtp="AES_CM_128_HMAC_SHA1_32"),
}


async def test_codecs_transports_and_srtp_concurrently(tmp_path: Path, database_url: str) -> None:
    """Seven simultaneous calls, one per codec / transport / SRTP suite, on one recorder with TLS."""
    cert, key = _self_signed(tmp_path)
    async with start_recorder(
        tmp_path / "data", database_url, sip_tls_cert=str(cert), sip_tls_key=str(key), sip_tls_port="0"
    ) as recorder:
        assert recorder.server.tls_port
        tls = ssl.create_default_context(cafile=str(cert))
        sent = await asyncio.gather(*(_two_party_call(recorder, spec, tls) for spec in VARIANTS.values()))
        for name, call in zip(VARIANTS, sent, strict=True):
            recording = await _check_stereo(recorder, call, what=name)
            with recorder.ctx.catalog.read() as session:
                codecs = {
                    s.codec
                    for s in session.scalars(select(StreamRow).where(StreamRow.recording_id == recording.id))
                }
            assert codecs == {VARIANTS[name].encoding.upper()} or codecs == {
                VARIANTS[name].encoding.lower()
            }, (name, codecs)


async def test_dtmf_is_recorded_as_an_event_without_the_digit(tmp_path: Path, database_url: str) -> None:
    # Digit 5 for 200 ms from 0.6 s on the customer's stream; the audio of those frames is the event.
    # With the PCI pause on digits turned off (tests/siprec/test_pci_pause.py has it on).
    async with start_recorder(tmp_path / "data", database_url, pci_digit_pause="false") as recorder:
        sent = await _two_party_call(recorder, CallSpec(customer_digits=((5, 30, 10),)))
        recording = await _check_stereo(recorder, sent)
        detail = await asyncio.to_thread(recorder.detail, recording.id)
    dtmf = [e for e in detail["events"] if e["kind"] == "dtmf"]
    assert len(dtmf) == 1, detail["events"]
    assert "digit" not in dtmf[0]["data"]  # presence only (PCI DSS)
    assert within_call(dtmf[0]["offset_seconds"], sent.lead_in + 0.6)


async def test_loss_over_the_threshold_marks_the_recording_incomplete(recorder: Recorder) -> None:
    lost = frozenset(range(10, 70, 8))  # 8 of 75 packets per stream: 10.7 % > 5 %
    sent = await _two_party_call(recorder, CallSpec(drop=lost))
    recording = await _check_stereo(recorder, sent, status="incomplete")
    detail = await asyncio.to_thread(recorder.detail, recording.id)
    assert detail["status"] == "incomplete"
    assert len(detail["streams"]) == 2
    for stream in detail["streams"]:
        stats = stream["stats"]
        assert (stats["expected"], stats["received"], stats["lost"]) == (75, 67, 8), stream


async def test_delayed_offer_gets_our_offer_and_records_the_answer_in_the_ack(recorder: Recorder) -> None:
    """INVITE without SDP (Cisco CUCM built-in bridge): we offer in the 200, the SRC answers in the ACK."""
    seconds = 1.5
    first = voice(seconds, 8000, 140.0, seed=1)
    second = voice(seconds, 8000, 220.0, seed=2)
    src = TestSrc("127.0.0.1", recorder.port)

    def call() -> tuple[float, float]:
        try:
            response = src.invite(None, b"", ack=False)
            answered = time.monotonic()
            assert response.status == 200 and response.header("content-type") == "application/sdp"
            offer = response.body.decode()
            assert offer.count("m=audio") == 2 and offer.count("a=recvonly") == 2
            ports = answered_ports(response.body)
            answer = sdp_offer([Stream("1", "PCMA"), Stream("2", "PCMA")])
            src.ack(answer.encode(), "application/sdp")
            first_sent = send_rtp(
                [
                    RtpSender("127.0.0.1", ports["1"], 8, frames[0]),
                    RtpSender("127.0.0.1", ports["2"], 8, frames[1]),
                ]
            )
            hang_up = time.monotonic()
            assert src.bye().status == 200
            return first_sent - answered, hang_up - answered
        finally:
            src.close()

    frames = frames_for("PCMA", first), frames_for("PCMA", second)
    lead_in, call_seconds = await as_peer(call)
    # No metadata: the first stream goes left (label order).
    await _check_stereo(recorder, SentCall(src.call_id, first, second, 8000, lead_in, call_seconds))


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

    await as_peer(call)
    recording = await recorder.finished(await recorder.recording_for(src.call_id))
    assert recording.mixed
    audio, rate = await asyncio.to_thread(recorder.audio, recording.id)
    assert within_call(audio.shape[1] / rate, seconds)
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

    await as_peer(call)
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


async def test_overlapping_reinvite_gets_491_and_signalling_never_waits_for_the_catalogue(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Once the call is answered, resolving agents (the catalogue) hangs until the gate opens.
    gate, gating = threading.Event(), threading.Event()
    real = recorder.ctx.directory.agent_for

    def slow_agent_for(identity: str | None) -> int | None:
        if gating.is_set():
            gate.wait(5)
        return real(identity)

    monkeypatch.setattr(recorder.ctx.directory, "agent_for", slow_agent_for)
    streams = [Stream("1", "PCMU", sender_aor=AGENT), Stream("2", "PCMU", sender_aor=CUSTOMER)]
    participants = [("YQ==", AGENT), ("cA==", CUSTOMER)]
    content_type, body = multipart(sdp_offer(streams), metadata_xml(participants, streams))
    src = TestSrc("127.0.0.1", recorder.port)

    def call() -> None:
        try:
            assert src.invite(content_type, body).status == 200
            gating.set()
            src.cseq += 1
            first, _ = src.request_text(
                "INVITE",
                body=sdp_offer(streams, hold=True, version=2).encode(),
                content_type="application/sdp",
            )
            src.send_raw(first)
            src.cseq += 1
            second, second_branch = src.request_text(
                "INVITE", body=sdp_offer(streams, version=3).encode(), content_type="application/sdp"
            )
            src.send_raw(second)
            refused = src.final_response()
            assert refused.status == 491 and refused.header("Retry-After")
            ack, _ = src.request_text("ACK", branch=second_branch)  # the ACK of a non-2xx: its branch
            src.send_raw(ack)
            # The first offer still waits on the catalogue; other requests are answered meanwhile.
            assert src.options().status == 200
            gate.set()
            answered = src.final_response()
            assert answered.status == 200 and answered.body.count(b"a=inactive") == 2
            ack, _ = src.request_text("ACK", cseq=src.cseq - 1)  # the ACK of a 2xx: the INVITE's CSeq
            src.send_raw(ack)
            assert src.bye().status == 200
        finally:
            gate.set()
            src.close()

    await as_peer(call)
    recording = await recorder.finished(await recorder.recording_for(src.call_id))
    assert recording.status == "complete"


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

    await as_peer(call)
    assert list(recorder.server.recording_ids).count(src.call_id) == 1
    await recorder.finished(await recorder.recording_for(src.call_id))


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


async def test_malformed_requests_get_400_or_are_dropped(recorder: Recorder) -> None:
    malformed = _sample("callvault_sip_malformed_total")
    options = _sample("callvault_sip_requests_total", {"method": "OPTIONS"})
    bad_requests = _sample("callvault_sip_responses_total", {"status": "400"})
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

    await as_peer(exchange)
    # Prometheus: three broken messages, one answered 400, and the OPTIONS.
    assert _sample("callvault_sip_malformed_total") - malformed == 3
    assert _sample("callvault_sip_responses_total", {"status": "400"}) - bad_requests == 1
    assert _sample("callvault_sip_requests_total", {"method": "OPTIONS"}) - options == 1
    assert _sample("callvault_sip_calls_active") == recorder.server.active_calls == 0


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

    await as_peer(call)
    assert recorder.server.active_calls == 0
    assert src.call_id not in recorder.server.recording_ids


async def test_demo_src_records_calls(recorder: Recorder) -> None:
    call_ids = await run_demo("127.0.0.1", recorder.port, calls=2, seconds=1.0)
    assert len(call_ids) == 2
    for call_id in call_ids:
        recording = await recorder.finished(await recorder.recording_for(call_id))
        assert recording.status == "complete" and recording.channels == 2
        assert recording.duration_seconds is not None and within_call(recording.duration_seconds, 1.0)


async def _unended_call(
    recorder: Recorder, seconds: float, extra: list[str], before_bye: Callable[[], None]
) -> tuple[SentCall, bytes, Response]:
    """A call the SRC never hangs up: after the audio, ``before_bye`` runs and the recorder's BYE is awaited."""
    agent_pcm, customer_pcm = voice(seconds, 8000, 140.0, seed=1), voice(seconds, 8000, 220.0, seed=2)
    streams = [Stream("1", sender_aor=CUSTOMER), Stream("2", sender_aor=AGENT)]
    content_type, body = multipart(
        sdp_offer(streams), metadata_xml([("cA==", CUSTOMER), ("YQ==", AGENT)], streams)
    )
    frames = frames_for("PCMU", customer_pcm), frames_for("PCMU", agent_pcm)

    def call() -> tuple[str, float, float, bytes, Response]:
        src = TestSrc("127.0.0.1", recorder.port)
        try:
            response = src.invite(content_type, body, extra)
            answered = time.monotonic()
            assert response.status == 200, response.status
            ports = answered_ports(response.body)
            first_sent = send_rtp(
                [
                    RtpSender("127.0.0.1", ports["1"], 0, frames[0]),
                    RtpSender("127.0.0.1", ports["2"], 0, frames[1]),
                ]
            )
            before_bye()
            bye = src.wait_request("BYE", timeout=15)
            return src.call_id, first_sent - answered, time.monotonic() - answered, bye, response
        finally:
            src.close()

    call_id, lead_in, call_seconds, bye, answer = await as_peer(call)
    return SentCall(call_id, agent_pcm, customer_pcm, 8000, lead_in, call_seconds), bye, answer


async def test_rtp_timeout_ends_and_finalises_the_call(tmp_path: Path, database_url: str) -> None:
    async with start_recorder(tmp_path / "data", database_url, rtp_timeout="1") as recorder:
        sent, bye, _ = await _unended_call(recorder, 1.0, [], lambda: None)
        assert b"recording ended by the recorder" in bye
        # Ended within the timeout (1 s) plus one journal flush of the media engine.
        assert 1.9 <= sent.call_seconds - sent.lead_in <= 3.5, sent.call_seconds
        await _check_stereo(recorder, sent, recorder_hung_up=True)
        assert recorder.server.active_calls == 0


async def test_session_timer_expiry_ends_the_call(recorder: Recorder) -> None:
    def expire() -> None:
        recorder.clock.advance(91)  # the SRC (refresher=uac) never refreshes

    sent, bye, answer = await _unended_call(
        recorder, 1.0, ["Session-Expires: 90", "Supported: timer"], expire
    )
    assert (answer.header("session-expires") or "").startswith("90;refresher=uac")
    assert "timer" in (answer.header("require") or "")
    assert bye.startswith(b"BYE ")
    await _check_stereo(recorder, sent, recorder_hung_up=True)


async def test_over_capacity_answers_503_with_retry_after(tmp_path: Path, database_url: str) -> None:
    async with start_recorder(tmp_path / "data", database_url, max_calls="1") as recorder:
        streams = [Stream("1", sender_aor=CUSTOMER), Stream("2", sender_aor=AGENT)]
        content_type, body = multipart(
            sdp_offer(streams), metadata_xml([("cA==", CUSTOMER), ("YQ==", AGENT)], streams)
        )

        def two_calls() -> tuple[int, int, str | None, int]:
            first, second = TestSrc("127.0.0.1", recorder.port), TestSrc("127.0.0.1", recorder.port)
            try:
                held = first.invite(content_type, body)
                refused = second.invite(content_type, body)
                ended = first.bye()
                return held.status, refused.status, refused.header("retry-after"), ended.status
            finally:
                first.close()
                second.close()

        held, refused, retry_after, ended = await as_peer(two_calls)
        assert (held, refused, ended) == (200, 503, 200)
        assert retry_after is not None and int(retry_after) > 0
        # Capacity frees up once the first call has ended.
        recording_id = next(iter(recorder.server.recording_ids.values()))
        await recorder.finished(recording_id)
        assert recorder.server.active_calls == 0
