"""Deleting recordings: crypto-shred, scrub personal data, re-sign the tombstone, remove objects.

Two steps, each safe to repeat, so a sweep killed at any point leaves no
recording half-deleted and the next run finishes the job:

1. **Mark** (one catalog transaction per batch): refuse held recordings, forget
   the wrapped data key (the audio can no longer be decrypted from any copy),
   scrub personal data (numbers, names, SIP addresses, vendor metadata, DTMF
   events) keeping only keyed hashes of the numbers, record when, why and under
   which policy or request, re-sign the manifest as a tombstone and append it
   to the seal log, and set ``deletion_state = "pending"``.
2. **Finish**: delete the vault object and every derived artefact (objects
   under ``derived/<recording id>/``), then clear ``deletion_state``.
   :meth:`DeletionService.finish_pending` completes what a killed run marked.

Audit entries are written for each recording, and ``recording.deleted`` is
published in the transaction that completes the deletion.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from callvault.crypto.personal_hash import PersonalHasher
from callvault.crypto.signing import ManifestSigner, canonical_json
from callvault.db.catalog import Catalog
from callvault.db.models import Call, Participant, Recording, RecordingEvent, Stream
from callvault.db.web_models import RecordingPeaks
from callvault.services.access import Principal
from callvault.services.audit import AccessLog
from callvault.services.deletion_guard import held_by
from callvault.services.events import EventBus
from callvault.services.insight_store import forget_insights
from callvault.services.manifest import build_manifests, iso
from callvault.services.seal_log import SealLog
from callvault.services.transcript_index import forget_indexed
from callvault.services.transcripts import forget_transcripts
from callvault.storage.blobstore import BlobStore, delete_objects

log = logging.getLogger(__name__)

BATCH = 500
PENDING = "pending"
DERIVED_PREFIX = "derived/"


@dataclass
class DeletionOutcome:
    deleted: list[str] = field(default_factory=list)
    held: dict[str, str] = field(default_factory=dict)
    bytes: int = 0


class DeletionService:
    def __init__(
        self,
        catalog: Catalog,
        blobs: BlobStore,
        signer: ManifestSigner,
        seal_log: SealLog,
        access_log: AccessLog,
        hasher: PersonalHasher,
        events: EventBus,
    ) -> None:
        self._catalog = catalog
        self._blobs = blobs
        self._signer = signer
        self._seal_log = seal_log
        self._log = access_log
        self._hasher = hasher
        self._events = events

    def delete(
        self, principal: Principal, recording_ids: list[str], reason: str, basis: Mapping[str, str] | str
    ) -> DeletionOutcome:
        """Delete what may be deleted among ``recording_ids``; held ones are reported, not touched."""
        outcome = DeletionOutcome()
        # Removing a batch's objects (unlinks and directory syncs, which release the GIL) runs
        # in a thread while the next batch is marked. Safe because each batch's mark is
        # committed before its finish starts, and finish is idempotent (finish_pending).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="deletion-finish") as remover:
            removing: Future[int] | None = None
            for start in range(0, len(recording_ids), BATCH):
                batch = self.mark(principal, recording_ids[start : start + BATCH], reason, basis)
                outcome.held.update(batch.held)
                outcome.bytes += batch.bytes
                outcome.deleted += batch.deleted
                if removing is not None:
                    removing.result()  # one batch in flight: errors surface in order
                removing = remover.submit(self.finish, batch.deleted)
            if removing is not None:
                removing.result()
        return outcome

    def mark(
        self, principal: Principal, recording_ids: list[str], reason: str, basis: Mapping[str, str] | str
    ) -> DeletionOutcome:
        """Step 1 for one batch, in one transaction: after it, the audio is unrecoverable."""
        outcome = DeletionOutcome()
        now = datetime.now(UTC)
        with self._catalog.write() as session:
            rows = list(
                session.scalars(
                    select(Recording)
                    .where(
                        Recording.id.in_(recording_ids),
                        Recording.deleted_at.is_(None),
                        Recording.status != "recording",
                    )
                    .with_for_update()
                )
            )
            outcome.held = held_by(session, [r.id for r in rows])
            doomed = [r for r in rows if r.id not in outcome.held]
            if not doomed:
                return outcome
            hashes = self._subject_hashes(session, doomed)
            _scrub(session, doomed)
            key_id, sign = self._signer.current_key()
            changes: list[dict[str, object]] = []
            for recording in doomed:
                why = basis if isinstance(basis, str) else basis.get(recording.id, "")
                change: dict[str, object] = {
                    "status": "deleted",
                    "wrapped_key": None,
                    "key_destroyed_at": recording.key_destroyed_at or now,
                    "customer_number": None,
                    "deleted_at": now,
                    "deletion_reason": reason[:32],
                    "deletion_basis": why[:200] or None,
                    "subject_hashes": sorted(hashes.get(recording.id, set())),
                    "deletion_state": PENDING,
                    "signing_key_id": key_id,  # the manifest names its key
                }
                # Set on the loaded object without marking it dirty: one executemany UPDATE
                # below writes the batch, instead of the unit of work flushing row by row.
                for column, value in change.items():
                    set_committed_value(recording, column, value)
                changes.append(change)
                outcome.deleted.append(recording.id)
                outcome.bytes += recording.object_size or 0
            # The tombstone manifests are rebuilt from the scrubbed rows, as verify will rebuild them.
            manifests = build_manifests(session, doomed)
            entries = []
            for recording, change in zip(doomed, changes, strict=True):
                manifest = canonical_json(manifests[recording.id]).decode()
                change.update(id=recording.id, manifest=manifest, manifest_signature=sign(manifest.encode()))
                entries.append((recording.id, manifest))
            session.execute(update(Recording), changes)  # ORM bulk UPDATE by primary key
            self._seal_log.append_many(session, entries)
        self._log.record_many(
            principal,
            "delete",
            [
                (rid, f"{reason}: {basis if isinstance(basis, str) else basis.get(rid, '')}")
                for rid in outcome.deleted
            ],
        )
        log.info("%d recording(s) deleted (%s); %d held", len(outcome.deleted), reason, len(outcome.held))
        return outcome

    def finish(self, recording_ids: list[str]) -> int:
        """Step 2: remove the objects of marked recordings and clear their marker."""
        if not recording_ids:
            return 0
        with self._catalog.read() as session:
            rows = session.execute(
                select(Recording.id, Recording.object_key, Recording.deletion_reason).where(
                    Recording.id.in_(recording_ids), Recording.deletion_state == PENDING
                )
            ).all()
        keys = [key for _, key, _ in rows if key]
        for rid, _, _ in rows:
            keys += list(self._blobs.list(f"{DERIVED_PREFIX}{rid}/"))
        delete_objects(self._blobs, keys)
        done = [rid for rid, _, _ in rows]
        with self._catalog.write() as session:
            session.execute(
                update(Recording)
                .where(Recording.id.in_(done), Recording.deletion_state == PENDING)
                .values(deletion_state=None)
            )
            # In the transaction: the webhook outbox queues exactly what was deleted.
            self._events.publish_many_in(
                session,
                "recording.deleted",
                [{"recording_id": rid, "reason": reason} for rid, _, reason in rows],
            )
        return len(done)

    def finish_pending(self) -> int:
        """Complete every deletion a killed run marked but did not finish."""
        finished = 0
        while True:
            with self._catalog.read() as session:
                ids = list(
                    session.scalars(
                        select(Recording.id).where(Recording.deletion_state == PENDING).limit(BATCH)
                    )
                )
            if not ids:
                return finished
            finished += self.finish(ids)

    def _subject_hashes(self, session: Session, recordings: list[Recording]) -> dict[str, set[str]]:
        """Keyed hashes of every number on each recording's call (customer, calling, called, parties)."""
        by_call: dict[str, set[str]] = {r.call_id: set() for r in recordings}
        for r in recordings:
            if r.customer_number:
                by_call[r.call_id].add(r.customer_number)
        calls = session.execute(
            select(Call.id, Call.calling_number, Call.called_number).where(Call.id.in_(by_call))
        )
        for call_id, calling, called in calls:
            by_call[call_id].update(n for n in (calling, called) if n and n.startswith("+"))
        parties = session.execute(
            select(Participant.call_id, Participant.number).where(
                Participant.call_id.in_(by_call), Participant.number.is_not(None)
            )
        )
        for call_id, number in parties:
            if number:
                by_call[call_id].add(number)
        return {r.id: {self._hasher.digest("phone", n) for n in by_call[r.call_id]} for r in recordings}


