"""Disk full mid-call, end to end: RTP over real sockets, the journal's disk fills and frees, the call is sealed.

The disk is faked only at the system call that writes journal bytes
(:mod:`tests.support.full_disk`); sockets, capture, roll-back, retry,
rendering and sealing are the real ones, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from scipy.signal import correlate as xcorr
from tests.media_runtime.conftest import archive_pcm, begin_call, wait_final
from tests.media_runtime.journals import create_journal
from tests.media_runtime.rtp_send import rtp_packets, send_paced
from tests.support.audio import correlation, voice
from tests.support.full_disk import FullDisk, full_disk
from tests.support.people import ADMIN

from callvault.media.codec_spec import CodecSpec
from callvault.runtime.media.engine import MediaEngine
from callvault.runtime.media.journal_backlog import LOSS_EVENT, JournalBacklog
from callvault.runtime.media.render_jobs import render_journal
from callvault.runtime.media.tracks import RenderOptions
from callvault.services.context import ServiceContext
from callvault.storage import local
from callvault.storage.spool import SpoolStream

PCMU = CodecSpec(0, "PCMU", 8000)
RATE = 8000
FRAME = 160  # samples per 20 ms packet
PACKETS = 200  # 4 s per stream
FULL_FROM, FREE_FROM = 50, 125  # the disk is full while packets 50..124 arrive


async def _captured(engine: MediaEngine, packets: int, disk: FullDisk | None = None) -> None:
    """Wait until capture has taken ``packets`` packets off the sockets and flushed them."""
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + 20.0
    while True:
        flushed = asyncio.Event()
        engine.capture.flush_all()
        engine.capture.call(lambda done=flushed: loop.call_soon_threadsafe(done.set))
        await asyncio.wait_for(flushed.wait(), 10.0)
        if engine.capture.packets_total >= packets and (disk is None or disk.refused):
            return
        assert time.monotonic() < deadline, f"capture flushed {engine.capture.packets_total} of {packets}"
        await asyncio.sleep(0.05)


def _lead(recorded: npt.NDArray[np.int16], reference: npt.NDArray[np.int16]) -> int:
    """Samples from the recording's start to the first packet's audio (found on the first second)."""
    head = reference[:RATE].astype(np.float64)
    scores = xcorr(recorded[: 3 * RATE].astype(np.float64), head, mode="valid")
    return int(np.argmax(scores))


async def test_disk_full_mid_call_is_a_counted_gap_in_an_incomplete_recording(
    services: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = MediaEngine(services.settings, services.recordings, flush_interval=0.2, spool_backlog=0.5)
    await engine.start()
    recording_id = begin_call(services)
    opened = time.time()
    session = engine.open_session(recording_id, opened)
    ports = {
        "agent": engine.add_stream(session.recording_id, "agent", [PCMU], 0, "sip:1001@pbx", None),
        "customer": engine.add_stream(session.recording_id, "customer", [PCMU], 1, None, None),
    }
    sent = {
        "agent": voice(PACKETS * 0.02, RATE, 140.0, seed=1),
        "customer": voice(PACKETS * 0.02, RATE, 220.0, seed=2),
    }
    packets = {label: rtp_packets(pcm, ssrc=0x1000 + i) for i, (label, pcm) in enumerate(sent.items())}

    sent_at: dict[int, float] = {}
    # One SRC socket for the whole call: a stream takes packets from its first source only.
    source = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(first: int, last: int) -> None:
        sent_at[first] = time.time()  # the wall time the phase's first packets leave
        schedule = [
            ((n - first) * 0.02 + 0.0005 * i, packets[label][n], ("127.0.0.1", ports[label]))
            for i, label in enumerate(packets)
            for n in range(first, last)
        ]
        send_paced(schedule, source)

    with full_disk(monkeypatch) as disk:
        await asyncio.to_thread(send, 0, FULL_FROM)
        await _captured(engine, 2 * FULL_FROM)
        disk.fill(700)  # the next write is cut short, then every write fails with ENOSPC
        await asyncio.to_thread(send, FULL_FROM, FREE_FROM)
        await _captured(engine, 2 * FREE_FROM, disk)
        disk.free()
        await asyncio.to_thread(send, FREE_FROM, PACKETS)
        await _captured(engine, 2 * PACKETS)
    source.close()
    await engine.close(session.recording_id, "complete")
    recording = await wait_final(services, recording_id)
    await engine.stop()

    # Sealed incomplete; every packet is either in the recording or counted lost.
    assert recording.status == "incomplete"
    stats = {s.label: s.stats for s in recording.streams}
    lost = {label: int(s["spool_lost"]) for label, s in stats.items()}
    for label, s in stats.items():
        assert s["received"] + lost[label] == PACKETS, (label, s)
        assert lost[label] >= 10, (label, s)  # 1.5 s full with 0.5 s kept in memory
        # Lost seconds are estimated from the lost packets' arrival span (their payload is
        # gone); on a loaded machine arrivals jitter by a few ms, so allow one packet interval.
        assert s["spool_lost_seconds"] == pytest.approx(lost[label] * 0.02, abs=0.02)
        assert s["lost"] == lost[label]  # a hole in the middle: missing sequence numbers too
        ((_, gap_seconds),) = s["spool_gaps"]
        assert gap_seconds == s["spool_lost_seconds"]
    assert recording.completeness is not None and recording.completeness["spool_lost_packets"] == sum(
        lost.values()
    )
    (event,) = [e for e in recording.events if e.kind == LOSS_EVENT]
    assert event.data["lost_packets"] == sum(lost.values()) and event.data["error"] == "storage_full"
    assert set(event.data["streams"]) == {"agent", "customer"}
    assert event.data["failed_for"] > 0

    # The API detail shows the same account.
    detail = services.search.get(ADMIN, recording_id)
    assert detail["completeness"]["spool_lost_packets"] == sum(lost.values())
    assert {s["label"]: s["stats"]["spool_lost"] for s in detail["streams"]} == lost
    assert [e["kind"] for e in detail["events"]].count(LOSS_EVENT) == 1

    # Audio before and after the outage is there, where it belongs (by RTP time: the pauses
    # between the test's sending phases do not move it); the gap is silence of its length.
    pcm, rate = archive_pcm(services, recording)
    assert rate == RATE
    lead = _lead(pcm[0], sent["agent"])
    # Gap events are in arrival time: where the first packet sent into the full disk arrived.
    full_from = sent_at[FULL_FROM] - opened
    assert abs(event.offset_seconds - full_from) <= 0.1
    for channel, label in enumerate(("agent", "customer")):
        recorded, reference = pcm[channel, lead:], sent[label]
        resumed = FULL_FROM + lost[label]  # capture drops the oldest: the hole is 50 .. resumed - 1
        before = correlation(recorded[: FULL_FROM * FRAME], reference[: FULL_FROM * FRAME], max_lag=16)
        after = correlation(
            recorded[resumed * FRAME : PACKETS * FRAME], reference[resumed * FRAME :], max_lag=16
        )
        assert before >= 0.9 and after >= 0.9, (label, before, after)
        # Opus rings on for a few ms after audio stops: the hole is checked 40 ms in from each end.
        hole = recorded[(FULL_FROM + 2) * FRAME : (resumed - 2) * FRAME].astype(np.float64)
        speech = reference[(FULL_FROM + 2) * FRAME : (resumed - 2) * FRAME].astype(np.float64)
        assert hole.size and np.sqrt(np.mean(hole**2)) < 0.03 * np.sqrt(np.mean(speech**2)), label
        ((gap_start, _),) = stats[label]["spool_gaps"]
        assert abs(gap_start - full_from) <= 0.1, label


def test_a_recovered_journal_keeps_the_outage_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Crash recovery renders the journal alone: the outage written there still becomes the gap."""
    writer = create_journal(tmp_path, "rec-r", 100.0)
    writer.write_stream(SpoolStream(0, "agent", [PCMU], 0))
    backlog = JournalBacklog(writer, backlog_seconds=0.5)
    pcm = voice(3.0, RATE, 140.0, seed=1)
    packets = rtp_packets(pcm, ssrc=7)
    arrivals = [100.5 + 0.02 * n for n in range(len(packets))]
    with full_disk(monkeypatch) as disk:
        backlog.write([(0, arrivals[:50], packets[:50])], now=101.6)
        disk.fill(0)
        backlog.write([(0, arrivals[50:100], packets[50:100])], now=102.6)  # drops 50..79 (< 102.1)
        disk.free()
        backlog.write([(0, arrivals[100:], packets[100:])], now=103.6)
    writer.close()  # no close report: as after kill -9
    rendered = render_journal(str(writer.path), bytes(range(32)), RenderOptions())
    (stream,) = rendered.streams
    assert stream.stats["spool_lost"] == 30 and stream.stats["received"] == 120
    assert stream.stats["spool_gaps"] == [[1.5, 0.6]]
    assert rendered.storage_incomplete and rendered.spool_lost == 30
    (event,) = [e for e in rendered.events if e.kind == LOSS_EVENT]
    assert event.offset_seconds == pytest.approx(1.5) and event.data["end"] == pytest.approx(2.1)
    assert event.data["failed_for"] == pytest.approx(1.0) and event.data["streams"] == {
        "agent": {"packets": 30, "seconds": 0.6}
    }


