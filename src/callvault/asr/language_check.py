"""Is a channel's speech in the configured language? The recogniser's own confidence says.

An English-only model (Whisper tiny.en, the default) cannot name another
language: fed German, French or Spanish it writes English-sounding words that
were never said ("I'm not sure if I can get the same thing."). Those words
would be searched, scored for sentiment and matched against phrase categories
as if the customer had said them. What gives them away is the model's own
confidence: its mean log-probability per token over the channel's speech.

Rule: a channel with at least :data:`MIN_JUDGED_SPEECH_S` seconds of speech
(after voice activity detection; a short "hola" or "ok" is not judged) is *not
recognised* when, weighted by each segment's length, the mean log-probability is
below :data:`FAILED_LOGPROB` — Whisper's own mark of a failed decoding (its
``log_prob_threshold``) — or when it read no word at all in that speech (the
voice activity detector heard speech; the recogniser found nothing it could
write). A few words in much detected "speech" is not judged: that is a quiet
party on a noisy line as often as anything else. Measured on espeak-ng speech through G.711, G.729
at -12 dB and the archive (``bench/transcription.py``'s sentences): English in
six voices -0.28 to -0.62; German, French, Spanish, Italian, Portuguese and
Dutch -1.14 to -2.59, or (French and Spanish through G.729) no words at all
from 13-14 s of speech.

A multilingual model is asked instead: its language identification over the
speech names the language it heard (:func:`misheard_language`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

FAILED_LOGPROB = -1.0
MIN_JUDGED_SPEECH_S = 3.0
# A multilingual model's language identification must be at least this sure to overrule.
MIN_LANGUAGE_PROBABILITY = 0.5

_NAMES = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
    "pl": "Polish",
    "sv": "Swedish",
    "da": "Danish",
    "no": "Norwegian",
    "fi": "Finnish",
    "ru": "Russian",
    "tr": "Turkish",
    "ar": "Arabic",
    "zh": "Chinese",
    "ja": "Japanese",
    "hi": "Hindi",
}


@dataclass(frozen=True)
class DecodedSegment:
    """What the recogniser made of one stretch of speech, before anything was dropped."""

    seconds: float
    avg_logprob: float
    words: int


def language_name(code: str) -> str:
    """``"English (en)"``; the bare code for a language without a name here."""
    name = _NAMES.get(code)
    return f"{name} ({code})" if name else code


def unrecognised_reason(segments: Sequence[DecodedSegment], speech_s: float, language: str) -> str | None:
    """Why the channel's speech is not ``language``, or None (recognised, or too little to judge)."""
    if speech_s < MIN_JUDGED_SPEECH_S:
        return None
    expected = language_name(language)
    words = sum(segment.words for segment in segments)
    if words == 0:
        return f"speech not recognised as {expected}: {speech_s:.1f} s of speech, no word recognised in it"
    timed = sum(segment.seconds for segment in segments)
    if timed <= 0:
        return None
    mean = sum(segment.avg_logprob * segment.seconds for segment in segments) / timed
    if mean < FAILED_LOGPROB:
        return (
            f"speech not recognised as {expected}: {speech_s:.1f} s of speech, the recogniser's mean "
            f"log-probability {mean:.2f} (below {FAILED_LOGPROB}: another language, or too unclear)"
        )
    return None


def misheard_language(detected: str, probability: float, language: str) -> str | None:
    """A multilingual model heard ``detected`` with ``probability``: why that is not ``language``."""
    if detected == language or probability < MIN_LANGUAGE_PROBABILITY:
        return None
    return (
        f"speech not recognised as {language_name(language)}: heard as "
        f"{language_name(detected)} (probability {probability:.2f})"
    )
