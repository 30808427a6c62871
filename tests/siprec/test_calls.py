"""SIPREC calls from the independent test SRC: audio lands on the right channel, with the right length."""

from __future__ import annotations

import asyncio

import numpy as np

from tests.siprec.conftest import Recorder
from tests.support.audio import correlation, voice
from tests.support.test_src import RtpSender, Stream, TestSrc, answered_ports, frames_for, metadata_xml, multipart, send_rtp

AGENT = "sip:1001@pbx.example"  # alice, a known agent (tests.support.people)
CUSTOMER = "sip:+14155550199@carrier.example"


def _resample_8k(signal: np.ndarray) -> np.ndarray:
    return signal


async def _two_party_call(
    recorder: Recorder,
    *,
    encoding: str = "PCMU",
    seconds: float = 2.0,
    customer_first: bool = True,
    transport: str = "UDP",
) -> tuple[str, np.ndarray, np.ndarray]:
    rate = 16000 if encoding == "G722" else 8000
    agent_pcm = voice(seconds, rate, 140.0, seed=1)
    customer_pcm = voice(seconds, rate, 220.0, seed=2)
    # Label order puts the customer first so only the directory rule can get the layout right.
    agent_stream = Stream("1" if not customer_first else "2", encoding, sender_aor=AGENT)
    customer_stream = Stream("2" if not customer_first else "1", encoding, sender_aor=CUSTOMER)
    streams = sorted([agent_stream, customer_stream], key=lambda s: s.label)
    content_type, body = multipart(
        __import__("tests.support.test_src", fromlist=["sdp_offer"]).sdp_offer(streams),
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
            senders = [
                RtpSender("127.0.0.1", ports[agent_stream.label], agent_stream.payload_type, frames_for(encoding, agent_pcm)),
                RtpSender("127.0.0.1", ports[customer_stream.label], customer_stream.payload_type, frames_for(encoding, customer_pcm)),
            ]
            send_rtp(senders)
            assert src.bye().status == 200
        finally:
            src.close()

    await asyncio.to_thread(call)
    return src.call_id, agent_pcm, customer_pcm


async def _check_stereo(recorder: Recorder, call_id: str, agent_pcm: np.ndarray, customer_pcm: np.ndarray, seconds: float) -> None:
    recording_id = await recorder.recording_for(call_id)
    recording = await recorder.finished(recording_id)
    assert recording.status == "complete"
    assert recording.channels == 2 and not recording.mixed
    audio, rate = await asyncio.to_thread(recorder.audio, recording_id)
    assert audio.shape[0] == 2
    assert abs(audio.shape[1] / rate - seconds) <= 0.05, audio.shape[1] / rate
    assert recording.duration_seconds is not None and abs(recording.duration_seconds - seconds) <= 0.05
    ref_rate = agent_pcm.size / seconds
    step = rate / ref_rate
    def at_rate(x: np.ndarray) -> np.ndarray:
        if step == 1:
            return x
        positions = np.arange(int(x.size * step)) / step
        return np.interp(positions, np.arange(x.size), x).astype(np.int16)
    agent_ref, customer_ref = at_rate(agent_pcm), at_rate(customer_pcm)
    assert correlation(audio[0], agent_ref, max_lag=int(rate * 0.03)) >= 0.9
    assert correlation(audio[1], customer_ref, max_lag=int(rate * 0.03)) >= 0.9
    assert correlation(audio[0], customer_ref, max_lag=int(rate * 0.03)) < 0.5


async def test_two_stream_pcmu_call_agent_left_customer_right(recorder: Recorder) -> None:
    call_id, agent, customer = await _two_party_call(recorder)
    await _check_stereo(recorder, call_id, agent, customer, 2.0)
