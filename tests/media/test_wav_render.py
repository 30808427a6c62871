"""wav_render: the WAV size from the last Ogg page, and any byte range of it decoded on the fly."""

from __future__ import annotations

import io

import numpy as np
import pytest

from callvault.media.archive import decode_audio, encode_archive, to_wav
from callvault.media.wav_render import iter_wav, wav_layout


def _archive(rate: int, channels: int, seconds: float) -> bytes:
    rng = np.random.default_rng(channels * rate)
    return encode_archive(
        (rng.standard_normal((channels, int(rate * seconds))) * 3000).astype(np.int16), rate
    )


@pytest.mark.parametrize(("rate", "channels", "seconds"), [(8000, 2, 3.337), (16000, 1, 2.0), (8000, 1, 1.0)])
def test_rendition_equals_the_whole_file_decode(rate: int, channels: int, seconds: float) -> None:
    archive = _archive(rate, channels, seconds)
    reference = to_wav(decode_audio(archive).pcm, rate)
    layout = wav_layout(archive[:8192], archive[-70000:])
    assert (layout.channels, layout.sample_rate, layout.size) == (channels, rate, len(reference))
    for start, end in [
        (0, layout.size),
        (0, 44),
        (43, 45),
        (44, 46),
        (1001, 7777),
        (layout.size - 3, layout.size),
    ]:
        assert b"".join(iter_wav(io.BytesIO(archive), layout, start, end)) == reference[start:end], (
            start,
            end,
        )


def test_a_rendition_is_held_to_the_stated_length() -> None:
    # 13 ms: the resampler's flush gives a few samples fewer than the granule position states.
    archive = _archive(8000, 2, 0.013)
    layout = wav_layout(archive, archive)
    whole = b"".join(iter_wav(io.BytesIO(archive), layout, 0, layout.size))
    assert len(whole) == layout.size == 44 + 104 * 4
    decoded = decode_audio(archive).pcm
    assert whole[44 : 44 + decoded.size * 2] == to_wav(decoded, 8000)[44:]
    assert whole[44 + decoded.size * 2 :] == bytes(layout.size - 44 - decoded.size * 2)


def test_ranges_outside_the_rendition_and_non_archives_are_refused() -> None:
    archive = _archive(8000, 1, 0.5)
    layout = wav_layout(archive, archive)
    with pytest.raises(ValueError, match="outside"):
        list(iter_wav(io.BytesIO(archive), layout, 0, layout.size + 1))
    with pytest.raises(ValueError):
        wav_layout(b"RIFF" + bytes(100), b"RIFF" + bytes(100))
