"""Personal data kept from those who need the call but not the card number.

Detection is :mod:`callvault.speech.pii` (pure functions over a transcript);
this module decides who gets what. Roles without ``transcript.original`` in
the access table (agents and QA evaluators by default) get the redacted
transcript — the words replaced by ``[card]``, ``[ssn]`` … with their times —
and the redacted audio: the WAV rendition with the time spans of those words
zeroed on the channel that spoke them (the customer's, on the right, for a card
read out; the agent's too when the agent read it back). Anyone may ask for the
redacted form (``redacted=1``); nobody without the permission gets the original.

Redacted audio needs the transcript: until a recording is transcribed, an
explicit ``redacted=1`` answers 409, and a role's default plays the original
(there is nothing known to redact yet; turn automatic transcription on so
that window is a minute after hang-up).
"""

from __future__ import annotations

from callvault.db.catalog import Catalog
from callvault.db.models import Recording
from callvault.errors import NotFound
from callvault.media.wav_silence import SilencedSpan
from callvault.services.access import Action, Principal, allowed, check_recording
from callvault.services.playback import PlaybackAudio, PlaybackService
from callvault.services.transcript_view import TranscriptNotReady, pii_spans
from callvault.services.transcripts import TranscriptStore
from callvault.speech.transcript import CHANNEL_OF


def sees_originals(principal: Principal) -> bool:
    return allowed(principal, Action.TRANSCRIPT_ORIGINAL) is not None


class RedactedAudio:
    def __init__(self, catalog: Catalog, playback: PlaybackService, transcripts: TranscriptStore) -> None:
        self._catalog = catalog
        self._playback = playback
        self._transcripts = transcripts

    def open(
        self, principal: Principal, recording_id: str, fmt: str, download: bool, redacted: bool
    ) -> PlaybackAudio:
        """The audio ``principal`` may hear: redacted if asked or if the role must not hear PII."""
        explicit = redacted
        if not explicit and sees_originals(principal):
            return self._playback.open_audio(principal, recording_id, fmt, download=download)
        with self._catalog.read() as session:
            try:
                check_recording(principal, Action.RECORDING_PLAY, session.get(Recording, recording_id))
            except NotFound:
                # Refused exactly as playback refuses (and audits) it; nothing is decrypted.
                return self._playback.open_audio(principal, recording_id, fmt, download=download)
        transcript = self._transcripts.get(recording_id)
        if transcript is None:
            if explicit:
                raise TranscriptNotReady(
                    f"recording {recording_id} is not transcribed yet: redacted audio is not available"
                )
            return self._playback.open_audio(principal, recording_id, fmt, download=download)
        silence = [SilencedSpan(CHANNEL_OF[s.speaker], s.start, s.end) for s in pii_spans(transcript)]
        return self._playback.open_audio(principal, recording_id, fmt, download=download, silence=silence)