def test_damage_in_the_middle_of_a_journal_is_reported_on_the_recording(tmp_path: Path) -> None:
    writer = create_journal(tmp_path, "rec-d", 100.0)
    writer.write_stream(SpoolStream(0, "agent", [PCMU], 0))
    packets = rtp_packets(voice(2.0, RATE, 140.0, seed=1), ssrc=7)
    writer.write_packets(0, [100.0 + 0.02 * n for n in range(50)], packets[:50])
    damaged_at = writer.path.stat().st_size
    writer.write_packets(0, [101.0 + 0.02 * n for n in range(25)], packets[50:75])
    writer.write_packets(0, [101.5 + 0.02 * n for n in range(25)], packets[75:])
    writer.close()
    data = bytearray(writer.path.read_bytes())
    data[damaged_at + 100] ^= 0x55  # a bad disk block in the middle
    writer.path.write_bytes(bytes(data))
    rendered = render_journal(str(writer.path), bytes(range(32)), RenderOptions())
    (stream,) = rendered.streams
    assert stream.stats["received"] == 75 and stream.stats["lost"] == 25  # read on past the damage
    (event,) = [e for e in rendered.events if e.kind == "spool_damaged"]
    assert event.data["byte"] == damaged_at and event.data["skipped_bytes"] > 0
    assert rendered.storage_incomplete


