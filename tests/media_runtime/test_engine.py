"""End to end: RTP over real sockets → MediaEngine → RecordingService → decoded archive."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

import numpy as np
from tests.media_runtime.conftest import archive_pcm, begin_call, wait_final
from tests.media_runtime.rtp_send import rtp_packets, send_paced, tone, tone_match

from callvault.media.codec_spec import CodecSpec
from callvault.media.mixing import correlate
from callvault.runtime.media.engine import MediaEngine
from callvault.services.call_record import CallEvent
from callvault.services.context import ServiceContext

PCMU = CodecSpec(0, "PCMU", 8000)
DTMF = CodecSpec(101, "TELEPHONE-EVENT", 8000)
SECONDS = 2.0


async def _until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Poll ``condition`` (state of the engine's threads, which signal nothing) for ``seconds``."""
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    assert condition(), "the condition did not hold in time"


async def test_two_streams_with_reordering_loss_and_duplicates(services: ServiceContext) -> None:
    settings = services.settings
    engine = MediaEngine(settings, services.recordings)
    await engine.start()
    recording_id = begin_call(services)
    opened = time.time()
    session = engine.open_session(recording_id, opened)
    agent_port = engine.add_stream(session.recording_id, "agent", [PCMU, DTMF], 0, "sip:1001@pbx", None)
    customer_port = engine.add_stream(session.recording_id, "customer", [PCMU], 1, None, None)
    assert agent_port != customer_port
    assert settings.rtp_ports[0] <= agent_port <= settings.rtp_ports[1] and agent_port % 2 == 0

    agent_tone, customer_tone = tone(440, SECONDS), tone(1000, SECONDS)
    agent = rtp_packets(agent_tone, ssrc=0x1111)
    customer = rtp_packets(customer_tone, ssrc=0x2222)
    lost = {30, 31, 77}
    schedule: list[tuple[float, bytes, tuple[str, int]]] = []
    for i, packet in enumerate(agent):
        # Reordering: every 10th packet is held back 30 ms; duplicates of a few.
        delay = 0.03 if i % 10 == 5 else 0.0
        schedule.append((i * 0.02 + delay, packet, ("127.0.0.1", agent_port)))
        if i in (12, 40):
            schedule.append((i * 0.02 + 0.001, packet, ("127.0.0.1", agent_port)))
    for i, packet in enumerate(customer):
        if i not in lost:
            schedule.append((i * 0.02 + 0.0005, packet, ("127.0.0.1", customer_port)))
    engine.record_event(session.recording_id, CallEvent("dtmf", 0.5, {"digit": "7", "source": "sip-info"}))
    await asyncio.to_thread(send_paced, schedule)
    # The live calls page's figures while the call runs: the customer's three lost packets;
    # the agent's reordering and duplicates are no loss.
    engine.capture.flush_all()
    await _until(lambda: engine.live_loss(recording_id).get(1, {}).get("received") == 97)
    assert engine.live_loss(recording_id) == {
        0: {"received": 102, "expected": 100, "lost": 0},
        1: {"received": 97, "expected": 100, "lost": 3},
    }
    assert engine.finalise_backlog == 0
    closing = time.time()
    await engine.close(session.recording_id, "complete")
    closed = time.time()
    assert engine.finalise_backlog == 1  # ended, not sealed yet
    await engine.close(session.recording_id, "complete")  # a second close is harmless
    recording = await wait_final(services, recording_id)
    await _until(lambda: engine.finalise_backlog == 0)
    # Nothing of the call is kept once it is sealed: the engine's maps hold open calls only.
    assert engine.open_sessions == 0 and engine.session(recording_id) is None
    assert len(engine.schedule) == 0 and engine.pool.pinned == 0

    assert recording.status == "complete"  # 3 % loss is under the 5 % threshold
    assert recording.channels == 2 and not recording.mixed and recording.sample_rate == 8000
    pcm, rate = archive_pcm(services, recording)
    assert rate == 8000
    # The recording covers the session, from open to close; the audio starts when RTP came.
    assert closing - opened - 0.02 <= pcm.shape[1] / rate <= closed - opened + 0.02
    lead = _onset(pcm[0])
    assert 0 <= lead <= (closing - opened - SECONDS) * rate + 160
    pcm = pcm[:, lead:]
    n = min(pcm.shape[1], agent_tone.size)
    expected_right = customer_tone.copy()
    for i in lost:
        expected_right[160 * i : 160 * (i + 1)] = 0  # lost packets are silence of their real length
    assert tone_match(pcm[0, :n], agent_tone[:n], 440) >= 0.9
    assert tone_match(pcm[1, :n], expected_right[:n], 1000) >= 0.9
    assert correlate(pcm[0, :n], customer_tone[:n]) < 0.2
    # Lost packet 31 is a silent 20 ms slot. The two streams are aligned by their arrival
    # times, which jitter by a few ms on a loaded machine, and the codec smears the edge
    # of the tone: compare the slot's energy with a neighbouring slot's, not a peak.
    silent = pcm[1, 160 * 31 + 40 : 160 * 32 - 40].astype(np.float64)
    sounding = pcm[1, 160 * 29 + 40 : 160 * 30 - 40].astype(np.float64)
    assert np.sqrt(np.mean(silent**2)) < 0.25 * np.sqrt(np.mean(sounding**2))

    by_label = {s.label: s.stats for s in recording.streams}
    assert by_label["agent"]["expected"] == 100 and by_label["agent"]["lost"] == 0
    assert by_label["agent"]["duplicated"] == 2 and by_label["agent"]["late"] >= 5
    assert by_label["customer"]["lost"] == 3
    dtmf = [e for e in recording.events if e.kind == "dtmf"]
    assert dtmf and all("digit" not in e.data for e in dtmf)  # dtmf_mode 'presence' keeps no digits
    await engine.stop()  # waits for the journal's deletion, which follows the seal
    assert not list(settings.spool_dir.iterdir())  # the spool (with any keys) is deleted


