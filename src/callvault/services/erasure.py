"""Erasure requests (GDPR Art. 17): find everything of one person, erase what may go, certify it.

Who the subject is and which recordings are theirs is decided in one place,
:mod:`callvault.services.subject_access` (a number in any spelling, an email
address, or an external customer id), so access and erasure requests always
agree. Where the subject is one of several non-agent parties, the recording is
erased too unless ``CALLVAULT_ERASURE_MULTI_PARTY`` is false. Execution keeps
what a legal hold or a ``legal_obligation`` policy still keeps and says why,
deletes the rest (:mod:`callvault.services.deletion`) and stores a signed
certificate (:mod:`callvault.services.deletion_certificate`). After execution
only the keyed hash of the subject is kept.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.crypto.personal_hash import PersonalHasher
from callvault.crypto.signing import ManifestSigner
from callvault.db.catalog import Catalog
from callvault.db.compliance_models import ErasureRequest
from callvault.db.models import CallIdentifier, Recording
from callvault.errors import Conflict, InvalidInput, NotFound
from callvault.services.access import Action, Principal, require
from callvault.services.audit import AccessLog
from callvault.services.call_records import forget_number
from callvault.services.deletion import DeletionService
from callvault.services.deletion_certificate import sign_certificate
from callvault.services.deletion_guard import erasure_block
from callvault.services.events import EventBus
from callvault.services.manifest import iso
from callvault.services.retention_rules import load_facts, load_rules
from callvault.services.subject_access import Subject, outside_parties, recording_condition


class ErasureService:
    def __init__(
        self,
        catalog: Catalog,
        deletion: DeletionService,
        access_log: AccessLog,
        hasher: PersonalHasher,
        signer: ManifestSigner,
        events: EventBus,
        region: str,
        multi_party: bool,
    ) -> None:
        self._catalog = catalog
        self._deletion = deletion
        self._log = access_log
        self._hasher = hasher
        self._signer = signer
        self._events = events
        self._region = region
        self._multi_party = multi_party

    def subject_of(self, raw: object) -> tuple[str, str]:
        """``(kind, normalised value)`` of a request's subject, or InvalidInput."""
        subject = Subject.parse(raw, self._region)
        return subject.kind, subject.value

    def create(self, principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
        require(principal, Action.ERASURE_MANAGE)
        unknown = sorted(set(body) - {"subject"})
        if unknown:
            raise InvalidInput(f"unknown field(s): {', '.join(unknown)}")
        kind, value = self.subject_of(body.get("subject"))
        subject_hash = self._hasher.digest(kind, value)
        with self._catalog.read() as session:
            ids = sorted(
                session.scalars(select(Recording.id).where(recording_condition(Subject.of(kind, value))))
            )
        if not ids:
            self._log.record(
                principal,
                "erasure_request",
                detail=f"unknown subject {subject_hash[:16]}",
                outcome="not_found",
            )
            raise NotFound("no calls or recordings found for this subject")
        with self._catalog.write() as session:
            request = ErasureRequest(
                id=str(uuid.uuid4()),
                subject_kind=kind,
                subject_value=value,
                subject_hash=subject_hash,
                status="pending",
                preview=ids,
                created_at=datetime.now(UTC),
                created_by=principal.username,
            )
            session.add(request)
            view = self._view(session, request)
        self._log.record(principal, "erasure_request", detail=f"{request.id}: {len(ids)} recording(s)")
        return view

    def get(self, principal: Principal, request_id: str) -> dict[str, Any]:
        require(principal, Action.ERASURE_MANAGE)
        with self._catalog.read() as session:
            return self._view(session, _request(session, request_id))

    def execute(self, principal: Principal, request_id: str) -> dict[str, Any]:
        require(principal, Action.ERASURE_MANAGE)
        with self._catalog.read() as session:
            request = _request(session, request_id)
            if request.status == "executed":
                raise Conflict(
                    f"erasure request {request_id} was already executed at {iso(request.executed_at)}"
                )
            assert request.subject_value is not None
            where = recording_condition(Subject.of(request.subject_kind, request.subject_value))
            rules = load_rules(session)
            now = datetime.now(UTC)
            kept: dict[str, str] = {}
            erasable: list[str] = []
            for facts in load_facts(session, where):
                reason = erasure_block(session, rules, facts, now)
                if reason is None and not self._multi_party and _several_parties(session, facts.id):
                    reason = "other parties on the call (CALLVAULT_ERASURE_MULTI_PARTY is false)"
                if reason is None:
                    erasable.append(facts.id)
                else:
                    kept[facts.id] = reason
            already = list(
                session.scalars(select(Recording.id).where(where, Recording.deleted_at.is_not(None)))
            )
        outcome = self._deletion.delete(principal, erasable, "erasure", request_id)
        kept.update({rid: f"legal hold {name!r}" for rid, name in outcome.held.items()})
        result = self._finish(principal, request_id, sorted(set(outcome.deleted) | set(already)), kept)
        self._events.publish(
            "erasure.executed",
            {"id": request_id, "erased": len(result["erased"]), "kept": len(result["kept"])},
        )
        return result

    def _finish(
        self, principal: Principal, request_id: str, erased: list[str], kept: dict[str, str]
    ) -> dict[str, Any]:
        with self._catalog.write() as session:
            request = _request(session, request_id, lock=True)
            if request.status == "executed":
                raise Conflict(f"erasure request {request_id} was executed concurrently")
            destroyed = [_destroyed_entry(session, rid) for rid in erased]
            kept_list = [{"recording_id": rid, "reason": why} for rid, why in sorted(kept.items())]
            executed_at = datetime.now(UTC)
            body = {
                "request_id": request.id,
                "subject": {
                    "kind": request.subject_kind,
                    "hash": request.subject_hash,
                    "hash_algorithm": "HMAC-SHA256",
                },
                "requested_at": iso(request.created_at),
                "requested_by": request.created_by,
                "executed_at": iso(executed_at),
                "executed_by": principal.username,
                "destroyed": destroyed,
                "kept": kept_list,
            }
            request.certificate = sign_certificate(self._signer, body)
            request.status = "executed"
            request.executed_at = executed_at
            request.executed_by = principal.username
            request.subject_value = None  # from now on only the keyed hash identifies the person
            if request.subject_kind == "phone":  # the PBX's call records keep the same hash
                forget_number(session, request.subject_hash)
            request.result = {"erased": erased, "kept": kept_list}
        self._log.record(
            principal, "erasure_execute", detail=f"{request_id}: {len(erased)} erased, {len(kept)} kept"
        )
        return {"id": request_id, "status": "executed", "erased": destroyed, "kept": kept_list}

    def certificate(self, principal: Principal, request_id: str) -> str:
        require(principal, Action.ERASURE_MANAGE)
        with self._catalog.read() as session:
            request = _request(session, request_id)
            if request.certificate is None:
                raise Conflict(f"erasure request {request_id} has not been executed yet; no certificate")
            document = request.certificate
        self._log.record(principal, "erasure_certificate", detail=request_id)
        return document

    def _view(self, session: Session, request: ErasureRequest) -> dict[str, Any]:
        rows = session.execute(
            select(Recording.id, Recording.call_id, Recording.started_at, Recording.status).where(
                Recording.id.in_(request.preview)
            )
        ).all()
        return {
            "id": request.id,
            "subject": {"kind": request.subject_kind, "hash": request.subject_hash},
            "status": request.status,
            "recording_ids": sorted(r[0] for r in rows),
            "recordings": [
                {
                    "id": rid,
                    "call_id": call_id,
                    "started_at": iso(started),
                    "status": status,
                    "artefacts": ["audio", "metadata"],
                }
                for rid, call_id, started, status in sorted(rows)
            ],
            "created_at": iso(request.created_at),
            "executed_at": iso(request.executed_at),
            "result": request.result,
        }


def _several_parties(session: Session, recording_id: str) -> bool:
    call_id = session.scalar(select(Recording.call_id).where(Recording.id == recording_id))
    assert call_id is not None
    return outside_parties(session, {call_id}).get(call_id, 0) > 1


def _destroyed_entry(session: Session, recording_id: str) -> dict[str, Any]:
    recording = session.get(Recording, recording_id)
    assert recording is not None
    call_ids = sorted(
        session.scalars(select(CallIdentifier.value).where(CallIdentifier.call_id == recording.call_id))
    )
    return {
        "recording_id": recording.id,
        "call_id": recording.call_id,
        "call_identifiers": call_ids,
        "started_at": iso(recording.started_at),
        "deleted_at": iso(recording.deleted_at),
        "audio_sha256": recording.audio_sha256,
        "object_sha256": recording.object_sha256,
        "tombstone_manifest_sha256": _sha256(recording.manifest),
        "artefacts": ["audio", "metadata"],
    }


def _sha256(text: str | None) -> str | None:
    return hashlib.sha256(text.encode()).hexdigest() if text else None


def _request(session: Session, request_id: str, lock: bool = False) -> ErasureRequest:
    request: ErasureRequest | None = session.get(ErasureRequest, request_id, with_for_update=lock)
    if request is None:
        raise NotFound(f"erasure request {request_id} not found")
    return request
