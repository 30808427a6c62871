"""``callvault verify``: check every stored object, hash, manifest and signature.

For each recording: the manifest rebuilt from today's catalog rows must equal
the signed one; the signature must verify under the server key; the stored
object must hash to ``object_sha256``; decrypting it (authenticated chunk by
chunk) must give ``audio_sha256``. Every failure is named, none stops the run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import select

from callvault.crypto.signing import ManifestSigner, canonical_json, verify_signature
from callvault.db.catalog import Catalog
from callvault.db.models import Recording
from callvault.errors import CallvaultError, NotFound
from callvault.services.access import Action, Principal, require
from callvault.services.audit import AccessLog
from callvault.services.manifest import build_manifest
from callvault.services.playback import PlaybackService
from callvault.storage.blobstore import BlobStore


@dataclass
class VerifyResult:
    recording_id: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class IntegrityService:
    def __init__(
        self,
        catalog: Catalog,
        blobs: BlobStore,
        signer: ManifestSigner,
        playback: PlaybackService,
        access_log: AccessLog,
    ) -> None:
        self._catalog = catalog
        self._blobs = blobs
        self._signer = signer
        self._playback = playback
        self._log = access_log

    def recording_ids(self) -> list[str]:
        with self._catalog.read() as session:
            return list(session.scalars(select(Recording.id).order_by(Recording.started_at, Recording.id)))

    def verify(
        self,
        principal: Principal,
        recording_ids: Iterable[str] | None = None,
        progress: Callable[[VerifyResult], None] | None = None,
    ) -> list[VerifyResult]:
        require(principal, Action.INTEGRITY_VERIFY)
        ids = list(recording_ids) if recording_ids is not None else self.recording_ids()
        results = []
        for recording_id in ids:
            result = self.verify_one(recording_id)
            results.append(result)
            if progress:
                progress(result)
        failed = sum(1 for r in results if not r.ok)
        self._log.record(principal, "verify", detail=f"{len(results)} checked, {failed} failed")
        return results

    def verify_one(self, recording_id: str) -> VerifyResult:
        result = VerifyResult(recording_id)
        with self._catalog.read() as session:
            recording = session.get(Recording, recording_id)
            if recording is None:
                raise NotFound(f"recording {recording_id} not found")
            if recording.status == "recording":
                return result  # not sealed yet: nothing to verify
            rebuilt = canonical_json(build_manifest(session, recording)).decode()
        if recording.manifest is None or recording.manifest_signature is None:
            result.problems.append("manifest or signature missing")
        else:
            if rebuilt != recording.manifest:
                result.problems.append("catalog rows differ from the signed manifest")
            if not verify_signature(
                self._signer.public_key_pem(), recording.manifest.encode(), recording.manifest_signature
            ):
                result.problems.append("manifest signature does not verify")
        if recording.object_key is None:
            if recording.status in ("complete", "incomplete"):
                result.problems.append("no stored object")
            return result
        if recording.key_destroyed_at is not None:
            return result
        try:
            blob = self._blobs.get(recording.object_key)
        except CallvaultError as exc:
            result.problems.append(f"stored object unreadable: {exc.message}")
            return result
        if hashlib.sha256(blob).hexdigest() != recording.object_sha256:
            result.problems.append("stored object hash mismatch")
        try:
            reader = self._playback.open_reader(recording)
            digest = hashlib.sha256()
            for piece in reader.iter_chunks():
                digest.update(piece)
            if digest.hexdigest() != recording.audio_sha256:
                result.problems.append("audio hash mismatch")
        except CallvaultError as exc:
            result.problems.append(f"decryption failed: {exc.message}")
        return result
