"""Silencing a live call in the engine: paused audio never reaches the journal, silence stands in.

Real sockets, the real capture loop and renderer: the journal is read while the call runs,
the archive after it is sealed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import struct
import time
from collections.abc import Callable

import numpy as np
from tests.media_runtime.conftest import archive_pcm, begin_call, wait_final
from tests.media_runtime.rtp_send import rtp_packets, send_paced, tone

from callvault.media.codec_spec import CodecSpec
from callvault.runtime.media.engine import MediaEngine
from callvault.runtime.media.silencing import SilenceChange
from callvault.runtime.media.spool_key import journal_reader
from callvault.runtime.media.workers import CapturePool
from callvault.services.context import ServiceContext
from callvault.storage.spool import read_spool

PCMU = CodecSpec(0, "PCMU", 8000)
DTMF = CodecSpec(101, "TELEPHONE-EVENT", 8000)
RATE = 8000
SEGMENT = 1.0  # seconds: before, during and after the pause
FRAMES = int(SEGMENT * 50)


def _rms(pcm: np.ndarray, start: float, end: float) -> float:
    window = pcm[int(start * RATE) : int(end * RATE)].astype(np.float64)
    return float(np.sqrt(np.mean(window**2))) if window.size else 0.0


async def _call_with_pause(
    services: ServiceContext, engine: MediaEngine, during: Callable[[str], None], after: Callable[[str], None]
) -> tuple[str, float, float, list[dict[int, float]]]:
    """Three seconds of a 440 Hz agent and a 1000 Hz customer tone; ``during(recording id)`` runs
    before the second second, ``after`` before the third. Returns the recording id, the session's
    open and close times, and each stream's packets in the journal before hang-up (sequence number:
    arrival time)."""
    recording_id = begin_call(services)
    opened = time.time()
    session = engine.open_session(recording_id, opened)
    ports = [
        engine.add_stream(recording_id, "agent", [PCMU, DTMF], 0, "sip:1001@pbx", None),
        engine.add_stream(recording_id, "customer", [PCMU, DTMF], 1, None, None),
    ]
    streams = [
        rtp_packets(tone(440, 3 * SEGMENT), ssrc=0x1111),
        rtp_packets(tone(1000, 3 * SEGMENT), ssrc=0x2222),
    ]
    senders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in streams]
    try:
        for part, action in enumerate((None, during, after)):
            if action is not None:
                action(recording_id)
            sends = []
            for sender, port, packets in zip(senders, ports, streams, strict=True):
                chunk = packets[part * FRAMES : (part + 1) * FRAMES]
                schedule = [(i * 0.02, p, ("127.0.0.1", port)) for i, p in enumerate(chunk)]
                sends.append(asyncio.to_thread(send_paced, schedule, sender))
            await asyncio.gather(*sends)  # both streams side by side, as a call's are
        flushed = asyncio.Event()
        loop = asyncio.get_running_loop()
        engine.capture.flush_all()
        engine.capture.call(lambda: loop.call_soon_threadsafe(flushed.set))
        await flushed.wait()
        contents = read_spool(session.journal, journal_reader(session.spool_key))
        journalled = []
        for index in (0, 1):
            arrivals, packets = contents.packets_of(index)
            journalled.append(
                {int.from_bytes(p[2:4], "big"): at for at, p in zip(arrivals, packets, strict=True)}
            )
        closing = time.time()
        await engine.close(recording_id, "complete")
    finally:
        for sender in senders:
            sender.close()
    return recording_id, opened, closing, journalled


async def test_a_pause_keeps_both_streams_out_of_the_journal_and_leaves_silence(
    services: ServiceContext,
) -> None:
    engine = MediaEngine(services.settings, services.recordings)
    changes: list[SilenceChange] = []
    engine.add_silence_listener(changes.append)
    await engine.start()
    try:
        recording_id, opened, closing, journalled = await _call_with_pause(
            services,
            engine,
            lambda rid: engine.silence(rid, "api", by="alice"),
            lambda rid: engine.unsilence(rid, "api", by="alice"),
        )
        recording = await wait_final(services, recording_id)
    finally:
        await engine.stop()
    [began, ended] = [c.at for c in changes]
    for packets in journalled:
        # Not one packet that capture received during the pause reached the spool. (Which
        # packet was the first received in the pause depends on when capture read it.)
        assert not [at for at in packets.values() if began <= at < ended]
        assert not set(range(1000 + FRAMES + 2, 1000 + 2 * FRAMES - 2)) & set(packets)
        assert set(range(1000, 1000 + FRAMES - 2)) <= set(packets)
    assert recording.status == "complete"
    for stream in recording.streams:
        assert stream.stats is not None
        assert stream.stats["lost"] == 0, stream.stats  # withheld on purpose, not lost
        assert stream.stats["gaps"] == [], stream.stats
    pcm, rate = archive_pcm(services, recording)
    assert rate == RATE
    # The recording covers the session: the pause took nothing from its length.
    assert abs(pcm.shape[1] / RATE - (closing - opened)) < 0.1
    onset = int(np.flatnonzero(np.abs(pcm[0].astype(np.int32)) > 4000)[0]) / RATE
    for channel in pcm:
        assert _rms(channel, onset + 0.1, onset + SEGMENT - 0.1) > 5000
        assert _rms(channel, onset + SEGMENT + 0.1, onset + 2 * SEGMENT - 0.1) < 50  # silence, both sides
        assert _rms(channel, onset + 2 * SEGMENT + 0.1, onset + 3 * SEGMENT - 0.1) > 5000
    events = [(e.kind, e.data) for e in sorted(recording.events, key=lambda e: e.offset_seconds)]
    pauses = [(kind, data) for kind, data in events if kind in ("pause", "resume")]
    assert [(k, d["cause"], d["channels"], d["by"], d.get("reason")) for k, d in pauses] == [
        ("pause", "api", "all", "alice", None),
        ("resume", "api", "all", "alice", "request"),
    ]
    [pause_at] = [e.offset_seconds for e in recording.events if e.kind == "pause"]
    assert abs(pause_at - (onset + SEGMENT)) < 0.15
    assert [(c.kind, c.automatic) for c in changes] == [("pause", False), ("resume", False)]


async def test_one_side_can_be_silenced_until_the_pause_runs_out(services: ServiceContext) -> None:
    engine = MediaEngine(services.settings, services.recordings)
    changes: list[SilenceChange] = []
    engine.add_silence_listener(changes.append)
    await engine.start()
    try:
        recording_id, _, _, journalled = await _call_with_pause(
            services,
            engine,
            lambda rid: engine.silence(rid, "consent", channels="customer", max_seconds=0.5),
            lambda rid: None,
        )
        recording = await wait_final(services, recording_id)
    finally:
        await engine.stop()
    agent, customer = journalled
    assert set(range(1000, 1000 + 3 * FRAMES - 15)) <= set(agent)  # the agent's side went on whole
    silenced = set(range(1000, 1000 + 3 * FRAMES - 15)) - set(customer)
    assert 20 <= len(silenced) <= 30  # half a second, from the pause on
    assert 1000 + FRAMES - 2 <= min(silenced) <= 1000 + FRAMES + 2
    pcm, _ = archive_pcm(services, recording)
    onset = int(np.flatnonzero(np.abs(pcm[0].astype(np.int32)) > 4000)[0]) / RATE
    assert _rms(pcm[0], onset + SEGMENT + 0.1, onset + 2 * SEGMENT - 0.1) > 5000
    assert _rms(pcm[1], onset + SEGMENT + 0.05, onset + SEGMENT + 0.4) < 50
    assert _rms(pcm[1], onset + SEGMENT + 0.7, onset + 2 * SEGMENT - 0.1) > 5000
    resumes = [e.data for e in recording.events if e.kind == "resume"]
    assert [(d["cause"], d["channels"], d["reason"]) for d in resumes] == [
        ("consent", "customer", "auto_resume")
    ]
    assert [(c.kind, c.reason, c.automatic) for c in changes] == [
        ("pause", None, False),
        ("resume", "auto_resume", True),
    ]


def _keyed(packets: list[bytes], first: int, count: int) -> list[bytes]:
    """``packets`` with ``count`` of them from ``first`` replaced by one RFC 4733 key press (5)."""
    out = list(packets)
    stamp = packets[first][4:8]
    for step in range(count):
        end = 0x80 if step == count - 1 else 0
        header = bytes([0x80, 101]) + packets[first + step][2:4] + stamp + packets[first + step][8:12]
        out[first + step] = header + struct.pack("!BBH", 5, end | 10, 160 * (step + 1))
    return out


async def test_digits_found_by_one_capture_worker_silence_the_stream_of_another(
    services: ServiceContext,
) -> None:
    settings = dataclasses.replace(services.settings, media_workers=2, pci_digit_resume_seconds=0.5)
    # Journals flushed five times a second, so the digits' end is seen within the 3 s call.
    engine = MediaEngine(settings, services.recordings, flush_interval=0.2)
    changes: list[SilenceChange] = []
    engine.add_silence_listener(changes.append)
    await engine.start()
    try:
        pool = engine.capture
        assert isinstance(pool, CapturePool)
        recording_id = begin_call(services)
        session = engine.open_session(recording_id, time.time())
        socks = [engine.ports.bind()]
        while True:  # one stream in each worker
            candidate = engine.ports.bind()
            if pool.owner(candidate.getsockname()[1]) != pool.owner(socks[0].getsockname()[1]):
                socks.append(candidate)
                break
            engine.ports.release(candidate)
        ports = [
            engine.add_stream(recording_id, "agent", [PCMU, DTMF], 0, None, None, sock=socks[0]),
            engine.add_stream(recording_id, "customer", [PCMU, DTMF], 1, None, None, sock=socks[1]),
        ]
        agent = rtp_packets(tone(440, 3 * SEGMENT), ssrc=0x1111)
        customer = _keyed(rtp_packets(tone(1000, 3 * SEGMENT), ssrc=0x2222), FRAMES, 15)  # 1.0-1.3 s
        schedule = [(i * 0.02, p, ("127.0.0.1", ports[0])) for i, p in enumerate(agent)]
        schedule += [(i * 0.02 + 0.001, p, ("127.0.0.1", ports[1])) for i, p in enumerate(customer)]
        await asyncio.to_thread(send_paced, schedule)
        closing = time.time()
        await engine.close(recording_id, "complete")
        recording = await wait_final(services, recording_id)
    finally:
        await engine.stop()
    assert [(c.kind, c.cause, c.detail.get("detected"), c.reason) for c in changes] == [
        ("pause", "dtmf", "rfc4733", None),
        ("resume", "dtmf", "rfc4733", "digits_stopped"),
    ]
    began, ended = changes[0].at, changes[1].at
    assert 0.4 <= ended - began <= 0.4 + 0.5 + 0.2  # the key's 0.3 s, the lead, then 0.5 s
    pcm, _ = archive_pcm(services, recording)
    assert abs(pcm.shape[1] / RATE - (closing - session.started_at)) < 0.1
    onset = int(np.flatnonzero(np.abs(pcm[0].astype(np.int32)) > 4000)[0]) / RATE
    for channel in pcm:  # the agent's side too, though its worker heard no key
        assert _rms(channel, onset + SEGMENT - 0.05, onset + SEGMENT + 0.7) < 50
        assert _rms(channel, onset + 2 * SEGMENT, onset + 3 * SEGMENT - 0.1) > 5000
    assert all(s.stats is not None and s.stats["lost"] == 0 for s in recording.streams)
