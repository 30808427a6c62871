"""The disclosure detector: an announcement is found through each codec, at any level and
offset, under line noise; conversation, another announcement, or the same words in
another voice are not taken for it."""

from __future__ import annotations

import numpy as np
import pytest

from callvault.media.announcement_match import Fingerprint, best_match, fingerprint
from callvault.media.band_envelope import BANDS, FRAME_RATE, EnvelopeFollower, band_envelope
from callvault.services.disclosure_check import MATCH_THRESHOLD
from tests.support.phone_line import (
    ANNOUNCEMENT,
    RATE,
    SIMILAR_ANNOUNCEMENT,
    Pcm,
    conversation,
    gain,
    line_noise,
    place,
    speak,
    through,
)

WINDOW = 12.0  # seconds of call: the default window is 30 s, a shorter one tests faster


@pytest.fixture(scope="module")
def announcement() -> Pcm:
    return speak(ANNOUNCEMENT)


@pytest.fixture(scope="module")
def template(announcement: Pcm) -> Fingerprint:
    return fingerprint(announcement, RATE)


def opening(pcm16k: Pcm, codec: str) -> np.ndarray:
    """The envelope the renderer would hand over for one channel of this call."""
    decoded, rate = through(codec, pcm16k)
    follower = EnvelopeFollower(rate, 1, WINDOW)
    follower.feed(decoded.reshape(1, -1))
    return follower.envelopes()[0]


def call_with(played: Pcm | None, start: float, seed: int) -> Pcm:
    """A call side: conversation, and (if given) an announcement at ``start`` in a gap cleared for it."""
    talk = conversation(WINDOW, seed)
    if played is None:
        return talk
    first, last = round((start - 0.3) * RATE), round((start + 0.3) * RATE) + played.size
    talk[max(0, first) : last] = 0
    return place(WINDOW, [(0.0, talk), (start, played)])


@pytest.mark.parametrize(
    ("codec", "start", "level_db", "snr_db"),
    [
        ("PCMU", 3.2, -20.0, 20.0),
        ("PCMA", 7.5, 20.0, None),
        ("G722", 0.4, 0.0, 15.0),
        ("G729", 6.0, -10.0, 20.0),
        ("OPUS", 4.7, 10.0, 15.0),
    ],
)
def test_announcement_is_found_where_it_was_played(
    announcement: Pcm, template: Fingerprint, codec: str, start: float, level_db: float, snr_db: float | None
) -> None:
    played = gain(announcement, level_db)
    side = call_with(played, start, seed=int(start * 10))
    if snr_db is not None:
        side = line_noise(side, snr_db, played, seed=3)
    match = best_match(opening(side, codec), template)
    assert match is not None
    assert match.score >= MATCH_THRESHOLD + 0.1, match
    assert match.offset_seconds == pytest.approx(start + template.lead_seconds, abs=0.05)


@pytest.mark.parametrize(
    ("what", "codec"),
    [("conversation", "PCMU"), ("similar announcement", "G729"), ("same words, other voice", "OPUS")],
)
def test_other_speech_is_not_taken_for_the_announcement(template: Fingerprint, what: str, codec: str) -> None:
    played = {
        "conversation": None,
        "similar announcement": speak(SIMILAR_ANNOUNCEMENT),
        "same words, other voice": speak(ANNOUNCEMENT, voice="en-gb+m3", speed=150),
    }[what]
    side = line_noise(call_with(played, 4.0, seed=7), 20.0, speak(ANNOUNCEMENT), seed=4)
    match = best_match(opening(side, codec), template)
    assert match is not None
    assert match.score < MATCH_THRESHOLD - 0.1, (what, match)


def test_an_announcement_cut_off_by_the_window_end_is_not_heard(
    announcement: Pcm, template: Fingerprint
) -> None:
    envelope = opening(call_with(announcement, WINDOW - 1.5, seed=9), "PCMU")
    match = best_match(envelope, template)
    assert match is None or match.score < MATCH_THRESHOLD
    assert best_match(envelope[: template.envelope.shape[0] - 1], template) is None  # too short to hold it


def test_digital_silence_scores_nothing(template: Fingerprint) -> None:
    silent = opening(np.zeros(round(WINDOW * RATE), dtype=np.int16), "PCMU")
    match = best_match(silent, template)
    assert match is not None and match.score == 0.0


def test_follower_fed_in_pieces_gives_the_envelope_of_the_whole(announcement: Pcm) -> None:
    whole = band_envelope(announcement, RATE)
    follower = EnvelopeFollower(RATE, 2, 2.5)
    stereo = np.stack([announcement, announcement // 2])
    for start, end in [(0, 7), (7, 333), (333, 5000), (5000, 5001), (5001, stereo.shape[1])]:
        follower.feed(stereo[:, start:end])
    assert follower.done
    pieces = follower.envelopes()
    assert pieces.shape == (2, round(2.5 * FRAME_RATE), BANDS)
    np.testing.assert_allclose(pieces[0], whole[: pieces.shape[1]], atol=0.05)
    # Half the amplitude is 6 dB less in every band that is above the floor.
    # (float16 keeps 0.03 dB steps at these levels, and halving rounds the quietest samples.)
    loud = whole[: pieces.shape[1]] > -50
    np.testing.assert_allclose((pieces[0] - pieces[1])[loud], 6.02, atol=0.1)


def test_fingerprint_trims_silence_and_round_trips(announcement: Pcm) -> None:
    padded = place(announcement.size / RATE + 3.0, [(2.0, announcement)])
    made = fingerprint(padded, RATE)
    plain = fingerprint(announcement, RATE)
    assert made.lead_seconds == pytest.approx(2.0 + plain.lead_seconds, abs=1 / FRAME_RATE + 0.001)
    assert made.envelope.shape == plain.envelope.shape
    again = Fingerprint.from_bytes(made.to_bytes())
    np.testing.assert_array_equal(again.envelope, made.envelope)
    assert again.lead_seconds == pytest.approx(made.lead_seconds)


@pytest.mark.parametrize(
    ("pcm", "message"),
    [
        (np.zeros(RATE * 3, dtype=np.int16), "silent"),
        (speak("Hi.")[: RATE // 2], "at least 1 s"),
    ],
)
def test_fingerprint_refuses_what_cannot_be_recognised(pcm: Pcm, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fingerprint(pcm, RATE)


def test_damaged_fingerprints_are_refused(template: Fingerprint) -> None:
    data = template.to_bytes()
    for bad, message in [
        (b"XXXX" + data[4:], "not a version"),
        (data[:-2], "body is"),
        (data[:5], "shorter"),
    ]:
        with pytest.raises(ValueError, match=message):
            Fingerprint.from_bytes(bad)
