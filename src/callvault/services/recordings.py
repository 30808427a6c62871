"""The recording service: catalogue a recording session and seal its audio in the vault.

Sealing a recording (``finalise``): hash the archive, give it a fresh 256-bit
data key wrapped by the key provider, encrypt it in authenticated chunks,
store the object atomically, then in one catalog transaction record hashes,
sizes, streams and events, sign the manifest built from those rows and append
it to the seal log (:mod:`callvault.services.seal_log`).
The object is written before the catalog row points at it, so a crash in
between leaves at worst an unreferenced object, never a row without audio.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from callvault.crypto.envelope import encrypt_object, new_data_key
from callvault.crypto.keyprovider import KeyProvider
from callvault.crypto.signing import ManifestSigner, canonical_json
from callvault.db.catalog import Catalog
from callvault.db.models import (
    Call,
    CallIdentifier,
    Participant,
    Recording,
    RecordingEvent,
    RecordingTag,
    Stream,
)
from callvault.db.web_models import RecordingPeaks
from callvault.errors import CallvaultError, Conflict, InvalidInput, NotFound
from callvault.media.peaks import Peaks
from callvault.services.call_record import (
    ArchiveAudio,
    CallEvent,
    CallRecord,
    FinalStatus,
    IngestSource,
    StreamRecord,
)
from callvault.services.catalogue_rows import (
    ConsentRequirement,
    Row,
    call_rows,
    completeness,
    event_rows,
    stream_rows,
)
from callvault.services.deletion_guard import ensure_not_held
from callvault.services.directory import AgentDirectory
from callvault.services.events import EventBus
from callvault.services.insight_store import forget_insights
from callvault.services.manifest import build_manifest, build_manifest_with, iso
from callvault.services.phone import mask_number
from callvault.services.seal_log import SealLog
from callvault.services.transcript_index import forget_indexed
from callvault.services.transcripts import forget_transcripts
from callvault.storage.blobstore import BlobStore

log = logging.getLogger(__name__)

FINAL_STATUSES = ("complete", "incomplete", "interrupted")
_MAX_TAG = 64
# Built once (every call runs them): a statement built per call costs more Python than running it.
_INSERT_CALL = insert(Call)
_INSERT_RECORDING = insert(Recording)
_INSERT_IDENTIFIER = insert(CallIdentifier)
_INSERT_PARTICIPANT = insert(Participant)
_INSERT_TAG = insert(RecordingTag)
_INSERT_STREAM = insert(Stream)
_INSERT_EVENT = insert(RecordingEvent)


def object_key_for(recording_id: str, started_at: datetime) -> str:
    return f"recordings/{started_at:%Y/%m/%d}/{recording_id}.cvr"


def _clean_tags(tags: list[str]) -> list[str]:
    cleaned = []
    for tag in tags:
        tag = tag.strip()
        if not tag:
            continue
        if len(tag) > _MAX_TAG:
            raise InvalidInput(f"tag {tag[:20]!r}... is longer than {_MAX_TAG} characters")
        if tag not in cleaned:
            cleaned.append(tag)
    return cleaned


class RecordingService:
    def __init__(
        self,
        catalog: Catalog,
        blobs: BlobStore,
        keys: KeyProvider,
        signer: ManifestSigner,
        directory: AgentDirectory,
        region: str,
        seal_log: SealLog,
        events: EventBus | None = None,
        consent: ConsentRequirement | None = None,
    ) -> None:
        self._catalog = catalog
        self._consent = consent  # decides each call's consent requirement (None: left unknown)
        self._events = events
        self._blobs = blobs
        self._keys = keys
        self._signer = signer
        self._directory = directory
        self._region = region
        self._seal_log = seal_log
        self._finalise_lock = threading.Lock()

    @property
    def keys(self) -> KeyProvider:
        """The key provider wrapping data keys (the media engine wraps its spool keys with it too)."""
        return self._keys

    # -- cataloguing -------------------------------------------------------

    def begin(
        self, call: CallRecord, source: IngestSource | None = None, rule: dict[str, Any] | None = None
    ) -> str:
        """Catalogue a new recording in status 'recording' and return its id.

        ``source`` (who handed the recording in, from where) is kept with the
        server's time of receipt and signed into the manifest. ``rule``: what a
        recording rule decided (columns ``status``, ``rule_name``, ``rule_action``,
        ``labels``; see :func:`callvault.services.rule_outcome.rule_columns`).
        """
        if call.started_at.tzinfo is None:
            raise InvalidInput("started_at must be timezone-aware")
        tags = _clean_tags(call.tags)
        rows = call_rows(call, self._directory, self._region, self._consent)  # before the write lock
        recording_id = str(uuid.uuid4())
        call_id = str(uuid.uuid4())
        created_at = datetime.now(UTC)
        recording: dict[str, Any] = {
            "id": recording_id,
            "call_id": call_id,
            "status": "recording",
            "started_at": call.started_at,
            "format": "ogg-opus",
            "mixed": False,
            "created_at": created_at,
            **rows.recording,
            **(rule or {}),
        }
        if source is not None:
            recording["ingest_source"] = {**source.to_dict(), "received_at": iso(created_at)}
        # Plain inserts, one transaction: no ORM objects are needed for rows only written here.
        with self._catalog.write() as session:
            connection = session.connection()
            connection.execute(
                _INSERT_CALL,
                {"id": call_id, "started_at": call.started_at, "source": call.source, **rows.call},
            )
            connection.execute(_INSERT_RECORDING, recording)
            if rows.identifiers:
                connection.execute(_INSERT_IDENTIFIER, [{**r, "call_id": call_id} for r in rows.identifiers])
            if rows.participants:
                connection.execute(
                    _INSERT_PARTICIPANT, [{**r, "call_id": call_id} for r in rows.participants]
                )
            if tags:
                connection.execute(_INSERT_TAG, [{"recording_id": recording_id, "tag": t} for t in tags])
        log.info(
            "recording %s started (%s, caller %s)",
            recording_id,
            call.source,
            mask_number(call.calling_number),
        )
        return recording_id

    def update_call(self, recording_id: str, call: CallRecord) -> None:
        """Replace what is known about the call (metadata UPDATE, re-INVITE)."""
        rows = call_rows(call, self._directory, self._region, self._consent)
        with self._catalog.write() as session:
            recording = _locked(session, recording_id)
            if recording is None:
                raise NotFound(f"recording {recording_id} not found")
            call_row = session.get(Call, recording.call_id)
            assert call_row is not None
            for column, value in rows.call.items():
                setattr(call_row, column, value)
            call_row.identifiers = [CallIdentifier(**r) for r in rows.identifiers]
            call_row.participants = [Participant(**r) for r in rows.participants]
            for column, value in rows.recording.items():
                setattr(recording, column, value)
            if recording.status != "recording":
                recording.manifest_signature = None
                self._sign(session, recording)

    # -- sealing -----------------------------------------------------------

    def finalise(
        self,
        recording_id: str,
        audio: ArchiveAudio,
        status: FinalStatus,
        streams: list[StreamRecord],
        events: list[CallEvent],
        ended_at: datetime,
    ) -> None:
        """Encrypt, hash, sign and store the archive; idempotent for an already sealed id."""
        if status not in FINAL_STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(FINAL_STATUSES)}")
        with self._catalog.read() as session:
            recording = session.get(Recording, recording_id)
            if recording is None:
                raise NotFound(f"recording {recording_id} not found")
            if recording.status != "recording":
                return
            if recording.rule_action == "on_demand" and recording.kept_at is None:
                # Nobody asked to keep it (see runtime/media/on_demand.py): no audio leaves the spool.
                self.end_without_audio(recording_id, "not_kept", ended_at, audio.duration_seconds)
                return
            key = object_key_for(recording_id, recording.started_at)
        audio_sha256 = hashlib.sha256(audio.data).hexdigest()
        data_key = new_data_key()
        wrapped = self._keys.wrap(data_key, recording_id.encode())
        blob = encrypt_object(audio.data, data_key, recording_id)
        del data_key
        self._blobs.put(key, blob)
        with self._finalise_lock, self._catalog.write() as session:
            recording = _locked(session, recording_id)
            assert recording is not None
            if recording.status != "recording":
                return
            call_row = session.get(Call, recording.call_id)
            assert call_row is not None
            call_row.ended_at = ended_at
            recording.status = status
            recording.object_key = key
            recording.format = audio.format
            recording.sample_rate = audio.sample_rate
            recording.channels = audio.channels
            recording.mixed = audio.mixed
            recording.duration_seconds = round(audio.duration_seconds, 3)
            recording.audio_size = len(audio.data)
            recording.object_size = len(blob)
            recording.audio_sha256 = audio_sha256
            recording.object_sha256 = hashlib.sha256(blob).hexdigest()
            recording.kek_id = wrapped.kek_id
            recording.wrapped_key = wrapped.wrapped
            recording.completeness = completeness(streams)
            recording.finalized_at = datetime.now(UTC)
            # Plain inserts and a manifest built from the values in hand: the rows are
            # new (a recording gets streams and events only here), so no collection is
            # loaded to diff against and nothing is read back (see :meth:`_sign`).
            streams_in = stream_rows(recording_id, streams)
            events_in = event_rows(recording_id, events)
            with session.no_autoflush:
                if streams_in:
                    session.connection().execute(_INSERT_STREAM, streams_in)
                if events_in:
                    session.connection().execute(_INSERT_EVENT, events_in)
                if audio.peaks is not None:
                    # The waveform came with the audio (taken from the PCM as it was
                    # encoded): kept now, so no one decodes the archive for it.
                    session.connection().execute(
                        insert(RecordingPeaks), [_peaks_row(recording_id, audio.peaks)]
                    )
                self._sign(session, recording, (streams_in, events_in))
            self._announce_sealed(session, recording)
        log.info("recording %s sealed: %s, %.1f s", recording_id, status, audio.duration_seconds)

    def _sign(
        self, session: Session, recording: Recording, sealed: tuple[list[Row], list[Row]] | None = None
    ) -> None:
        """Sign the manifest built from the rows and append it to the seal log, in this transaction.

        ``sealed``: the streams and events rows a seal has just written, used as they
        are: nothing is read back, and the recording's changes are not flushed first
        (they go out with the manifest in one UPDATE at commit).
        """
        if sealed is None:
            session.flush()
        key_id, sign = self._signer.current_key()
        recording.signing_key_id = key_id  # the manifest names its key
        if sealed is None:
            manifest = build_manifest(session, recording)
        else:
            streams, events = ([SimpleNamespace(**row) for row in rows] for rows in sealed)
            manifest = build_manifest_with(session, recording, streams, events)
        recording.manifest = canonical_json(manifest).decode()
        recording.manifest_signature = sign(recording.manifest.encode())
        self._seal_log.append(session, recording.id, recording.manifest)

    def _announce_sealed(self, session: Session, recording: Recording) -> None:
        """``recording.sealed``, queued in the sealing transaction: announced if and only if it commits.

        Ids, status and hashes only: numbers and names stay behind the API's access control.
        """
        if self._events is None:
            return
        source = recording.ingest_source or {}
        self._events.publish_in(
            session,
            "recording.sealed",
            {
                "recording_id": recording.id,
                "call_id": recording.call_id,
                "status": recording.status,
                "source": source.get("kind"),
                "started_at": iso(recording.started_at),
                "finalized_at": iso(recording.finalized_at),
                "duration_seconds": recording.duration_seconds,
                "format": recording.format if recording.object_key else None,
                "audio_sha256": recording.audio_sha256,
                "object_sha256": recording.object_sha256,
                "signing_key_id": recording.signing_key_id,
            },
        )

    def store_new(
        self,
        call: CallRecord,
        audio: ArchiveAudio,
        streams: list[StreamRecord],
        status: FinalStatus = "complete",
        events: list[CallEvent] | None = None,
        source: IngestSource | None = None,
    ) -> str:
        """Catalogue and seal a recording made elsewhere (uploads, imports)."""
        recording_id = self.begin(call, source)
        try:
            ended = call.started_at.timestamp() + audio.duration_seconds
            self.finalise(
                recording_id, audio, status, streams, events or [], datetime.fromtimestamp(ended, UTC)
            )
        except BaseException:
            self._discard(recording_id)
            raise
        return recording_id

    def _discard(self, recording_id: str) -> None:
        """Remove a recording that never got audio (failed import): nothing half-written stays."""
        with self._catalog.write() as session:
            recording = _locked(session, recording_id)
            if recording is None or recording.status != "recording":
                return
            call_id = recording.call_id
            session.delete(recording)
            session.flush()
            call_row = session.get(Call, call_id)
            if call_row is not None:
                session.delete(call_row)

    def destroy_audio_key(self, recording_id: str) -> bool:
        """Crypto-shred: forget the wrapped data key, then delete the object.

        Once the wrapped key is gone the audio cannot be decrypted from any
        copy of the object (backups, replicas), which is what erasure and
        retention rely on. The catalog row stays, re-signed with
        ``key_destroyed_at``, as evidence of what existed and when it was destroyed.
        Returns False if the key was already destroyed.
        """
        with self._catalog.write() as session:
            recording = _locked(session, recording_id)
            if recording is None:
                raise NotFound(f"recording {recording_id} not found")
            if recording.status == "recording":
                raise Conflict("recording is still in progress")
            if recording.key_destroyed_at is not None:
                return False
            ensure_not_held(session, recording_id)  # 409 naming the hold, for every role
            recording.wrapped_key = None
            recording.key_destroyed_at = datetime.now(UTC)
            forget_indexed(session, [recording_id])  # the search index's words go with the audio
            object_key = recording.object_key
            forget_transcripts(session, [recording_id])  # sealed under the key just forgotten
            forget_insights(session, [recording_id])  # and what was derived from it
            self._sign(session, recording)
            # Its waveform shows when each party spoke: it goes with the audio.
            session.execute(delete(RecordingPeaks).where(RecordingPeaks.recording_id == recording_id))
        if object_key:
            try:
                self._blobs.delete(object_key)
            except CallvaultError as exc:
                # The key is already gone, so the object is unreadable; a leftover is only storage.
                log.warning("recording %s: key destroyed, object not deleted: %s", recording_id, exc.message)
        log.info("recording %s: data key destroyed", recording_id)
        return True

    def unfinished(self) -> list[str]:
        """Ids still in status 'recording' (for crash recovery at start)."""
        with self._catalog.read() as session:
            return list(session.scalars(select(Recording.id).where(Recording.status == "recording")))

    def unrecorded_unfinished(self) -> list[str]:
        """Calls left unrecorded by a rule that never ended (the recorder stopped during them)."""
        with self._catalog.read() as session:
            query = select(Recording.id).where(
                Recording.status == "not_recorded", Recording.finalized_at.is_(None)
            )
            return list(session.scalars(query))

    def mark_interrupted_without_audio(self, recording_id: str) -> None:
        """A recording whose spool is gone entirely: keep the row, flag it, no audio."""
        with self._catalog.write() as session:
            recording = _locked(session, recording_id)
            if recording is None or recording.status != "recording":
                return
            recording.status = "interrupted"
            recording.finalized_at = datetime.now(UTC)
            self._sign(session, recording)
            self._announce_sealed(session, recording)

    def end_without_audio(
        self, recording_id: str, status: str, ended_at: datetime | None, duration_seconds: float | None = None
    ) -> None:
        """A call catalogued without audio (a recording rule; an on-demand call nobody kept) has
        ended: its times and status are signed into the seal log as evidence that it happened.
        ``ended_at`` None: unknown (the recorder stopped while the call ran)."""
        with self._finalise_lock, self._catalog.write() as session:
            recording = _locked(session, recording_id)
            if recording is None or recording.finalized_at is not None:
                return
            call_row = session.get(Call, recording.call_id)
            assert call_row is not None
            call_row.ended_at = ended_at
            recording.status = status
            started = (
                recording.started_at
                if recording.started_at.tzinfo
                else recording.started_at.replace(tzinfo=UTC)
            )
            span = duration_seconds
            if span is None and ended_at is not None:
                span = (ended_at - started).total_seconds()
            recording.duration_seconds = None if span is None else round(max(0.0, span), 3)
            recording.finalized_at = datetime.now(UTC)
            self._sign(session, recording)
            self._announce_sealed(session, recording)
        log.info("recording %s ended without audio: %s", recording_id, status)

    def apply_rule(self, recording_id: str, columns: dict[str, Any]) -> None:
        """A live call's rule decision changed (new metadata): its rule columns, and ``recording``
        when an unrecorded call starts being recorded."""
        with self._catalog.write() as session:
            recording = _locked(session, recording_id)
            if recording is None or recording.finalized_at is not None:
                return
            for column in ("rule_name", "rule_action", "labels"):
                if column in columns:
                    setattr(recording, column, columns[column])
            if recording.status == "not_recorded" and columns.get("status", "recording") == "recording":
                recording.status = "recording"

    def keep(self, recording_id: str, at: datetime) -> bool:
        """Mark an on-demand call's audio to be kept; False if it was already. Conflict unless the
        recording is on demand and not yet decided."""
        with self._catalog.write() as session:
            recording = _locked(session, recording_id)
            if recording is None:
                raise NotFound(f"recording {recording_id} not found")
            if recording.rule_action != "on_demand":
                raise Conflict("the call is not recorded on demand: there is nothing to keep")
            if recording.kept_at is not None:
                return False
            if recording.status != "recording":
                raise Conflict(f"the call's audio was already {recording.status.replace('_', ' ')}")
            recording.kept_at = at
            return True


def _peaks_row(recording_id: str, peaks: Peaks) -> Row:
    return {
        "recording_id": recording_id,
        "channels": peaks.channels,
        "bucket_seconds": peaks.bucket_seconds,
        "duration_seconds": peaks.duration_seconds,
        "peaks": peaks.data,
        "computed_at": datetime.now(UTC),
    }


def _locked(session: Session, recording_id: str) -> Recording | None:
    """The recording row, locked for this transaction (PostgreSQL: FOR UPDATE), so concurrent
    metadata updates and sealing of one recording apply one after the other. SQLite needs no
    row lock: its writers are already serialised by :meth:`Catalog.write`."""
    return session.get(Recording, recording_id, with_for_update=True)
