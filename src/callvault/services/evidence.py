"""Evidence bundles for disputes and courts: one zip a third party can check offline.

Members: the audio (``audio.opus`` as archived, ``audio.wav`` rendered from it),
``metadata.json`` (the catalog's view), the signed manifest (``manifest.json`` +
``manifest.sig``), ``audit-trail.json`` (this recording's audit entries with a
chain proof to a signed checkpoint: the digests, never the content, of other
entries in between), the server's public keys, a vCon (IETF vcon-core JSON:
parties, dialog, attachments) signed as a JWS with EdDSA, and ``README.txt``.
``bundle.json`` lists every member's SHA-256 and ``bundle.sig`` signs it, so
one changed byte anywhere is found and named (:mod:`callvault.services.evidence_verify`).

Building needs the download right; the export itself is audited, and a
checkpoint is signed just after so that the trail's proof covers the export.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select

from callvault.crypto.signing import ManifestSigner, canonical_json
from callvault.db.audit_chain import body_sha256
from callvault.db.catalog import Catalog
from callvault.db.models import AccessEvent, AuditCheckpoint, Participant, Recording
from callvault.errors import IntegrityError, NotFound
from callvault.services.access import Principal
from callvault.services.audit import AccessLog
from callvault.services.audit_log import AuditLog, Checkpoint
from callvault.services.audit_verify import body_of
from callvault.services.evidence_verify import (
    AUDIO_OGG,
    AUDIO_WAV,
    FORMAT,
    INDEX,
    INDEX_SIG,
    MANIFEST,
    MANIFEST_SIG,
    METADATA,
    PUBLIC_KEY,
    README,
    TRAIL,
    VCON,
    VCON_JWS,
    b64url,
)
from callvault.services.playback import PlaybackService
from callvault.services.search import RecordingCatalog

_README = """callvault evidence bundle for recording {recording_id}
Created {created_at} by {username}.

How to verify (offline, without the callvault data directory):
    callvault verify-bundle bundle.zip --public-key server-public-key.pem
Obtain server-public-key.pem from the operator through a channel you trust; without
--public-key the bundled public-key.pem is used, which proves integrity, not origin.

By hand:
1. bundle.json lists the SHA-256 of every other member; bundle.sig is the base64
   Ed25519 signature of bundle.json's exact bytes under the server key.
2. manifest.sig signs manifest.json (key keys/<signing_key_id>.pem); the manifest's
   recording.audio_sha256 is the SHA-256 of audio.opus. audio.wav is rendered from it.
3. audit-trail.json: each entry's hash is SHA-256("callvault-audit-log/v1\\n" +
   prev_hash + "\\n" + SHA-256(canonical JSON of its body)); chaining the listed
   entries and link digests from the first entry to the checkpoint's seq must give
   the checkpoint's head, whose Ed25519 signature covers the canonical JSON of
   {{"at","head","key_id","log","seq"}}.
4. vcon.jws.json is a JWS (General JSON Serialization, alg EdDSA) whose payload is
   vcon.json byte for byte.
