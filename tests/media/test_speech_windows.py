"""A long archive handed to the recogniser in windows, each cut where both channels are quiet."""

from __future__ import annotations

import io

import numpy as np
from tests.support.audio import voice

from callvault.media.archive import encode_archive
from callvault.media.speech_audio import SPEECH_RATE, archive_channels, archive_windows
from callvault.speech.transcript import ChannelTranscript, Segment, Word, joined


def turn_taking(seconds: int, rate: int = 8000) -> np.ndarray:
    """Agent and customer alternating 4 s turns with 1 s of silence between: (2, n) int16."""
    sides = np.zeros((2, seconds * rate), dtype=np.int16)
    for turn, at in enumerate(range(0, seconds - 4, 5)):
        side = turn % 2
        sides[side, at * rate : (at + 4) * rate] = voice(4, rate, 120 + 80 * side, turn)
    return sides


def test_windows_together_are_the_whole_archive_cut_in_silence() -> None:
    archive = io.BytesIO(encode_archive(turn_taking(95), 8000))
    whole = archive_channels(archive)
    archive.seek(0)
    windows = list(archive_windows(archive, window_s=20))
    assert len(windows) == 5  # cuts near 20, 40, 60 and 80 s
    assert [start for start, _ in windows][0] == 0.0
    at = 0
    for start, audio in windows:
        assert start == at / SPEECH_RATE  # contiguous, in order
        assert audio.shape[0] == 2 and abs(audio.shape[1] / SPEECH_RATE - 20) <= 5 + 1
        at += audio.shape[1]
    assert at == whole.shape[1]
    joined_up = np.concatenate([audio for _, audio in windows], axis=1)
    assert np.array_equal(joined_up, whole)  # the same samples as decoding it whole
    for start, _ in windows[1:]:
        # Each cut falls in a second of silence between turns (turns start every 5 s).
        assert (start % 5) > 4.0, start


def test_a_short_or_empty_archive_is_one_window() -> None:
    archive = io.BytesIO(encode_archive(turn_taking(6), 8000))
    [(start, audio)] = list(archive_windows(archive, window_s=20))
    assert start == 0.0 and abs(audio.shape[1] / SPEECH_RATE - 6) < 0.1


def test_windows_join_into_recording_time() -> None:
    def heard(at: float, text: str) -> ChannelTranscript:
        word = Word(at, at + 0.5, text, 0.9)
        return ChannelTranscript("customer", (Segment(at, at + 0.5, text, (word,)),))

    unrecognised = ChannelTranscript("customer", (), "en", "speech not recognised as English (en): …")
    channel = joined(
        "customer",
        [
            (0.0, 300.2, heard(1.0, "hello")),
            (300.2, 600.0, heard(2.0, "refund")),
            (600.0, 700.0, unrecognised),
        ],
    )
    assert [(w.start, w.text) for w in channel.words] == [(1.0, "hello"), (302.2, "refund")]
    assert channel.unrecognised == "10:00-11:40: speech not recognised as English (en): …"
