"""Encryption at rest of the spool: nothing readable while a call runs; recovery with and without its key.

Choice for a journal with a record that fails authentication (tampering): it
is read up to that record, like a torn tail, and finalised from what precedes
it; at start-up recovery that is an *interrupted* recording.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import struct
import threading
import time
import zlib
from pathlib import Path

import pytest
from tests.media_runtime.conftest import FastClock, archive_pcm, begin_call, wait_final
from tests.media_runtime.rtp_send import rtp_packets, send_paced, tone, tone_match, ulaw

from callvault.db.models import Recording
from callvault.media.codec_spec import CodecSpec
from callvault.rtp.srtp import SrtpSender, generate_crypto_line
from callvault.runtime.media.engine import MediaEngine
from callvault.runtime.media.spool_key import SpoolKey
from callvault.services.context import ServiceContext
from callvault.storage.spool import MAGIC, SpoolStream, archive_part_path, read_spool_header

PCMU = CodecSpec(0, "PCMU", 8000)
SPEEDUP = 10.0  # the engine's clock runs ten times faster than real time
CALL_SECONDS = 30.0  # on the engine's clock: three real seconds
RENDER_STEP = 0.2


def _spool_bytes(spool_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in spool_dir.iterdir() if p.is_file()}


async def test_spool_holds_no_plaintext_while_the_call_runs(services: ServiceContext) -> None:
    clock = FastClock(SPEEDUP)
    engine = MediaEngine(services.settings, services.recordings, clock=clock, render_step=RENDER_STEP)
    await engine.start()
    recording_id = begin_call(services)
    session = engine.open_session(recording_id, clock())
    _, crypto = generate_crypto_line(1)
    agent_port = engine.add_stream(session.recording_id, "agent", [PCMU], 0, "sip:1001@pbx", None)
    customer_port = engine.add_stream(session.recording_id, "customer", [PCMU], 1, None, crypto)
    agent_tone, customer_tone = tone(440, CALL_SECONDS), tone(1000, CALL_SECONDS)
    agent = rtp_packets(agent_tone, ssrc=0x1111)
    sender = SrtpSender(crypto)
    customer = [sender.protect(p) for p in rtp_packets(customer_tone, ssrc=0x2222)]
    interval = 0.02 / SPEEDUP
    schedule = [(i * interval, p, ("127.0.0.1", agent_port)) for i, p in enumerate(agent)]
    schedule += [
        (i * interval + interval / 2, p, ("127.0.0.1", customer_port)) for i, p in enumerate(customer)
    ]
    await asyncio.to_thread(send_paced, schedule)

    # Everything captured is in the journal and the side file has pages, before the close.
    flushed = threading.Event()
    engine.capture.flush_all()
    engine.capture.call(flushed.set)
    assert await asyncio.to_thread(flushed.wait, 5)
    assert engine.rendered_seconds(session.recording_id) > 0
    files = _spool_bytes(services.settings.spool_dir)
    assert set(files) == {session.journal.name, archive_part_path(session.journal).name}
    assert all(len(data) > 1000 for data in files.values())
    g711 = {p[12:44] for p in agent} | {ulaw(customer_tone[i : i + 32]) for i in range(0, 8000, 32)}
    secrets = [crypto.master_key, crypto.master_salt, base64.b64encode(crypto.master_key)]
    for name, data in files.items():
        for marker in (b"OggS", b"RIFF", b"OpusHead", *secrets):
            assert marker not in data, (name, marker)
        assert not any(run in data for run in g711), name
    header = read_spool_header(session.journal)
    assert header.recording_id == recording_id and header.kek_id == services.keys.current_kek_id()

    await engine.close(session.recording_id, "complete")
    recording = await wait_final(services, recording_id)
    assert recording.status == "complete"
    pcm, rate = archive_pcm(services, recording)
    lead = int((recording.duration_seconds - CALL_SECONDS) * rate)  # about the close's delay
    assert tone_match(pcm[1, max(0, lead) :], customer_tone, 1000) >= 0.8  # SRTP keys came through
    await engine.stop()
    assert not list(services.settings.spool_dir.iterdir())


def _write_journal(services: ServiceContext, recording_id: str, started: float, seconds: int) -> Path:
    """A journal as a killed recorder leaves it: one packets record per second of a 440 Hz tone."""
    writer = SpoolKey.new(services.keys, recording_id).create_journal(services.settings.spool_dir, started)
    writer.write_stream(SpoolStream(0, "agent", [PCMU], 0, "sip:1001@pbx"))
    packets = rtp_packets(tone(440, seconds), ssrc=0x1111)
    for second in range(seconds):
        chunk = range(second * 50, (second + 1) * 50)
        writer.write_packets(0, [started + 0.02 * i for i in chunk], [packets[i] for i in chunk])
    writer.close()
    return writer.path


async def test_tampered_record_ends_the_recording_there(services: ServiceContext) -> None:
    recording_id = begin_call(services)
    started = time.time() - 10
    path = _write_journal(services, recording_id, started, 3)
    data = bytearray(path.read_bytes())
    offset = len(MAGIC)
    bodies = []
    while offset < len(data):
        length = struct.unpack_from("<I", data, offset)[0]
        bodies.append((offset + 8, length))
        offset += 8 + length
    body, length = bodies[3]  # header, stream, second 0, *second 1*, second 2
    data[body + 40] ^= 0x01
    struct.pack_into("<I", data, body - 4, zlib.crc32(data[body : body + length]))
    path.write_bytes(bytes(data))

    engine = MediaEngine(services.settings, services.recordings)
    await engine.start()
    recording = await wait_final(services, recording_id)
    await engine.stop()
    assert recording.status == "interrupted"
    assert recording.duration_seconds == pytest.approx(10.0 - 9.0, abs=0.05)  # second 0 only
    pcm, rate = archive_pcm(services, recording)
    assert tone_match(pcm[0], tone(440, 1.0), 440) >= 0.9
    assert not path.exists()


async def test_journal_whose_kek_is_retired_stays_in_place(
    services: ServiceContext, caplog: pytest.LogCaptureFixture
) -> None:
    recording_id = begin_call(services)
    path = _write_journal(services, recording_id, time.time() - 10, 1)
    before = path.read_bytes()
    old = services.keys.current_kek_id()
    services.keys.rotate()
    services.keys.retire(old)

    engine = MediaEngine(services.settings, services.recordings)
    with caplog.at_level(logging.ERROR, logger="callvault.runtime.media.recovery"):
        await engine.start()
        await engine.stop()  # waits for the recovery tasks
    assert engine.unreadable_spools == [path]
    assert path.read_bytes() == before  # not deleted, not touched
    assert f"wrapped under KEK {old}" in caplog.text and "stays in place" in caplog.text
    with services.catalog.read() as db:
        recording = db.get(Recording, recording_id)
        assert recording is not None and recording.status == "recording"  # not written off either