"""


def public_pem(signer: ManifestSigner, key_id: str) -> bytes:
    key = signer.public_key(key_id)
    if key is None:
        raise IntegrityError(f"the signing key {key_id} is unknown to this vault")
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


class EvidenceService:
    def __init__(
        self,
        catalog: Catalog,
        signer: ManifestSigner,
        access_log: AccessLog,
        audit_log: AuditLog,
        playback: PlaybackService,
        search: RecordingCatalog,
    ) -> None:
        self._catalog = catalog
        self._signer = signer
        self._log = access_log
        self._audit = audit_log
        self._playback = playback
        self._search = search

    def build(self, principal: Principal, recording_id: str) -> bytes:
        """The bundle's zip bytes (download right needed; audited as ``export``)."""
        ogg = self._playback.open_audio(principal, recording_id, "ogg", download=True).read()
        wav = self._playback.open_audio(principal, recording_id, "wav", download=True).read()
        metadata = self._search.get(principal, recording_id)
        self._log.record(principal, "export", recording_id, detail="evidence bundle")
        checkpoint = self._audit.checkpoint()
        assert checkpoint is not None  # the export entry was just appended
        with self._catalog.read() as session:
            recording = session.get(Recording, recording_id)
            if recording is None or recording.manifest is None or recording.manifest_signature is None:
                raise NotFound(f"recording {recording_id} has no signed manifest")
            manifest, manifest_sig = recording.manifest, recording.manifest_signature
            parties = session.scalars(
                select(Participant).where(Participant.call_id == recording.call_id)
            ).all()
            vcon = _vcon(recording, list(parties), ogg)
            trail = _trail(session, recording_id)
        key_ids = {json.loads(manifest).get("signing_key_id") or self._signer.key_id, checkpoint.key_id}
        created = datetime.now(UTC).isoformat(timespec="seconds")
        members: dict[str, bytes] = {
            AUDIO_OGG: ogg,
            AUDIO_WAV: wav,
            METADATA: json.dumps(metadata, indent=2, default=str).encode(),
            MANIFEST: manifest.encode(),
            MANIFEST_SIG: base64.b64encode(manifest_sig) + b"\n",
            TRAIL: json.dumps(_with_proofs(trail, checkpoint), indent=2).encode(),
            VCON: canonical_json(vcon),
            PUBLIC_KEY: self._signer.public_key_pem(),
            README: _README.format(
                recording_id=recording_id, created_at=created, username=principal.username
            ).encode(),
        }
        members[VCON_JWS] = self._jws(members[VCON])
        for key_id in sorted(k for k in key_ids if k):
            members[f"keys/{key_id}.pem"] = public_pem(self._signer, key_id)
        index = canonical_json(
            {
                "format": FORMAT,
                "recording_id": recording_id,
                "created_at": created,
                "key_id": self._signer.key_id,
                "members": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(members.items())},
            }
        )
        members[INDEX] = index
        members[INDEX_SIG] = base64.b64encode(self._signer.sign(index)) + b"\n"
        return _zip(members)

    def _jws(self, payload: bytes) -> bytes:
        key_id, sign = self._signer.current_key()
        protected = b64url(canonical_json({"alg": "EdDSA", "kid": key_id, "cty": "application/vcon+json"}))
        encoded = b64url(payload)
        signature = sign(f"{protected}.{encoded}".encode())
        doc = {"payload": encoded, "signatures": [{"protected": protected, "signature": b64url(signature)}]}
        return json.dumps(doc, indent=2).encode()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(members):
            # Audio is compressed already; storing it keeps a changed byte a changed byte.
            kind = zipfile.ZIP_STORED if name.startswith("audio.") else zipfile.ZIP_DEFLATED
            archive.writestr(name, members[name], compress_type=kind)
    return buffer.getvalue()


def _trail(session: Any, recording_id: str) -> dict[str, Any]:
    rows = session.scalars(
        select(AccessEvent)
        .where(AccessEvent.recording_id == recording_id, AccessEvent.seq.is_not(None))
        .order_by(AccessEvent.seq)
    ).all()
    groups: dict[int, list[AccessEvent]] = {}
    covering: dict[int, AuditCheckpoint] = {}
    for row in rows:
        checkpoint = session.scalars(
            select(AuditCheckpoint)
            .where(AuditCheckpoint.seq >= row.seq)
            .order_by(AuditCheckpoint.seq)
            .limit(1)
        ).first()
        if checkpoint is not None:
            covering[checkpoint.seq] = checkpoint
            groups.setdefault(checkpoint.seq, []).append(row)
    proofs = []
    for seq, entries in groups.items():
        mine = {e.seq for e in entries}
        between = session.scalars(
            select(AccessEvent).where(AccessEvent.seq > entries[0].seq, AccessEvent.seq <= seq)
        ).all()
        proofs.append(
            {
                "checkpoint": Checkpoint.from_row(covering[seq]).to_dict(),
                "entries": [_entry(e) for e in entries],
                "links": sorted([e.seq, body_sha256(body_of(e))] for e in between if e.seq not in mine),
            }
        )
    return {"recording_id": recording_id, "proofs": proofs}


def _with_proofs(trail: dict[str, Any], checkpoint: Checkpoint) -> dict[str, Any]:
    return {**trail, "latest_checkpoint": checkpoint.to_dict()}


def _entry(row: AccessEvent) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "prev_hash": row.prev_hash,
        "entry_hash": row.entry_hash,
        "body": body_of(row).to_dict(),
    }


def _vcon(recording: Recording, participants: Sequence[Participant], ogg: bytes) -> dict[str, Any]:
    """vcon-core: parties, one recording dialog pointing at audio.opus, the manifest as attachment."""
    parties: list[dict[str, Any]] = []
    for p in participants:
        party: dict[str, Any] = {"role": p.role}
        if p.number:
            party["tel"] = p.number
        elif p.aor:
            party["sip"] = p.aor
        if p.display_name:
            party["name"] = p.display_name
        parties.append(party)
    started = (
        recording.started_at if recording.started_at.tzinfo else recording.started_at.replace(tzinfo=UTC)
    )
    return {
        "vcon": "0.0.2",
        "uuid": recording.id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "subject": f"callvault recording {recording.id}",
        "parties": parties,
        "dialog": [
            {
                "type": "recording",
                "start": started.isoformat(),
                "duration": recording.duration_seconds,
                "parties": list(range(len(parties))),
                "mediatype": "audio/ogg",
                "filename": AUDIO_OGG,
                "content_hash": "sha512-" + b64url(hashlib.sha512(ogg).digest()),
            }
        ],
        "attachments": [
            {
                "type": "callvault_manifest",
                "encoding": "json",
                "body": recording.manifest,
                "dialog": 0,
            }
        ],
    }
