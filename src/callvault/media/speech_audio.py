"""An archive decoded for speech recognition: each channel on its own, 16 kHz.

Recognisers take 16 kHz mono; the archive keeps the call's own rate (8 kHz
narrowband, 16 kHz wideband) with one party per channel. Decoding and
resampling happen in one pass of FFmpeg's resampler, channel layout kept, so
the two parties never mix and sample ``i`` of every channel is the same
instant: a word's time is a player position.

A long call is not decoded whole (an hour of stereo is 230 MB as 16-bit samples,
460 MB as float32): :func:`archive_windows` hands it over in windows of a few
minutes, each cut where both channels are quietest near its end so no word is
split, and the recogniser hears one window at a time.
"""

from __future__ import annotations

from collections.abc import Iterator

import av
import numpy as np
import numpy.typing as npt

from callvault.media.wav_render import SeekableFile

SPEECH_RATE = 16000
WINDOW_S = 300.0  # what the recogniser hears at once: 19 MB of float32 stereo
_CUT_SEARCH_S = 15.0  # a window ends at the quietest moment in its last seconds
_CUT_FRAME_S = 0.1


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


def archive_windows(
    archive: SeekableFile, window_s: float = WINDOW_S, rate: int = SPEECH_RATE
) -> Iterator[tuple[float, npt.NDArray[np.float32]]]:
    """``(start seconds, (channels, samples) float32)`` windows of about ``window_s`` in order,
    together the whole archive; ValueError if it cannot be decoded."""
    window = int(window_s * rate)
    reach = int(min(_CUT_SEARCH_S, window_s / 4) * rate)
    pending: list[npt.NDArray[np.int16]] = []
    held, offset, channels = 0, 0, 1
    try:
        with av.open(archive, mode="r") as container:
            stream = container.streams.audio[0]
            channels = stream.codec_context.channels
            resampler = av.AudioResampler(format="s16p", rate=rate)
            for frame in container.decode(stream):
                for block in resampler.resample(frame):
                    pending.append(_pcm(block, channels))
                    held += pending[-1].shape[1]
                    if held >= window + reach:
                        pcm = np.concatenate(pending, axis=1)
                        cut = _quiet_cut(pcm, window, reach, rate)
                        yield offset / rate, _as_float(pcm[:, :cut])
                        offset += cut
                        pending, held = [pcm[:, cut:]], pcm.shape[1] - cut
            pending.extend(_pcm(block, channels) for block in resampler.resample(None))
    except (av.error.FFmpegError, IndexError) as exc:
        raise ValueError(f"archive cannot be decoded: {exc}") from None
    rest = np.concatenate(pending, axis=1) if pending else np.zeros((channels, 0), dtype=np.int16)
    if rest.shape[1] or offset == 0:
        yield offset / rate, _as_float(rest)


def _quiet_cut(pcm: npt.NDArray[np.int16], window: int, reach: int, rate: int) -> int:
    """Where to end a window: the quietest frame (both channels) within ``reach`` samples of
    ``window``, the nearest to it among equally quiet ones (the silence gate's zeros tie)."""
    frame = int(_CUT_FRAME_S * rate)
    frames = 2 * reach // frame
    if frames == 0:
        return window
    search = pcm[:, window - reach : window - reach + frames * frame].astype(np.int32)
    energy = np.abs(search).reshape(search.shape[0], frames, frame).sum(axis=(0, 2))
    quietest = np.flatnonzero(energy == energy.min())
    centre = (frames - 1) / 2
    best = int(quietest[np.argmin(np.abs(quietest - centre))])
    return window - reach + best * frame + frame // 2


def _as_float(pcm: npt.NDArray[np.int16]) -> npt.NDArray[np.float32]:
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32, copy=False)
