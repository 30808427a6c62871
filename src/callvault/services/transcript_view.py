"""Reading a transcript through the API: scoped like the recording, every read audited.

A transcript is as sensitive as the audio it came from, so it is shown to
those who may play the recording, in the same scope (anyone else gets the
recording's own 404), and each read — allowed, refused or not ready — is written to
the access trail. A recording not transcribed yet answers 409 naming the
state of its ``transcribe`` job (queued, running, failed with its reason, or
none: automatic transcription off or the recording older than it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from callvault.db.catalog import Catalog
from callvault.db.models import Recording
from callvault.errors import Conflict, KeyUnavailable, NotFound
from callvault.services.access import Action, Principal, allowed, check_recording
from callvault.services.audit import AccessLog
from callvault.services.transcripts import TranscriptStore
from callvault.speech.pii import PiiSpan, find_pii
from callvault.speech.pii import redact as redact_pii
from callvault.speech.transcript import Transcript, turns

# The state of a recording's transcription job, as "queued", "running", "failed: <reason>" ...
JobStateOf = Callable[[str], str | None]
READ_ACTION = "read_transcript"


class TranscriptNotReady(Conflict):
    code = "transcript_not_ready"


class TranscriptViews:
    def __init__(
        self,
        catalog: Catalog,
        transcripts: TranscriptStore,
        access_log: AccessLog,
        job_state: JobStateOf = lambda recording_id: None,
    ) -> None:
        self._catalog = catalog
        self._transcripts = transcripts
        self._log = access_log
        self._job_state = job_state

    def read(self, principal: Principal, recording_id: str, redacted: bool = False) -> dict[str, Any]:
        """The transcript as ``principal`` may read it: redacted if asked, or if the role may not
        see personal data (``transcript.original``)."""
        with self._catalog.read() as session:
            try:
                recording = check_recording(
                    principal, Action.TRANSCRIPT_READ, session.get(Recording, recording_id)
                )
            except NotFound:
                self._log.record(principal, READ_ACTION, recording_id, outcome="not_found")
                raise
            destroyed = recording.key_destroyed_at is not None or recording.status == "deleted"
        if destroyed:
            self._log.record(principal, READ_ACTION, recording_id, outcome="destroyed")
            raise KeyUnavailable("recording audio and transcript have been destroyed")
        transcript = self._transcripts.get(recording_id)
        if transcript is None:
            state = self._job_state(recording_id) or "none"
            self._log.record(principal, READ_ACTION, recording_id, detail=f"job={state}", outcome="not_ready")
            raise TranscriptNotReady(
                f"recording {recording_id} is not transcribed yet (transcription job: {state})"
            )
        redact = redacted or allowed(principal, Action.TRANSCRIPT_ORIGINAL) is None
        self._log.record(principal, READ_ACTION, recording_id, detail="redacted" if redact else None)
        if not redact:
            return transcript_body(recording_id, transcript)
        spans = pii_spans(transcript)
        body = transcript_body(recording_id, redact_pii(transcript, spans), redacted=True)
        body["redactions"] = [
            {"speaker": span.speaker, "kind": span.kind, "start": span.start, "end": span.end}
            for span in spans
        ]
        return body


def transcript_body(recording_id: str, transcript: Transcript, redacted: bool = False) -> dict[str, Any]:
    """Per channel segments and words (times in seconds from the start, confidence 0..1), then
    both channels merged turn by turn."""
    body = transcript.to_json()
    return {
        "recording_id": recording_id,
        "engine": body["engine"],
        "model": body["model"],
        "redacted": redacted,
        "channels": body["channels"],
        "turns": [
            {"speaker": turn.speaker, "start": turn.start, "end": turn.end, "text": turn.text}
            for turn in turns(transcript)
        ],
    }


def pii_spans(transcript: Transcript) -> list[PiiSpan]:
    """Every span of personal data on both channels (each side's prompts count as cues)."""
    spans: list[PiiSpan] = []
    for channel in transcript.channels:
        other = transcript.channel("customer" if channel.speaker == "agent" else "agent")
        spans.extend(find_pii(channel, prompts=other))
    return spans