def _scrub(session: Session, recordings: list[Recording]) -> None:
    """Remove catalog personal data of the recordings' calls; call ids and hashes stay."""
    call_ids = [r.call_id for r in recordings]
    ids = [r.id for r in recordings]
    session.execute(
        update(Call)
        .where(Call.id.in_(call_ids))
        .values(calling_number=None, called_number=None, vendor_metadata=None),
        execution_options={"synchronize_session": False},
    )
    session.execute(
        update(Participant)
        .where(Participant.call_id.in_(call_ids))
        .values(aor=None, display_name=None, number=None),
        execution_options={"synchronize_session": False},
    )
    session.execute(
        update(Stream).where(Stream.recording_id.in_(ids)).values(participant_aor=None),
        execution_options={"synchronize_session": False},
    )
    # DTMF events may carry card numbers or PINs typed by the customer.
    session.execute(
        delete(RecordingEvent).where(RecordingEvent.recording_id.in_(ids)),
        execution_options={"synchronize_session": False},
    )
    # Waveform peaks show when each party spoke: they go with the audio.
    session.execute(
        delete(RecordingPeaks).where(RecordingPeaks.recording_id.in_(ids)),
        execution_options={"synchronize_session": False},
    )
    # What was said: already unreadable without the data key, and not kept as ciphertext either.
    forget_transcripts(session, ids)
    forget_insights(session, ids)  # what the transcript yielded: metrics, category hits, sentiment
    # The search index holds (redacted) words of the transcript destroyed with the audio.
    forget_indexed(session, ids)


def tombstone(recording: Recording) -> dict[str, object] | None:
    """The tombstone part of a recording's detail, or None while it exists."""
    if recording.deleted_at is None:
        return None
    return {
        "deleted_at": iso(recording.deleted_at),
        "reason": recording.deletion_reason,
        "basis": recording.deletion_basis,
        "subject_hashes": recording.subject_hashes or [],
        "objects_removed": recording.deletion_state is None,
    }
