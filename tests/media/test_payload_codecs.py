"""RTP payload codecs: G.711 tables against the ITU values and FFmpeg, G.722/G.729/Opus via PyAV."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import av
import numpy as np
import pytest

from callvault.media.g711 import ALAW_DECODE, ULAW_DECODE, alaw_encode, ulaw_encode
from callvault.media.mixing import correlate, resample, synth_speech_like
from callvault.media.payload_codecs import create_decoder, create_encoder, opus_packet_samples


@pytest.mark.parametrize(
    ("encoding", "code", "linear"),
    [
        ("PCMU", 0xFF, 0),
        ("PCMU", 0x7F, 0),
        ("PCMU", 0x00, -32124),
        ("PCMU", 0x80, 32124),
        ("PCMA", 0xD5, 8),
        ("PCMA", 0x55, -8),
        ("PCMA", 0xAA, 32256),
        ("PCMA", 0x2A, -32256),
    ],
)
def test_g711_known_values(encoding: str, code: int, linear: int) -> None:
    decoder = create_decoder(encoding, 8000)
    assert decoder.decode(bytes([code])).tolist() == [linear]


@pytest.mark.parametrize(("codec", "table"), [("pcm_mulaw", ULAW_DECODE), ("pcm_alaw", ALAW_DECODE)])
def test_g711_decode_tables_match_ffmpeg(codec: str, table: np.ndarray) -> None:
    context = cast(av.AudioCodecContext, av.CodecContext.create(codec, "r"))
    context.sample_rate = 8000
    context.layout = "mono"
    frames = context.decode(av.Packet(bytes(range(256))))
    assert np.array_equal(np.concatenate([f.to_ndarray().ravel() for f in frames]), table)


@pytest.mark.parametrize(("encode", "table"), [(ulaw_encode, ULAW_DECODE), (alaw_encode, ALAW_DECODE)])
def test_g711_encoder_picks_the_interval_containing_each_sample(
    encode: Callable[[np.ndarray], bytes], table: np.ndarray
) -> None:
    everything = np.arange(-32768, 32768, dtype=np.int16)
    decoded = table.take(np.frombuffer(encode(everything), dtype=np.uint8)).astype(np.int32)
    error = np.abs(decoded - everything.astype(np.int32))
    # Largest G.711 step is 1024 (µ-law) / 1024 (A-law): error at most half a step plus the clip.
    assert error[np.abs(everything.astype(np.int32)) < 32000].max() <= 1024
    assert np.all(np.diff(decoded) >= 0)  # monotonic: louder in, never quieter out
    # Every reconstruction level encodes back to itself (µ-law's two zeros map to one).
    assert np.array_equal(table.take(np.frombuffer(encode(table), dtype=np.uint8)), table)


@pytest.mark.parametrize("encoding", ["PCMU", "pcmu", "PCMA", "pcma", "L16"])
def test_linear_and_g711_round_trip_and_batch(encoding: str) -> None:
    source = resample(synth_speech_like(2.0, 16000, 7), 16000, 8000)
    encoder = create_encoder(encoding)
    decoder = create_decoder(encoding, 8000)
    payloads = [encoder.encode(source[i : i + 160]) for i in range(0, source.size, 160)]
    batch = decoder.decode_batch(payloads)
    assert np.array_equal(batch, np.concatenate([decoder.decode(p) for p in payloads]))
    assert correlate(batch, source) >= 0.999
    assert decoder.samples_for(160) == 160
    assert decoder.sample_rate == 8000


def test_g711_never_raises_on_garbage() -> None:
    decoder = create_decoder("PCMU", 8000)
    assert decoder.decode(bytes(range(256)) * 3).size == 768
    assert decoder.decode(b"").size == 0
    assert decoder.decode_errors == 0


def test_g722_round_trip_at_16khz_with_8khz_clock() -> None:
    source = synth_speech_like(3.0, 16000, 8)
    encoder = create_encoder("G722")
    decoder = create_decoder("g722", 8000)
    payloads = [encoder.encode(source[i : i + 320]) for i in range(0, source.size, 320)]
    assert {len(p) for p in payloads} == {160}
    decoded = decoder.decode_batch(payloads)
    assert decoder.sample_rate == 16000
    assert decoder.samples_for(160) == 320  # 20 ms of RTP clock at 8000 Hz
    assert decoded.size == source.size
    assert correlate(decoded, source, 16000) >= 0.9


def test_g729_decodes_frames_and_fills_garbage_with_silence() -> None:
    decoder = create_decoder("G729", 8000)
    assert decoder.decode(bytes(range(20))).size == 160  # two 10-byte frames
    filler = decoder.decode(b"\x01\x02\x03")
    assert filler.size == 80 and not filler.any()
    assert decoder.decode_errors == 1


def _opus_packets(pcm: np.ndarray) -> list[bytes]:
    context = av.CodecContext.create("libopus", "w")
    context.sample_rate = 48000
    context.layout = "mono"
    context.format = "s16"
    context.bit_rate = 32000
    context.open()
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = 48000
    frame.pts = 0
    return [bytes(p) for p in list(context.encode(frame)) + list(context.encode(None))]


def test_opus_decodes_at_48khz_and_survives_garbage() -> None:
    source = resample(synth_speech_like(2.0, 16000, 9), 16000, 48000)
    packets = _opus_packets(source)
    assert [opus_packet_samples(p) for p in packets[:3]] == [960, 960, 960]
    decoder = create_decoder("OPUS", 48000, 2)
    decoded = decoder.decode_batch(packets)
    assert decoder.sample_rate == 48000
    assert decoder.samples_for(960) == 960
    assert correlate(decoded[: source.size], source, 48000) >= 0.9
    assert decoder.decode_errors == 0
    # A TOC claiming 63 frames is impossible, so the filler falls back to 20 ms.
    filler = decoder.decode(b"\xff\xff\xff")
    assert filler.size == 960
    assert not filler.any()
    assert decoder.decode_errors == 1


@pytest.mark.parametrize(
    ("encoding", "clock", "message"),
    [
        ("GSM", 8000, "unsupported"),
        ("PCMU", 16000, "8000"),
        ("opus", 16000, "48000"),
    ],
)
def test_rejects_unknown_encodings_and_wrong_clocks(encoding: str, clock: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_decoder(encoding, clock)


def test_no_encoder_for_decode_only_codecs() -> None:
    with pytest.raises(ValueError, match="no RTP payload encoder"):
        create_encoder("G729")
