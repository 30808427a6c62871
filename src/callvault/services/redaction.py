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

Coaching clips (:meth:`RedactedAudio.clip_silence`) are stricter, because a
clip reaches agents who could not play the call itself: a role without
``transcript.original`` over the call hears the redacted span, and while the
call's transcription job has not succeeded (queued, running, failed, dead or
cancelled) it hears nothing (409) rather than the original. Only a call that
never had a transcription job (transcription off, or older than it) plays its
original span to them.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.db.catalog import Catalog
from callvault.db.job_models import JobRow
from callvault.db.models import Recording
from callvault.db.transcript_models import RecordingTranscript
from callvault.errors import NotFound
from callvault.media.wav_silence import SilencedSpan
from callvault.services.access import Action, Principal, Scope, allowed, check_recording
from callvault.services.playback import PlaybackAudio, PlaybackService
from callvault.services.transcript_view import TranscriptNotReady, pii_spans
from callvault.services.transcription_jobs import KIND as TRANSCRIBE_JOB
from callvault.services.transcripts import TranscriptStore
from callvault.speech.transcript import CHANNEL_OF, Transcript

# The state of a recording's transcription job ("queued", "dead: <reason>" …); None: it has none.
JobStateOf = Callable[[str], str | None]


def sees_originals(principal: Principal) -> bool:
    return allowed(principal, Action.TRANSCRIPT_ORIGINAL) is not None


def hears_original_of(principal: Principal, recording: Recording) -> bool:
    """``transcript.original`` over this very call (a supervisor's covers their team's calls only)."""
    scope = allowed(principal, Action.TRANSCRIPT_ORIGINAL)
    if scope is Scope.ALL:
        return True
    if scope is Scope.TEAM:
        return principal.team_id is not None and recording.team_id == principal.team_id
    if scope is Scope.OWN:
        return principal.user_id is not None and recording.agent_user_id == principal.user_id
    return False


def silenced_spans(transcript: Transcript) -> list[SilencedSpan]:
    """The spans redacted audio zeroes: each piece of personal data on the channel that said it."""
    return [SilencedSpan(CHANNEL_OF[s.speaker], s.start, s.end) for s in pii_spans(transcript)]


class RedactedAudio:
    def __init__(
        self,
        catalog: Catalog,
        playback: PlaybackService,
        transcripts: TranscriptStore,
        job_state: JobStateOf = lambda recording_id: None,
    ) -> None:
        self._catalog = catalog
        self._playback = playback
        self._transcripts = transcripts
        self._job_state = job_state

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
        silence = silenced_spans(transcript)
        return self._playback.open_audio(principal, recording_id, fmt, download=download, silence=silence)

    @staticmethod
    def clip_rendition(session: Session, principal: Principal, recording: Recording) -> str:
        """What a clip of ``recording`` plays to ``principal``, cheaply (clip lists): ``original``,
        ``redacted``, or ``pending`` while the call's transcription has not succeeded."""
        if hears_original_of(principal, recording):
            return "original"
        if session.get(RecordingTranscript, recording.id) is not None:
            return "redacted"
        job = select(JobRow.id).where(JobRow.kind == TRANSCRIBE_JOB, JobRow.subject == recording.id)
        return "original" if session.scalar(job.limit(1)) is None else "pending"

    def clip_silence(self, principal: Principal, recording: Recording) -> list[SilencedSpan] | None:
        """What a clip of ``recording`` played to ``principal`` silences: None (the original) for
        those who may hear it, else the personal data's spans; TranscriptNotReady while the call's
        transcription has not succeeded (the call's personal data is not known yet)."""
        if hears_original_of(principal, recording):
            return None
        transcript = self._transcripts.get(recording.id)
        if transcript is not None:
            return silenced_spans(transcript)
        state = self._job_state(recording.id)
        if state is None:
            return None  # never to be transcribed: nothing will ever be known to redact
        raise TranscriptNotReady(
            f"recording {recording.id} is not transcribed yet (transcription job: {state}): "
            "the clip plays once its personal data can be silenced"
        )
