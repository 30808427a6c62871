"""Capture in media worker processes (settings.media_workers > 1) records what the in-process loop records."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from tests.media_runtime.conftest import archive_pcm, begin_call, wait_final
from tests.media_runtime.rtp_send import rtp_packets, send_paced, tone, tone_match
from tests.support.ports import rtp_range

from callvault.db.models import Recording
from callvault.media.codec_spec import CodecSpec
from callvault.media.mixing import correlate
from callvault.runtime.media.engine import MediaEngine
from callvault.runtime.media.workers import CapturePool, port_owner
from callvault.services.context import ServiceContext, open_context
from callvault.settings import load_settings

PCMU = CodecSpec(0, "PCMU", 8000)
SECONDS = 1.0
LOST = {10, 11}


def _context(data_dir: Path, ports: str, workers: int, rtp_timeout: str = "30") -> ServiceContext:
    return open_context(
        load_settings(
            env={},
            data_dir=str(data_dir),
            rtp_ports=ports,
            sip_host="127.0.0.1",
            rtp_timeout=rtp_timeout,
            media_workers=str(workers),
        )
    )


@pytest.fixture
def contexts(tmp_path: Path) -> Iterator[tuple[ServiceContext, ServiceContext]]:
    one = _context(tmp_path / "one", rtp_range(200), 1)
    two = _context(tmp_path / "two", rtp_range(200), 2)
    yield one, two
    one.close()
    two.close()


async def _synced(engine: MediaEngine) -> None:
    """Wait until the capture side has carried out every command sent so far."""
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    engine.capture.call(lambda: loop.call_soon_threadsafe(done.set))
    await asyncio.wait_for(done.wait(), 10)


def _spread_sockets(engine: MediaEngine, count: int) -> list[socket.socket]:
    """``count`` RTP sockets owned by different workers (ports are chosen at random, so a
    call's streams share a worker by chance; these tests are about the case they do not)."""
    chosen: list[socket.socket] = []
    spare: list[socket.socket] = []
    pool = engine.capture if isinstance(engine.capture, CapturePool) else None
    while len(chosen) < count:
        sock = engine.ports.bind()
        owners = {pool.owner(s.getsockname()[1]) for s in chosen} if pool else set()
        if pool is not None and pool.owner(sock.getsockname()[1]) in owners:
            spare.append(sock)
        else:
            chosen.append(sock)
    for sock in spare:
        engine.ports.release(sock)
    return chosen


async def _record(ctx: ServiceContext) -> tuple[Recording, npt.NDArray[np.int16], dict[str, Any]]:
    engine = MediaEngine(ctx.settings, ctx.recordings)
    await engine.start()
    recording_id = begin_call(ctx)
    opened = time.time()
    session = engine.open_session(recording_id, opened)
    agent_sock, customer_sock = _spread_sockets(engine, 2)
    agent_port = engine.add_stream(session.recording_id, "agent", [PCMU], 0, "sip:1001@pbx", None, agent_sock)
    customer_port = engine.add_stream(session.recording_id, "customer", [PCMU], 1, None, None, customer_sock)
    facts: dict[str, Any] = {}
    pool = engine.capture if isinstance(engine.capture, CapturePool) else None
    if pool is not None:
        facts["owners"] = (pool.owner(agent_port), pool.owner(customer_port))
        facts["pids"] = pool.worker_pids
    schedule = [
        (i * 0.02, p, ("127.0.0.1", agent_port))
        for i, p in enumerate(rtp_packets(tone(440, SECONDS), 0x1111))
    ]
    schedule += [
        (i * 0.02 + 0.0005, p, ("127.0.0.1", customer_port))
        for i, p in enumerate(rtp_packets(tone(1000, SECONDS), 0x2222))
        if i not in LOST
    ]
    await asyncio.to_thread(send_paced, schedule)
    engine.capture.flush_all()
    await _synced(engine)
    if pool is not None:
        facts["worker_packets"] = pool.worker_packets
    closing = time.time()
    await engine.close(session.recording_id, "complete")
    facts["window"] = (closing - opened, time.time() - opened)
    recording = await wait_final(ctx, recording_id)
    await engine.stop()
    if pool is not None:
        facts["exited"] = all(_gone(pid) for pid in facts["pids"])
    pcm, rate = archive_pcm(ctx, recording)
    assert rate == 8000
    return recording, pcm, facts


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] == "Z"
    except FileNotFoundError:
        return True


def _onset(pcm: npt.NDArray[np.int16]) -> int:
    """First sample of either tone, back to the zero crossing before it."""
    loud = np.flatnonzero((np.abs(pcm.astype(np.int32)) > 4000).any(axis=0))
    return max(0, int(loud[0]) - 4)


