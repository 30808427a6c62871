"""An archive decoded for speech recognition: each channel on its own, 16 kHz.

Recognisers take 16 kHz mono; the archive keeps the call's own rate (8 kHz
narrowband, 16 kHz wideband) with one party per channel. Decoding and
resampling happen in one pass of FFmpeg's resampler, channel layout kept, so
the two parties never mix and sample ``i`` of every channel is the same
instant: a word's time is a player position.
"""

from __future__ import annotations

import av
import numpy as np
import numpy.typing as npt

from callvault.media.wav_render import SeekableFile

SPEECH_RATE = 16000


def archive_channels(archive: SeekableFile, rate: int = SPEECH_RATE) -> npt.NDArray[np.float32]:
    """``(channels, samples)`` float32 in -1..1 at ``rate``; ValueError if it cannot be decoded."""
    blocks: list[npt.NDArray[np.int16]] = []
    try:
        with av.open(archive, mode="r") as container:
            stream = container.streams.audio[0]
            channels = stream.codec_context.channels
            resampler = av.AudioResampler(format="s16p", rate=rate)
            for frame in container.decode(stream):
                blocks.extend(_pcm(block, channels) for block in resampler.resample(frame))
            blocks.extend(_pcm(block, channels) for block in resampler.resample(None))
    except (av.error.FFmpegError, IndexError) as exc:
        raise ValueError(f"archive cannot be decoded: {exc}") from None
    if not blocks:
        return np.zeros((channels, 0), dtype=np.float32)
    pcm = np.concatenate(blocks, axis=1)
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32, copy=False)


def _pcm(block: av.AudioFrame, channels: int) -> npt.NDArray[np.int16]:
    return np.asarray(block.to_ndarray()[:channels], dtype=np.int16)
