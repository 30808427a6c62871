"""The one renderer: the same archive as a one-shot reference render, whatever its steps; only the tail left at hang-up."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from tests.media_runtime.journals import TEST_KEY, create_journal
from tests.media_runtime.reference_render import reference_render

from callvault.media.archive import decode_audio
from callvault.media.codec_spec import CodecSpec
from callvault.media.g711 import ulaw_encode
from callvault.media.mixing import correlate
from callvault.media.peaks import archive_peaks
from callvault.media.signals import synth_speech_like
from callvault.runtime.media.render_jobs import finish_recording, render_journal
from callvault.runtime.media.renderer import HOLDBACK_SECONDS, JournalRenderer
from callvault.runtime.media.tracks import RenderOptions
from callvault.storage.spool import SpoolStream, archive_part_path, delete_spool

PCMU = CodecSpec(0, "PCMU", 8000)
DTMF = CodecSpec(101, "TELEPHONE-EVENT", 8000)
RATE = 8000
SECONDS = 60
STARTED = 1_700_000_000.0
HEADER = struct.Struct("!BBHII")
LOST = {300, 301, 1200}


def _rtp(seq: int, ts: int, ssrc: int, payload: bytes, pt: int = 0, marker: bool = False) -> bytes:
    return HEADER.pack(0x80, pt | (0x80 if marker else 0), seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


def _dtmf(seq: int, ts: int, digit: int, duration: int, end: bool) -> bytes:
    payload = struct.pack("!BBH", digit, (0x80 if end else 0) | 10, duration)
    return _rtp(seq, ts, 0xAAAA, payload, pt=101, marker=duration == 160)


class Call:
    """A two-stream G.711 call written second by second into a journal, arrivals simulated."""

    def __init__(self, spool_dir: Path, agent_from: float = 0.3, customer: bool = True) -> None:
        self.writer = create_journal(spool_dir, "rec-1", STARTED)
        self.writer.write_stream(SpoolStream(0, "agent", [PCMU, DTMF], 0, "sip:1001@pbx"))
        self.writer.write_stream(SpoolStream(1, "customer", [PCMU], 1, None))
        self.agent = synth_speech_like(SECONDS, RATE, seed=1)
        self.customer = synth_speech_like(SECONDS, RATE, seed=2)
        self.agent_from = agent_from
        self.customer_on = customer
        self.rng = np.random.default_rng(3)
        self.seq = 0

    def write_second(self, second: int) -> float:
        """Write the packets that arrive during ``second`` of the call; returns the newest arrival."""
        newest = STARTED
        for index, (pcm, ssrc, lead) in enumerate(
            ((self.agent, 0xAAAA, self.agent_from), (self.customer, 0xBBBB, 0.05))
        ):
            if index == 1 and not self.customer_on:
                continue
            arrivals: list[float] = []
            packets: list[bytes] = []
            for i in range(second * 50, second * 50 + 50):
                if i in LOST and index == 1:
                    continue
                at = STARTED + lead + i * 0.02 + float(self.rng.uniform(0, 0.006))
                if at - STARTED > SECONDS:
                    continue
                payload = ulaw_encode(pcm[160 * i : 160 * (i + 1)])
                packets.append(_rtp(1000 + i, 5000 + 160 * i, ssrc, payload))
                arrivals.append(at)
                if index == 0 and i in (1000, 1001, 1002):  # digit 5 pressed at 20 s
                    ts = 5000 + 160 * 1000
                    packets.append(_dtmf(1000 + i + 10_000, ts, 5, 160 * (i - 999), end=i == 1002))
                    arrivals.append(at + 0.001)
            # Reordering inside the flush: the capture writes packets as they came.
            order = np.argsort(np.asarray(arrivals) + self.rng.uniform(0, 0.03, len(arrivals)))
            self.writer.write_packets(
                index, [arrivals[k] for k in order.tolist()], [packets[k] for k in order.tolist()]
            )
            newest = max([newest, *arrivals])
        return newest


def _pcm(data: bytes) -> npt.NDArray[np.int16]:
    return decode_audio(data).pcm


def test_call_time_render_matches_one_shot(tmp_path: Path) -> None:
    call = Call(tmp_path)
    options = RenderOptions(dtmf_mode="digits")
    live = JournalRenderer(call.writer.path, TEST_KEY, options)
    progress: list[float] = []
    for second in range(SECONDS):
        newest = call.write_second(second)
        if second % 5 == 4:  # a render step every 5 s of call
            live.advance(newest)
            progress.append(live.rendered_seconds)
    call.writer.close()
    ended = STARTED + SECONDS
    # Several steps did real work, each up to the hold-back before the newest time.
    assert sum(1 for a, b in zip(progress, progress[1:], strict=False) if b > a) >= 6
    assert progress[-1] == pytest.approx(SECONDS - HOLDBACK_SECONDS - 0.4, abs=0.5)
    assert archive_part_path(call.writer.path).stat().st_mode & 0o777 == 0o600
    assert archive_part_path(call.writer.path).stat().st_size > 0  # pages spooled while the call ran

    incremental = live.finish(ended)
    one_shot = reference_render(call.writer.path, TEST_KEY, RenderOptions(dtmf_mode="digits", ended_at=ended))

    # Hang-up renders only the tail: the hold-back plus less than one step.
    assert incremental.tail_seconds <= HOLDBACK_SECONDS + 5.5
    assert incremental.audio.duration_seconds == pytest.approx(SECONDS, abs=0.02)
    assert abs(incremental.audio.duration_seconds - one_shot.audio.duration_seconds) <= 0.02
    a, b = _pcm(incremental.audio.data), _pcm(one_shot.audio.data)
    assert a.shape[0] == b.shape[0] == 2
    n = min(a.shape[1], b.shape[1])
    for channel in (0, 1):
        assert correlate(a[channel, :n], b[channel, :n], RATE) >= 0.9
    # Aligned with the call, not only with each other: the agent's speech starts 0.3 s in.
    agent_ref = np.zeros(n, dtype=np.int16)
    agent_ref[int(0.3 * RATE) :] = call.agent[: n - int(0.3 * RATE)]
    assert correlate(a[0, :n], agent_ref, RATE, max_lag_s=0.01) >= 0.8
    assert correlate(a[0, :n], a[1, :n], RATE) < 0.3

    assert [s.stats for s in incremental.streams] == [s.stats for s in one_shot.streams]
    assert incremental.streams[1].stats["lost"] == len(LOST)
    dtmf = [e for e in incremental.events if e.kind == "dtmf"]
    assert [(round(e.offset_seconds, 2), e.data) for e in dtmf] == [(20.3, {"digit": "5"})]
    assert incremental.events == one_shot.events
    # The waveform comes with the render (taken from the PCM on its way to the encoder):
    # the same buckets as peaks decoded from the archive, and close to them.
    peaks = incremental.audio.peaks
    assert peaks is not None
    decoded = archive_peaks(io.BytesIO(incremental.audio.data))
    assert (peaks.channels, peaks.bucket_seconds) == (decoded.channels, decoded.bucket_seconds)
    assert peaks.duration_seconds == pytest.approx(SECONDS, abs=0.02)
    ours, theirs = (
        np.frombuffer(x.data, dtype=np.uint8).reshape(2, -1).astype(int) for x in (peaks, decoded)
    )
    m = min(ours.shape[1], theirs.shape[1])
    assert np.median(np.abs(ours[:, :m] - theirs[:, :m])) <= 8


def test_dtmf_presence_mode_keeps_no_digit(tmp_path: Path) -> None:
    call = Call(tmp_path)
    for second in range(25):
        call.write_second(second)
    call.writer.close()
    rendered = finish_recording(str(call.writer.path), TEST_KEY, RenderOptions(ended_at=STARTED + 25))
    dtmf = [e for e in rendered.events if e.kind == "dtmf"]
    assert len(dtmf) == 1 and dtmf[0].data == {}
    assert dtmf[0].offset_seconds == pytest.approx(20.3, abs=0.01)


def test_one_way_audio_covers_the_whole_call(tmp_path: Path) -> None:
    call = Call(tmp_path, agent_from=10.0, customer=False)  # the customer never sends; agent from 10 s
    live = JournalRenderer(call.writer.path, TEST_KEY, RenderOptions())
    for second in range(SECONDS - 10):
        newest = call.write_second(second)
        if second % 10 == 9:
            live.advance(newest)
    call.writer.close()
    ended = STARTED + SECONDS + 2.0  # BYE two seconds after the agent's last packet
    rendered = live.finish(ended)
    assert rendered.audio.duration_seconds == pytest.approx(SECONDS + 2.0, abs=0.02)
    pcm = _pcm(rendered.audio.data)
    assert pcm.shape[0] == 2 and abs(pcm.shape[1] / RATE - (SECONDS + 2.0)) <= 0.02
    assert np.abs(pcm[:, : 9 * RATE].astype(np.int32)).max() < 300  # before the agent spoke
    assert np.abs(pcm[1].astype(np.int32)).max() < 300  # the silent side is silence
    ref = np.zeros(pcm.shape[1], dtype=np.int16)
    ref[10 * RATE : 10 * RATE + (SECONDS - 10) * RATE] = call.agent[: (SECONDS - 10) * RATE]
    assert correlate(pcm[0], ref, RATE, max_lag_s=0.01) >= 0.8
    assert {s.label: s.stats["received"] for s in rendered.streams} == {
        "agent": 2503,
        "customer": 0,
    }  # with 3 DTMF packets


def test_session_without_packets_is_silence_of_the_call_length(tmp_path: Path) -> None:
    writer = create_journal(tmp_path, "rec-2", STARTED)
    writer.write_stream(SpoolStream(0, "agent", [PCMU], 0, None))
    writer.write_stream(SpoolStream(1, "customer", [PCMU], 1, None))
    live = JournalRenderer(writer.path, TEST_KEY, RenderOptions())
    live.advance(STARTED + 40.0)  # the engine's clock moves on although no packet comes
    assert live.rendered_seconds == pytest.approx(40.0 - HOLDBACK_SECONDS)
    writer.close()
    rendered = live.finish(STARTED + 42.5)
    assert rendered.tail_seconds == pytest.approx(42.5 - 25.0)
    pcm = _pcm(rendered.audio.data)
    assert pcm.shape == (2, int(42.5 * RATE))
    assert np.abs(pcm.astype(np.int32)).max() < 50  # digital silence, through Opus
    one_shot = reference_render(writer.path, TEST_KEY, RenderOptions(ended_at=STARTED + 42.5))
    assert one_shot.audio.duration_seconds == pytest.approx(42.5)
    delete_spool(writer.path)
    assert not archive_part_path(writer.path).exists() and not writer.path.exists()


def test_recovery_is_the_same_renderer_from_the_first_byte(tmp_path: Path) -> None:
    """After a crash (no hang-up known) the journal renders as the reference does: to its last audio."""
    call = Call(tmp_path)
    for second in range(30):
        call.write_second(second)
    call.writer.close()
    recovered = render_journal(str(call.writer.path), TEST_KEY, RenderOptions(dtmf_mode="digits"))
    reference = reference_render(call.writer.path, TEST_KEY, RenderOptions(dtmf_mode="digits"))
    assert recovered.ended_at == pytest.approx(reference.ended_at)
    assert recovered.audio.duration_seconds == pytest.approx(reference.audio.duration_seconds, abs=0.001)
    assert recovered.tail_seconds == pytest.approx(recovered.audio.duration_seconds)  # all of it at once
    a, b = _pcm(recovered.audio.data), _pcm(reference.audio.data)
    n = min(a.shape[1], b.shape[1])
    for channel in (0, 1):
        assert correlate(a[channel, :n], b[channel, :n], RATE) >= 0.99
    assert [s.stats for s in recovered.streams] == [s.stats for s in reference.streams]
    assert recovered.events == reference.events