def _quietest_packet(pcm: npt.NDArray[np.int16]) -> tuple[int, float]:
    """Centre of the quietest 20 ms and its RMS relative to the median 20 ms (position is timing-dependent)."""
    power = np.convolve(pcm.astype(np.float64) ** 2, np.ones(160) / 160, mode="valid")
    quietest = int(np.argmin(power))
    return quietest + 80, float(np.sqrt(power[quietest] / np.median(power)))


def test_ports_are_interleaved_over_workers() -> None:
    owners = [port_owner(port, (20001, 20020), 3) for port in range(20002, 20020, 2)]
    assert owners == [0, 1, 2, 0, 1, 2, 0, 1, 2]


async def test_two_workers_record_the_same_call_as_one(
    contexts: tuple[ServiceContext, ServiceContext],
) -> None:
    one, two = contexts
    single, single_pcm, single_facts = await _record(one)
    pooled, pooled_pcm, facts = await _record(two)

    assert facts["owners"][0] != facts["owners"][1]  # the call's two streams landed in different workers
    assert len(set(facts["pids"])) == 2
    assert all(count > 0 for count in facts["worker_packets"])  # both workers captured packets
    assert sum(facts["worker_packets"]) == 50 + 50 - len(LOST)
    assert facts["exited"]  # stop() ends the worker processes

    for recording in (single, pooled):
        assert recording.status == "complete" and recording.channels == 2
    stats = {
        r: {s.label: (s.stats["received"], s.stats["lost"]) for s in r.streams} for r in (single, pooled)
    }
    assert stats[single] == stats[pooled] == {"agent": (50, 0), "customer": (48, 2)}
    # Each recording spans its own session, open to close (how long that took depends on the load).
    for pcm, window in ((single_pcm, single_facts["window"]), (pooled_pcm, facts["window"])):
        assert window[0] - 0.02 <= pcm.shape[1] / 8000 <= window[1] + 0.02, (pcm.shape, window)
    # Compared from the first RTP on: the session opened a load-dependent while before it.
    single_pcm, pooled_pcm = (pcm[:, _onset(pcm) :] for pcm in (single_pcm, pooled_pcm))
    n = min(single_pcm.shape[1], pooled_pcm.shape[1])
    customer = tone(1000, SECONDS)
    for i in LOST:
        customer[160 * i : 160 * (i + 1)] = 0  # lost packets are silence of their real length
    for pcm in (single_pcm, pooled_pcm):
        assert tone_match(pcm[0, :n], tone(440, SECONDS)[:n], 440) >= 0.9
        assert tone_match(pcm[1, :n], customer[:n], 1000) >= 0.9
        centre, depth = _quietest_packet(pcm[1, :n])
        assert abs(centre - 160 * 11) <= 240 and depth < 0.2, (centre, depth)  # the lost packets
    assert correlate(pooled_pcm[0, :n], single_pcm[0, :n]) >= 0.9


async def test_rtp_timeout_fires_once_every_worker_part_is_silent(tmp_path: Path) -> None:
    ctx = _context(tmp_path / "data", rtp_range(200), 2, rtp_timeout="1")
    timed_out: list[str] = []
    fired = asyncio.Event()

    async def on_timeout(recording_id: str) -> None:
        timed_out.append(recording_id)
        fired.set()
        session = engine.session(recording_id)
        if session is not None:
            await engine.close(session.recording_id, "complete")

    engine = MediaEngine(ctx.settings, ctx.recordings, on_timeout)
    await engine.start()
    try:
        recording_id = begin_call(ctx)
        session = engine.open_session(recording_id, time.time())
        sockets = _spread_sockets(engine, 2)
        ports = [
            engine.add_stream(session.recording_id, label, [PCMU], i, None, None, sock)
            for i, (label, sock) in enumerate(zip(("a", "b"), sockets, strict=True))
        ]
        assert isinstance(engine.capture, CapturePool)
        assert len({engine.capture.owner(port) for port in ports}) == 2
        packets = rtp_packets(tone(440, 0.4), 7)
        # Stream "b" stays active 1.6 s longer than "a": the call must not time out with "a".
        schedule = [(i * 0.02, p, ("127.0.0.1", ports[0])) for i, p in enumerate(packets[:5])]
        schedule += [(i * 0.1, packets[i % len(packets)], ("127.0.0.1", ports[1])) for i in range(17)]
        started = time.monotonic()
        await asyncio.to_thread(send_paced, schedule)
        await asyncio.wait_for(fired.wait(), 10)
        assert time.monotonic() - started >= 1.6 + 0.9  # b's last packet plus (most of) the timeout
        assert timed_out == [recording_id]
        recording = await wait_final(ctx, recording_id)
        assert {s.label: s.stats["received"] for s in recording.streams} == {"a": 5, "b": 17}
    finally:
        await engine.stop()
        ctx.close()
