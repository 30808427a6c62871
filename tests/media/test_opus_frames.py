"""Per-channel Opus frames: multistream packets libopus decodes as the streams alone, whatever the
packet code (RFC 6716 codes 0-3, padding), and silent frames encoded like any other."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from callvault.media.opus_frames import ChannelEncoder, _libopus, multistream_packet, self_delimited

RATE = 48000
FRAME = 960  # 20 ms: CELT frames the repacketizer joins into codes 1-3


def _encoder(vbr: bool) -> int:
    lib = _libopus()
    error = ctypes.c_int()
    handle = lib.opus_encoder_create(RATE, 1, 2051, ctypes.byref(error))  # CELT only
    lib.opus_encoder_ctl(ctypes.c_void_p(handle), 4006, ctypes.c_int32(int(vbr)))
    lib.opus_encoder_ctl(ctypes.c_void_p(handle), 4002, ctypes.c_int32(32000))
    return int(handle)


def _frames(count: int, vbr: bool, seed: int) -> list[bytes]:
    lib = _libopus()
    handle = _encoder(vbr)
    rng = np.random.default_rng(seed)
    out = ctypes.create_string_buffer(1500)
    frames = []
    for _ in range(count):
        level = 3000 if len(frames) % 2 == 0 else 30  # VBR: frames of different sizes
        pcm = (rng.normal(0, level, FRAME) * np.hanning(FRAME)).astype(np.int16)
        size = lib.opus_encode(ctypes.c_void_p(handle), pcm.ctypes.data, FRAME, out, 1500)
        frames.append(out.raw[:size])
    lib.opus_encoder_destroy(ctypes.c_void_p(handle))
    return frames


def _joined(frames: list[bytes], pad: int = 0) -> bytes:
    lib = _libopus()
    lib.opus_repacketizer_create.restype = ctypes.c_void_p
    packer = ctypes.c_void_p(lib.opus_repacketizer_create())
    for frame in frames:
        assert lib.opus_repacketizer_cat(packer, frame, len(frame)) == 0
    out = ctypes.create_string_buffer(4000)
    size = lib.opus_repacketizer_out(packer, out, 4000)
    lib.opus_repacketizer_destroy(packer)
    if pad:
        assert lib.opus_packet_pad(out, size, size + pad) == 0
        size += pad
    return out.raw[:size]


def _decode_mono(packet: bytes) -> np.ndarray:
    lib = _libopus()
    lib.opus_decoder_create.restype = ctypes.c_void_p
    error = ctypes.c_int()
    decoder = ctypes.c_void_p(lib.opus_decoder_create(RATE, 1, ctypes.byref(error)))
    pcm = np.zeros(5760, dtype=np.int16)
    n = lib.opus_decode(decoder, packet, len(packet), pcm.ctypes.data_as(ctypes.c_void_p), 5760, 0)
    lib.opus_decoder_destroy(decoder)
    assert n > 0
    return pcm[:n]


def _decode_two_streams(packet: bytes) -> np.ndarray:
    lib = _libopus()
    lib.opus_multistream_decoder_create.restype = ctypes.c_void_p
    error = ctypes.c_int()
    mapping = (ctypes.c_ubyte * 2)(0, 1)
    decoder = ctypes.c_void_p(
        lib.opus_multistream_decoder_create(RATE, 2, 2, 0, mapping, ctypes.byref(error))
    )
    pcm = np.zeros((5760, 2), dtype=np.int16)
    n = lib.opus_multistream_decode(
        decoder, packet, len(packet), pcm.ctypes.data_as(ctypes.c_void_p), 5760, 0
    )
    lib.opus_multistream_decoder_destroy(decoder)
    assert n > 0, f"multistream packet refused ({n})"
    return pcm[:n].T


CASES = {
    "code 0": lambda: _frames(1, True, 1)[0],
    "code 1 (two equal frames)": lambda: _joined(_frames(2, False, 2)),
    "code 2 (two frames of different sizes)": lambda: _joined(_frames(2, True, 3)),
    "code 3 CBR": lambda: _joined(_frames(3, False, 4)),
    "code 3 VBR": lambda: _joined(_frames(3, True, 5)),
    "code 3 VBR, padded past 255 bytes": lambda: _joined(_frames(3, True, 6), pad=300),
}


@pytest.mark.parametrize("case", CASES)
def test_a_self_delimited_stream_decodes_as_the_stream_alone(case: str) -> None:
    first = CASES[case]()
    codes = {0: "code 0", 1: "code 1", 2: "code 2", 3: "code 3"}
    assert case.startswith(codes[first[0] & 3])
    last = _frames(len(_decode_mono(first)) // FRAME, True, 9)
    second = _joined(last) if len(last) > 1 else last[0]
    both = _decode_two_streams(multistream_packet([first, second]))
    assert np.array_equal(both[0], _decode_mono(first))
    assert np.array_equal(both[1], _decode_mono(second))
    assert len(self_delimited(first)) > len(first)


def test_silent_frames_are_encoded_like_any_other() -> None:
    # Skipping them (a canned packet, a reset encoder) spoiled the onset after each pause.
    encoder = ChannelEncoder(8000, 480, 10000, 0)
    speech = (np.sin(np.arange(480) / 3) * 8000).astype(np.int16)
    silence = np.zeros(480, dtype=np.int16)
    packets = [encoder.encode(frame) for frame in (speech, silence, silence, speech)]
    fresh = ChannelEncoder(8000, 480, 10000, 0)
    alone = [fresh.encode(frame) for frame in (speech, silence, silence, speech)]
    assert packets == alone and all(packets)  # deterministic, every frame coded
    encoder.close()
    fresh.close()
