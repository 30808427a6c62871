"""The rule that says a channel's speech is not in the configured language (no model needed)."""

from __future__ import annotations

from callvault.asr.language_check import DecodedSegment, misheard_language, unrecognised_reason
from callvault.speech.transcript import ChannelTranscript, Transcript


def test_confident_english_is_recognised() -> None:
    # English espeak-ng through G.729 at -12 dB: the worst measured voice, -0.62.
    segments = [DecodedSegment(4.0, -0.62, 12), DecodedSegment(3.0, -0.3, 9)]
    assert unrecognised_reason(segments, 8.0, "en") is None


def test_a_failed_decoding_over_the_channel_is_named() -> None:
    # Spanish through G.711: -1.34 over the speech.
    segments = [DecodedSegment(3.0, -1.34, 9), DecodedSegment(2.5, -1.34, 9)]
    reason = unrecognised_reason(segments, 9.1, "en")
    assert reason == (
        "speech not recognised as English (en): 9.1 s of speech, the recogniser's mean "
        "log-probability -1.34 (below -1.0: another language, or too unclear)"
    )
    # Weighted by length: one long good stretch outweighs a short doubtful one.
    assert (
        unrecognised_reason([DecodedSegment(8.0, -0.4, 20), DecodedSegment(1.0, -2.0, 2)], 9.0, "en") is None
    )


def test_speech_with_no_words_read_in_it_is_named() -> None:
    assert unrecognised_reason([], 14.1, "en") == (
        "speech not recognised as English (en): 14.1 s of speech, no word recognised in it"
    )
    # A few confident words in much detected "speech" (a quiet party on a noisy line) stay.
    assert unrecognised_reason([DecodedSegment(2.0, -0.4, 4)], 60.0, "en") is None


def test_too_little_speech_is_not_judged() -> None:
    assert unrecognised_reason([DecodedSegment(1.5, -1.9, 2)], 2.9, "en") is None
    assert unrecognised_reason([], 0.0, "en") is None


def test_a_multilingual_models_language_identification() -> None:
    assert misheard_language("de", 0.93, "en") == (
        "speech not recognised as English (en): heard as German (de) (probability 0.93)"
    )
    assert misheard_language("en", 0.99, "en") is None
    assert misheard_language("de", 0.4, "en") is None  # unsure: transcribed as set
    assert (
        misheard_language("xx", 0.9, "fr")
        == "speech not recognised as French (fr): heard as xx (probability 0.90)"
    )


def test_the_reason_is_stored_with_the_channel() -> None:
    channel = ChannelTranscript("customer", (), "en", "speech not recognised as English (en): …")
    stored = Transcript((channel,), "faster-whisper", "tiny.en").to_json()
    assert Transcript.from_json(stored).channels[0].unrecognised == channel.unrecognised
    del stored["channels"][0]["unrecognised"]  # written before the field existed
    assert Transcript.from_json(stored).channels[0].unrecognised is None
