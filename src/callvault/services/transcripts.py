"""Transcripts at rest: encrypted under the recording's own data key, written once.

Why a catalog row of ciphertext rather than a vault object next to the archive:
the row is written in the same transaction that checks the recording still
exists and still has its data key (a recording deleted while it was being
transcribed gets nothing half-written), its primary key makes a retried job
write once, and the deletion paths drop it in their own transaction
(:func:`forget_transcripts`). Either way the protection is the key: the
transcript is sealed with the recording's data key (AAD bound to
``<recording id>#transcript``), so forgetting that key — crypto-shred,
retention, erasure, ``destroy_audio`` — leaves every copy unreadable.

``transcript.ready`` (``{"recording_id", "recording_pk"}``; a recording's
primary key is its public id, so both carry it) is published in the storing
transaction: subscribers (search indexing, call metrics) hear of it if and only
if it committed.

:meth:`TranscriptStore.get` is for internal use (indexing, metrics): no access
check, no audit. The API reads through :class:`callvault.services.transcript_view`.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from callvault.crypto.envelope import decrypt_object, encrypt_object
from callvault.crypto.keyprovider import KeyProvider, WrappedKey
from callvault.db.catalog import Catalog
from callvault.db.models import Recording
from callvault.db.transcript_models import RecordingTranscript
from callvault.errors import IntegrityError, NotFound
from callvault.services.events import EventBus
from callvault.speech.transcript import Transcript

READY_EVENT = "transcript.ready"
# The transcript's JSON never grows past this once decompressed (a 10-hour call is ~10 MB).
_MAX_JSON = 64 * 2**20


def transcript_object_id(recording_id: str) -> str:
    """The envelope's object id: a transcript cannot be moved to another recording or the audio."""
    return f"{recording_id}#transcript"


def forget_transcripts(session: Session, recording_ids: Sequence[str]) -> None:
    """Delete the transcripts of ``recording_ids`` in the caller's transaction (deletion paths)."""
    if recording_ids:
        session.execute(
            delete(RecordingTranscript).where(RecordingTranscript.recording_id.in_(list(recording_ids))),
            execution_options={"synchronize_session": False},
        )


class TranscriptStore:
    def __init__(self, catalog: Catalog, keys: KeyProvider, events: EventBus) -> None:
        self._catalog = catalog
        self._keys = keys
        self._events = events

    def exists(self, recording_id: str) -> bool:
        with self._catalog.read() as session:
            found = session.scalar(
                select(RecordingTranscript.recording_id).where(
                    RecordingTranscript.recording_id == recording_id
                )
            )
        return found is not None

    def get(self, recording_id: str) -> Transcript | None:
        """The decrypted transcript, or None (none stored, or the recording's key is gone).

        Internal use: no access check and no audit; API reads go through the view service.
        """
        with self._catalog.read() as session:
            row = session.get(RecordingTranscript, recording_id)
            recording = session.get(Recording, recording_id)
            if row is None or recording is None or recording.wrapped_key is None or not recording.kek_id:
                return None
            ciphertext, wrapped = bytes(row.ciphertext), WrappedKey(recording.kek_id, recording.wrapped_key)
        data_key = self._keys.unwrap(wrapped, recording_id.encode())
        plain = decrypt_object(ciphertext, data_key, transcript_object_id(recording_id))
        try:
            inflater = zlib.decompressobj()
            body = inflater.decompress(plain, _MAX_JSON)
            if inflater.unconsumed_tail:
                raise ValueError(f"transcript is larger than {_MAX_JSON} bytes")
            return Transcript.from_json(json.loads(body))
        except ValueError as exc:  # zlib.error and JSONDecodeError are ValueErrors too
            raise IntegrityError(
                f"recording {recording_id}: stored transcript is unreadable: {exc}"
            ) from None

    def store(self, recording_id: str, transcript: Transcript, speech_seconds: float) -> bool:
        """Seal and store ``transcript``; False if one is already stored (a retried job).

        Raises NotFound when the recording is gone, deleted or its audio destroyed: nothing is written.
        """
        body = zlib.compress(json.dumps(transcript.to_json(), separators=(",", ":")).encode(), 6)
        with self._catalog.write() as session:
            recording = session.get(Recording, recording_id, with_for_update=True)
            if (
                recording is None
                or recording.deleted_at is not None
                or recording.wrapped_key is None
                or not recording.kek_id
            ):
                raise NotFound(f"recording {recording_id} no longer has audio to transcribe")
            if session.get(RecordingTranscript, recording_id) is not None:
                return False
            data_key = self._keys.unwrap(
                WrappedKey(recording.kek_id, recording.wrapped_key), recording_id.encode()
            )
            session.add(
                RecordingTranscript(
                    recording_id=recording_id,
                    engine=transcript.engine[:64],
                    model=transcript.model[:200],
                    ciphertext=encrypt_object(body, data_key, transcript_object_id(recording_id)),
                    word_count=sum(len(channel.words) for channel in transcript.channels),
                    speech_seconds=speech_seconds,
                    created_at=datetime.now(UTC),
                )
            )
            session.flush()
            self._events.publish_in(
                session, READY_EVENT, {"recording_id": recording_id, "recording_pk": recording_id}
            )
        return True