def _onset(pcm: np.ndarray) -> int:
    """First sample of the tone (the recording starts at the session's open, before any RTP)."""
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > 4000)
    assert loud.size
    return max(0, int(loud[0]) - 4)  # back to the zero crossing before the first loud sample


async def test_one_way_audio_and_spool_mode(services: ServiceContext) -> None:
    engine = MediaEngine(services.settings, services.recordings)
    await engine.start()
    recording_id = begin_call(services)
    opened = time.time()
    session = engine.open_session(recording_id, opened)
    spool = services.settings.spool_dir / f"{recording_id}.spool"
    assert os.stat(spool).st_mode & 0o777 == 0o600
    port = engine.add_stream(session.recording_id, "agent", [PCMU], 0, None, None)
    engine.add_stream(session.recording_id, "customer", [PCMU], 1, None, None)  # never receives anything
    schedule = [(i * 0.02, p, ("127.0.0.1", port)) for i, p in enumerate(rtp_packets(tone(440, 1.0), 7))]
    await asyncio.to_thread(send_paced, schedule)
    closing = time.time()
    await engine.stop()  # graceful stop finishes open sessions as complete
    recording = await wait_final(services, recording_id)
    assert recording.status == "complete"
    pcm, rate = archive_pcm(services, recording)
    # The silent side does not shorten the recording: it covers the session from open to close.
    assert pcm.shape[0] == 2 and pcm.shape[1] / rate >= closing - opened - 0.02
    assert tone_match(pcm[0, _onset(pcm[0]) :], tone(440, 1.0), 440) >= 0.9
    assert np.abs(pcm[1].astype(np.int32)).max() < 500
    assert {s.label: s.stats["received"] for s in recording.streams} == {"agent": 50, "customer": 0}