async def test_a_recording_the_full_vault_refused_is_sealed_once_there_is_room(
    services: ServiceContext, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_write = local._write_all
    refusals = [1]

    def vault_write(fd: int, data: bytes) -> None:
        if refusals[0]:  # the vault's disk is full for the first seal
            refusals[0] -= 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(fd, data)

    monkeypatch.setattr(local, "_write_all", vault_write)
    engine = MediaEngine(services.settings, services.recordings, flush_interval=0.2, seal_retry=0.2)
    await engine.start()
    recording_id = begin_call(services)
    session = engine.open_session(recording_id, time.time())
    port = engine.add_stream(session.recording_id, "agent", [PCMU], 0, None, None)
    packets = rtp_packets(voice(0.5, RATE, 140.0, seed=1), ssrc=9)
    await asyncio.to_thread(send_paced, [(n * 0.02, p, ("127.0.0.1", port)) for n, p in enumerate(packets)])
    await engine.close(session.recording_id, "complete")
    recording = await wait_final(services, recording_id)
    await engine.stop()
    assert refusals == [0]
    assert recording.status == "complete" and recording.object_key is not None
    assert {s.label: s.stats["received"] for s in recording.streams} == {"agent": 25}
    assert "No space left on device" in caplog.text and "sealing is retried" in caplog.text
    assert not list(services.settings.spool_dir.glob("*.spool"))  # deleted once sealed
