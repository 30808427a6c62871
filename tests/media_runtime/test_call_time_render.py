"""The engine renders while the call runs: hang-up leaves only the tail; capture metrics move."""

from __future__ import annotations

import asyncio

import numpy as np
from prometheus_client import REGISTRY
from sqlalchemy import select
from tests.media_runtime.conftest import FastClock, archive_pcm, begin_call, wait_final
from tests.media_runtime.rtp_send import rtp_packets, send_paced, tone

from callvault.db.models import Stream
from callvault.media.codec_spec import CodecSpec
from callvault.runtime.media.engine import MediaEngine
from callvault.runtime.media.renderer import HOLDBACK_SECONDS
from callvault.services.context import ServiceContext

PCMU = CodecSpec(0, "PCMU", 8000)
SPEEDUP = 10.0  # the engine's clock runs ten times faster than real time
CALL_SECONDS = 40.0  # on the engine's clock: four real seconds
RENDER_STEP = 0.2


def _dominant(pcm: np.ndarray, rate: int) -> int:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    return round(float(np.fft.rfftfreq(pcm.size, 1 / rate)[int(np.argmax(spectrum))]) / 10) * 10


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_hang_up_renders_only_the_tail(services: ServiceContext) -> None:
    names = [
        "callvault_rtp_packets_received_total",
        "callvault_rtp_packets_lost_total",
        "callvault_rtp_packets_late_total",
        "callvault_rtp_packets_duplicated_total",
        "callvault_finalise_seconds_count",
        "callvault_render_tail_seconds_sum",
        "callvault_render_tail_seconds_count",
    ]
    before = {name: _metric(name) for name in names}
    finalised_before = _metric("callvault_recordings_finalised_total", status="complete")
    active_before = _metric("callvault_recording_sessions_active")
    backlog_before = _metric("callvault_finalise_backlog")

    clock = FastClock(SPEEDUP)
    engine = MediaEngine(services.settings, services.recordings, clock=clock, render_step=RENDER_STEP)
    await engine.start()
    recording_id = begin_call(services)
    opened = clock()
    session = engine.open_session(recording_id, opened)
    assert _metric("callvault_recording_sessions_active") == active_before + 1
    agent_port = engine.add_stream(session.recording_id, "agent", [PCMU], 0, "sip:1001@pbx", None)
    customer_port = engine.add_stream(session.recording_id, "customer", [PCMU], 1, None, None)
    agent = rtp_packets(tone(440, CALL_SECONDS), ssrc=0x1111)
    customer = rtp_packets(tone(1000, CALL_SECONDS), ssrc=0x2222)
    interval = 0.02 / SPEEDUP
    schedule = [(i * interval, p, ("127.0.0.1", agent_port)) for i, p in enumerate(agent)]
    schedule += [
        (i * interval + interval / 2, p, ("127.0.0.1", customer_port))
        for i, p in enumerate(customer)
        if i != 700
    ]
    schedule.append((100 * interval, agent[99], ("127.0.0.1", agent_port)))  # a duplicate
    await asyncio.to_thread(send_paced, schedule)

    # The call was rendered while it ran, up to about the hold-back before its end.
    assert engine.rendered_seconds(session.recording_id) > CALL_SECONDS - HOLDBACK_SECONDS - 10
    closing = clock()
    await engine.close(session.recording_id, "complete")
    closed = clock()
    recording = await wait_final(services, recording_id)
    assert recording.status == "complete"
    # Only the tail is left at hang-up: the hold-back, one step (an eighth of
    # the call so far), the journal's flush lag and the render job's own latency.
    tails = _metric("callvault_render_tail_seconds_sum") - before["callvault_render_tail_seconds_sum"]
    assert _metric("callvault_render_tail_seconds_count") == before["callvault_render_tail_seconds_count"] + 1
    tail = tails
    assert 0 < tail <= HOLDBACK_SECONDS + CALL_SECONDS / 8 + 3.0
    assert tail < recording.duration_seconds / 2

    assert closing - opened - 0.05 <= recording.duration_seconds <= closed - opened + 0.05
    pcm, rate = archive_pcm(services, recording)
    assert pcm.shape[0] == 2 and abs(pcm.shape[1] / rate - recording.duration_seconds) <= 0.02
    assert _dominant(pcm[0], rate) == 440 and _dominant(pcm[1], rate) == 1000  # each side on its channel
    # Both sides carry their tone through to the end of the sending (no seam at a step).
    sent = round((schedule[-1][0] * SPEEDUP - 1.0) * rate)
    for channel in (0, 1):
        levels = np.abs(pcm[channel, rate : sent - rate].astype(np.int32)).reshape(-1, rate // 10).max(axis=1)
        assert np.count_nonzero(levels < 2000) <= 2, levels.min()

    await engine.stop()
    assert not list(services.settings.spool_dir.iterdir())  # journal and side file are gone
    assert _metric("callvault_recording_sessions_active") == active_before
    assert _metric("callvault_finalise_backlog") == backlog_before
    assert _metric("callvault_recordings_finalised_total", status="complete") == finalised_before + 1
    delta = {name: _metric(name) - before[name] for name in names}
    assert delta["callvault_rtp_packets_received_total"] == 2 * len(agent) - 1
    assert delta["callvault_rtp_packets_lost_total"] == 1
    assert delta["callvault_rtp_packets_duplicated_total"] == 1
    # The late counter is the sum of what the streams' completeness stats say.
    with services.catalog.read() as db:
        streams = db.scalars(select(Stream).where(Stream.recording_id == recording_id)).all()
        late = sum(int(stream.stats["late"]) for stream in streams if stream.stats)
    assert len(streams) == 2
    assert delta["callvault_rtp_packets_late_total"] == late
    assert delta["callvault_finalise_seconds_count"] == 1
